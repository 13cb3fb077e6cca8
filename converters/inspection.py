"""`inspect`: what a converted `.tflite` contains, in a form people can read."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from bnn_tf.converters.tflite_model import (
    BINARY_CONV_OPS,
    FLOAT_MAC_OPS,
    TfliteModel,
    parse,
)


@dataclass
class OpReport:
    """Op counts of a `.tflite`: how many binary convs, how many float MAC ops.

    Attributes:
        op_counts: every op name with its count (all subgraphs).
        binary_convs: number of `LceBconv2d`.
        float_mac_ops: number of float CONV_2D / DEPTHWISE / FULLY_CONNECTED / ...
        size_bytes: flatbuffer size.
        requires_lce: the model has LCE custom ops, so it needs LCE's runtime.
        custom_ops: the custom op names.
    """

    op_counts: dict[str, int]
    binary_convs: int
    float_mac_ops: int
    size_bytes: int
    requires_lce: bool
    custom_ops: list[str]
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]]

    def to_dict(self) -> dict:
        # Shapes as lists, as JSON stores them, so a report read back compares equal.
        return {
            **asdict(self),
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shapes": [list(s) for s in self.output_shapes],
        }

    def format(self) -> str:
        """A short human-readable table."""
        lines = [
            f"size: {self.size_bytes:,} bytes   binary convs (LceBconv2d): {self.binary_convs}   "
            f"float MAC ops: {self.float_mac_ops}",
            "runtime: " + ("LCE (custom ops: " + ", ".join(self.custom_ops) + ")"
                           if self.requires_lce else "stock TFLite"),
            "ops:",
        ]  # fmt: skip
        width = max((len(k) for k in self.op_counts), default=0)
        for name, count in sorted(self.op_counts.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {name:<{width}}  {count}")
        return "\n".join(lines)


def report_from(model: TfliteModel) -> OpReport:
    counts = dict(model.op_counts)
    return OpReport(
        op_counts=counts,
        binary_convs=sum(counts.get(op, 0) for op in BINARY_CONV_OPS),
        float_mac_ops=sum(counts.get(op, 0) for op in FLOAT_MAC_OPS),
        size_bytes=model.size_bytes,
        requires_lce=model.requires_lce,
        custom_ops=model.custom_ops,
        input_shapes=model.input_shapes,
        output_shapes=model.output_shapes,
    )


def inspect(tflite: bytes | str | os.PathLike[str]) -> OpReport:
    """List the ops of a `.tflite` (bytes or path) and count binary vs float convs.

    Raises:
        InvalidTfliteError: not a TFLite flatbuffer, or corrupt.
    """
    return report_from(parse(tflite))
