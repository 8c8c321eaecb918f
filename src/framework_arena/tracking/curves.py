"""The learning-curve figure a trial logs: loss and accuracy per epoch, train and validation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def learning_curves(history: Sequence[Mapping[str, float]], title: str) -> Figure:
    """Two panels, loss and accuracy, over ``history``'s epochs.

    A bare ``Figure``, not pyplot: the launching process draws it (the Python API runs trials in
    a user's notebook, whose pyplot backend must not change), nothing holds it once dropped, and
    ``savefig`` renders it with Agg.
    """
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4), constrained_layout=True)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [h[f"train_{metric}"] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"val_{metric}"] for h in history], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig
