"""The learning-curve figure a trial logs: loss and accuracy per epoch, train and validation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def learning_curves(history: Sequence[Mapping[str, float]], title: str) -> Figure:
    """Two panels, loss and accuracy, over ``history``'s epochs; the caller closes the figure."""
    import matplotlib

    matplotlib.use("Agg")  # no display in a child process or on a cluster node
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [h[f"train/{metric}"] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"val/{metric}"] for h in history], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig


def close_figure(fig: Figure) -> None:
    """Frees ``fig`` (pyplot keeps every figure it made until closed)."""
    import matplotlib.pyplot as plt

    plt.close(fig)
