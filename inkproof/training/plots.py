"""Training-history plots (loss, validation EER, learning rate) as one PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def plot_history(history: Sequence[dict[str, float]], path: str | Path) -> Path | None:
    """Three panels over epochs; returns None when there is nothing to plot."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epochs, [h["train_loss"] for h in history], marker="o")
    axes[0].set_title("training loss")
    for key, label in (
        ("val_eer", "all forgeries"),
        ("val_eer_skilled", "skilled"),
        ("val_eer_random", "random"),
    ):
        if all(key in h for h in history):
            axes[1].plot(epochs, [100 * h[key] for h in history], marker="o", label=label)
    axes[1].set_title("validation EER (%)")
    axes[1].legend()
    axes[2].plot(epochs, [h["lr"] for h in history], marker="o")
    axes[2].set_title("learning rate (end of epoch)")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target
