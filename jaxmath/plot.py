"""Pictures: learning curves, the learned Batman logo, image grids (adversarial examples, DeepDream); needs
matplotlib (``jaxmath[plot]``).

The one optional module of jaxmath: ``import jaxmath`` never imports it, and matplotlib is imported inside each
function, so ``import jaxmath.plot`` works without matplotlib and only drawing needs it. Figures are built with
``matplotlib.figure.Figure`` (no pyplot, no global state, no display needed) and saved to ``path``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

__all__ = ["history", "logo", "image_grid", "adversarial_examples"]


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


def _as_images(array: Any):
    """NumPy ``(m, H, W)`` float images from ``(m, H·W)`` with H = W, or ``(m, H, W[, 1])``."""
    import numpy as np

    images = np.asarray(array, dtype=np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 2:
        side = int(round(images.shape[1] ** 0.5))
        if side * side != images.shape[1]:
            raise ValueError(f"images must be (m, H, W) or (m, H·W) with H = W, got shape {images.shape}")
        images = images.reshape(len(images), side, side)
    if images.ndim != 3:
        raise ValueError(f"images must be (m, H, W) or (m, H·W) with H = W, got shape {images.shape}")
    return images


def image_grid(
    images: Any,
    path: str | os.PathLike,
    *,
    titles: Sequence[str] | None = None,
    columns: int | None = None,
    title: str = "",
    value_range: tuple[float, float] = (0.0, 1.0),
) -> None:
    """Grey-scale images in a grid, one optional title each, saved as an image file.

    Args:
      images: ``(m, H, W)`` (or ``(m, H·W)`` square) float pixels, drawn with ``value_range`` as black..white.
      path: the image file.
      titles: ``m`` titles, or None.
      columns: images per row (default: all in one row, at most 8).
      title: figure title.
      value_range: the pixel values drawn as black and white.
    """
    from matplotlib.figure import Figure

    images = _as_images(images)
    m = len(images)
    if titles is not None and len(titles) != m:
        raise ValueError(f"titles must have one entry per image ({m}), got {len(titles)}")
    columns = min(m, 8) if columns is None else max(1, columns)
    rows = -(-m // columns)
    fig = Figure(figsize=(1.6 * columns, 1.75 * rows + (0.4 if title else 0)), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < m:
            ax.imshow(images[i], cmap="gray", vmin=value_range[0], vmax=value_range[1], interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)


def adversarial_examples(
    x: Any,
    x_adv: Any,
    path: str | os.PathLike,
    *,
    eps: Sequence[float],
    labels: Sequence[int],
    predicted: Sequence[int],
    predicted_adv: Any,
    title: str = "",
) -> None:
    """Clean images and their adversarial versions, one row per image, one column per ε, predictions shown.

    Column 0 is the clean image titled "label y → p" (its true label and the network's prediction); column
    j ≥ 1 is the attack of radius ``eps[j-1]`` titled "ε=… → p", in red where the prediction is wrong.

    Args:
      x: ``(m, H, W)`` or ``(m, H·W)`` clean images in [0, 1].
      x_adv: ``(k, m, ...)`` adversarial images, one batch per ε.
      path: the image file.
      eps: the k radii.
      labels: ``(m,)`` true classes.
      predicted: ``(m,)`` predictions on ``x``.
      predicted_adv: ``(k, m)`` predictions on ``x_adv``.
      title: figure title.
    """
    import numpy as np
    from matplotlib.figure import Figure

    clean = _as_images(x)
    adv = np.asarray(x_adv, dtype=np.float32)
    k, m = len(eps), len(clean)
    if adv.shape[:2] != (k, m):
        raise ValueError(f"x_adv must be (k={k}, m={m}, ...) for {k} eps and {m} images, got shape {adv.shape}")
    adv = [_as_images(a) for a in adv]
    for name, value in (("labels", labels), ("predicted", predicted)):
        if np.shape(value) != (m,):
            raise ValueError(f"{name} must have shape (m,) = ({m},), one per image, got shape {np.shape(value)}")
    predicted_adv = np.asarray(predicted_adv)
    if predicted_adv.shape != (k, m):
        raise ValueError(
            f"predicted_adv must have shape (k, m) = ({k}, {m}) for {k} eps and {m} images, "
            f"got shape {predicted_adv.shape}"
        )
    fig = Figure(figsize=(1.5 * (k + 1), 1.6 * m + (0.4 if title else 0)), layout="constrained")
    axes = fig.subplots(m, k + 1, squeeze=False)
    for i in range(m):
        cells = [(clean[i], f"label {int(labels[i])} → {int(predicted[i])}", int(predicted[i]))]
        cells += [(adv[j][i], f"ε={eps[j]:g} → {int(predicted_adv[j, i])}", int(predicted_adv[j, i]))
                  for j in range(k)]
        for ax, (image, text, guess) in zip(axes[i], cells):
            ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(text, fontsize=9, color="black" if guess == int(labels[i]) else "red")
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)
