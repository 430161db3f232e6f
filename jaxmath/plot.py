"""Pictures of training runs: learning curves and the learned Batman logo (needs matplotlib: ``jaxmath[plot]``).

The one optional module of jaxmath: ``import jaxmath`` never imports it, and matplotlib is imported inside each
function, so ``import jaxmath.plot`` works without matplotlib and only drawing needs it. Figures are built with
``matplotlib.figure.Figure`` (no pyplot, no global state, no display needed) and saved to ``path``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

__all__ = ["history", "logo"]


def history(history: Mapping[str, Sequence[float]], path: str | os.PathLike, *, title: str = "") -> None:
    """Learning curves: loss and accuracy per epoch, train and validation, saved as an image.

    Args:
      history: per-epoch values as ``training.fit``'s ``info.history`` holds them: ``"train_loss"``,
        ``"train_accuracy"``, ``"val_loss"``, ``"val_accuracy"`` (any may be missing or empty).
      path: the image file (``.png``, or any format matplotlib writes).
      title: figure title.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for prefix, label in (("train", "train (mean over the epoch)"), ("val", "validation")):
            values = history.get(f"{prefix}_{metric}")
            if values is not None and len(values):
                ax.plot(range(1, len(values) + 1), [float(v) for v in values], marker="o", label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


def logo(
    apply_fn: Callable[[Any, Any], Any],
    params: Any,
    path: str | os.PathLike,
    *,
    resolution: int = 200,
    input_scale: Sequence[float] | None = None,
    accuracy: float | None = None,
) -> None:
    """Draw the class a network predicts over [−8, 8] × [−4, 4], with the true Batman curve on top.

    The grid evaluation is ``jaxmath.datasets.logo_image``; this function only draws it.

    Args:
      apply_fn: ``apply(params, x) -> (n, 2) logits`` (a ``Model``'s ``apply``).
      params: the network's params.
      path: the image file.
      resolution: grid rows; the image is ``2·resolution`` by ``resolution`` cells.
      input_scale: what the points were divided by in training (default ``batman.INPUT_SCALE``).
      accuracy: shown in the title when given.
    """
    import numpy as np
    from matplotlib.figure import Figure

    from jaxmath.datasets import batman

    scale = batman.INPUT_SCALE if input_scale is None else tuple(input_scale)
    predicted, truth = batman.logo_image(apply_fn, params, resolution=resolution, input_scale=scale)
    xs, ys, _ = batman.logo_grid(resolution)
    fig = Figure(figsize=(8, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.imshow(predicted, origin="lower", extent=batman.BOX, cmap="cividis_r", interpolation="nearest")
    ax.contour(xs, ys, truth.astype(np.float32), levels=[0.5], colors="red", linewidths=0.8)
    subtitle = f", eval accuracy {accuracy:.2%}" if accuracy is not None else ""
    ax.set_title(f"Batman logo learned by an MLP (red: the true curve{subtitle})")
    ax.set_aspect("equal")
    fig.savefig(path, dpi=100)
