"""PNG plots of training curves (matplotlib, headless)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from bnn_tf import atomic


def plot_history(records: Sequence[dict], path: str | os.PathLike[str], *, title: str = "") -> None:
    """Plot loss and accuracy per epoch (train and validation) into a PNG.

    Args:
        records: one dict per epoch, as written to `history.json`
            (keys like `loss`, `accuracy`, `val_loss`, `val_accuracy`).
        path: the PNG to write (atomically).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.get("epoch", i + 1) for i, r in enumerate(records)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "-s")):
            values = [r.get(key) for r in records]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, label=label, markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
