"""Reading a `.tflite` flatbuffer: validation, op list, op counts.

Uses TensorFlow's generated flatbuffer schema (no interpreter needed), so a
model with LCE custom ops can be inspected anywhere.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bnn_tf.errors import InvalidTfliteError

# TFLite files carry the 4-byte identifier "TFL3" at offset 4.
_FILE_IDENTIFIER = b"TFL3"

LCE_OPS = frozenset({"LceQuantize", "LceDequantize", "LceBconv2d", "LceBMaxPool2d"})
BINARY_CONV_OPS = frozenset({"LceBconv2d"})
# Float ops that do multiply-accumulate work: a quantized layer landing here fell back to float.
FLOAT_MAC_OPS = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL"}
)


def read_bytes(tflite: bytes | str | os.PathLike[str]) -> bytes:
    """Return the flatbuffer bytes of `tflite` (bytes or a path), validated.

    Raises:
        InvalidTfliteError: the file is missing, empty or not a TFLite flatbuffer.
    """
    if isinstance(tflite, (bytes, bytearray, memoryview)):
        buf, where = bytes(tflite), "the given bytes"
    else:
        path = Path(tflite)
        if not path.is_file():
            raise InvalidTfliteError(f"{path}: no such file. Fix: pass the path of a .tflite file.")
        buf, where = path.read_bytes(), str(path)
    if len(buf) < 8 or buf[4:8] != _FILE_IDENTIFIER:
        hint = ""
        if buf[:2] == b"PK":
            hint = " It looks like a .keras (zip) model: convert it first with `bnn-tf convert`."
        raise InvalidTfliteError(
            f"{where} is not a TFLite model (missing the 'TFL3' flatbuffer identifier).{hint}"
        )
    return buf


@dataclass(frozen=True)
class Operator:
    """One operator of the main subgraph, in execution order."""

    index: int
    op: str  # builtin name (e.g. "CONV_2D") or custom code (e.g. "LceBconv2d")
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    output_names: tuple[str, ...] = ()
    subgraph: int = 0


@dataclass
class TfliteModel:
    """The parts of a flatbuffer that reports need."""

    operators: list[Operator]
    size_bytes: int
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]]
    num_subgraphs: int
    tensor_shapes: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)

    @property
    def op_counts(self) -> Counter:
        return Counter(op.op for op in self.operators)

    @property
    def custom_ops(self) -> list[str]:
        return sorted({op.op for op in self.operators if not op.op.isupper()})

    @property
    def requires_lce(self) -> bool:
        """True if the model only runs with LCE's op resolver (not stock TFLite)."""
        return any(op.op in LCE_OPS for op in self.operators)


def _builtin_names() -> dict[int, str]:
    from tensorflow.lite.python import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def parse_root(tflite: bytes | str | os.PathLike[str]):
    """The validated bytes and the full object tree (`schema.ModelT`) of a `.tflite`.

    For readers that need more than `parse` keeps (buffers, op options, tensor types).

    Raises:
        InvalidTfliteError: missing, not a TFLite flatbuffer, corrupt or truncated.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    buf = read_bytes(tflite)
    try:
        root = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
    except Exception as exc:  # noqa: BLE001  any flatbuffer decoding error means "corrupt"
        raise InvalidTfliteError(f"The TFLite flatbuffer is corrupt or truncated: {exc}") from None
    if not root.subgraphs or root.operatorCodes is None:
        # A valid header over zeroed/garbage tables decodes to an empty model.
        raise InvalidTfliteError(
            "The TFLite flatbuffer is corrupt: it has no subgraph or no operator codes."
        )
    return buf, root


def op_names(root) -> list[str]:
    """Op name per operator code of a `schema.ModelT`: builtin name or custom code."""
    names = _builtin_names()
    codes = []
    for code in root.operatorCodes or []:
        if code.customCode:
            codes.append(code.customCode.decode())
        else:
            # Newer schemas keep large builtin codes in `builtinCode`, old ones in `deprecatedBuiltinCode`.
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            codes.append(names.get(builtin, f"BUILTIN_{builtin}"))
    return codes


def lce_options(op) -> dict:
    """The flexbuffer custom options of an LCE op (`schema.OperatorT`), {} if unreadable."""
    if op.customOptions is None or len(op.customOptions) == 0:
        return {}
    from flatbuffers import flexbuffers

    try:
        return dict(
            flexbuffers.Loads(bytearray(np.asarray(op.customOptions, dtype=np.uint8).tobytes()))
        )
    except Exception:  # noqa: BLE001  options we cannot read only cost the exact C_in
        return {}


def parse(tflite: bytes | str | os.PathLike[str]) -> TfliteModel:
    """Parse a `.tflite` (bytes or path) into a `TfliteModel` (all subgraphs).

    Raises:
        InvalidTfliteError: missing, not a TFLite flatbuffer, corrupt or truncated.
    """
    buf, root = parse_root(tflite)
    try:
        return _model_from_root(buf, root)
    except (IndexError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        # Garbage that still decodes: indices point outside their tables.
        raise InvalidTfliteError(
            f"The TFLite flatbuffer is corrupt: {type(exc).__name__}: {exc}"
        ) from None


def _model_from_root(buf: bytes, root) -> TfliteModel:
    codes = op_names(root)
    operators: list[Operator] = []
    tensor_shapes: dict[tuple[int, int], tuple[int, ...]] = {}
    for s, sub in enumerate(root.subgraphs or []):
        tensors = sub.tensors or []
        for t_idx, t in enumerate(tensors):
            tensor_shapes[(s, t_idx)] = tuple(
                int(d) for d in (t.shape if t.shape is not None else ())
            )
        for op in sub.operators or []:
            outs = tuple(int(i) for i in (op.outputs if op.outputs is not None else ()))
            operators.append(
                Operator(
                    index=len(operators),
                    op=codes[op.opcodeIndex],
                    inputs=tuple(int(i) for i in (op.inputs if op.inputs is not None else ())),
                    outputs=outs,
                    output_names=tuple(
                        tensors[i].name.decode() if tensors[i].name else "" for i in outs if i >= 0
                    ),
                    subgraph=s,
                )
            )
    main = root.subgraphs[0]
    return TfliteModel(
        operators=operators,
        size_bytes=len(buf),
        input_shapes=[tensor_shapes[(0, i)] for i in main.inputs],
        output_shapes=[tensor_shapes[(0, i)] for i in main.outputs],
        num_subgraphs=len(root.subgraphs),
        tensor_shapes=tensor_shapes,
    )
