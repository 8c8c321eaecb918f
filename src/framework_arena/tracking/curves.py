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
        ax.plot(epochs, [h[f"train/{metric}"] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"val/{metric}"] for h in history], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig


def warm_up() -> None:
    """Imports matplotlib and renders a small figure once (fonts, Agg): the first plot's ~0.4 s,
    paid while the launcher waits for the child instead of after it."""
    import io

    fig = learning_curves([{"epoch": 1, "train/loss": 1.0, "val/loss": 1.0, "train/accuracy": 0.5, "val/accuracy": 0.5}], "")
    fig.savefig(io.BytesIO(), format="png")


#: One band over seeds: the lowest and highest trial at each epoch (with two or three seeds, a
#: standard deviation would claim a spread it cannot estimate).
BAND = "min-max over seeds"


def seed_curves(groups: Mapping[str, Mapping[str, Sequence[tuple[int, float, float, float, int]]]], title: str) -> Figure:
    """Two panels, validation accuracy and loss per epoch: per group, the mean over its trials with a min-max band.

    Args:
        groups: label -> metric (``val/accuracy``, ``val/loss``) -> rows ``(epoch, mean, low, high, n)``.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), constrained_layout=True)  # a bare Figure, as learning_curves (the sweep may run in a notebook)
    axes = fig.subplots(1, 2)
    for ax, (metric, name) in zip(axes, (("val/accuracy", "validation accuracy"), ("val/loss", "validation loss"))):
        for i, (label, curves) in enumerate(groups.items()):
            rows = curves.get(metric) or []
            if not rows:
                continue
            epochs, mean, low, high, n = zip(*rows)
            color = f"C{i % 10}"
            ax.plot(epochs, mean, "o-", color=color, label=f"{label} (n={max(n)})")
            ax.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{name}: mean, band {BAND}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return fig
