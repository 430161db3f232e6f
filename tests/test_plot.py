"""jaxmath.plot: the optional drawing module (learning curves, the learned logo)."""

import subprocess
import sys

import jax
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from jaxmath import plot  # noqa: E402
from jaxmath.datasets import batman_inside  # noqa: E402


def _png_size(path):
    from matplotlib.image import imread

    return imread(path).shape[:2]


def test_history_draws_train_and_validation_curves(tmp_path):
    history = {"train_loss": np.array([1.0, 0.5, 0.25]), "train_accuracy": [0.5, 0.7, 0.8],
               "val_loss": [1.1, 0.6, 0.4], "val_accuracy": [0.4, 0.6, 0.75], "epoch_time": [1.0, 0.1, 0.1]}
    plot.history(history, tmp_path / "curves.png", title="t")
    assert _png_size(tmp_path / "curves.png") == (350, 900)
    plot.history({"train_loss": [1.0]}, tmp_path / "one.png")  # missing entries are simply not drawn
    assert (tmp_path / "one.png").stat().st_size > 1000


def test_logo_draws_what_the_network_predicts(tmp_path):
    def oracle(params, x):  # the exact logo: what a perfect network would draw
        inside = batman_inside(x * np.asarray([8.0, 4.0], np.float32))
        return jax.numpy.stack([~inside, inside], axis=-1).astype(np.float32)

    plot.logo(oracle, None, tmp_path / "logo.png", resolution=20, accuracy=1.0)
    assert _png_size(tmp_path / "logo.png") == (440, 800)


def test_importing_jaxmath_plot_does_not_import_matplotlib():
    code = "import sys, jaxmath.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --------------------------------------------------------------------------- image grids
# Figures are saved at 100 dpi: a figure of w × h inches is a PNG of 100·w × 100·h pixels. The layouts below
# are the documented ones, written out by hand: image_grid gives each image 1.6 in of width and 1.75 in of
# height (plus 0.4 in for a figure title); adversarial_examples gives each column 1.5 in and each row 1.6 in.


def _pixels(path):
    from matplotlib.image import imread

    return imread(path)[..., :3]


def _red_pixels(pixels):
    """Pixels drawn in the titles' "red" (wrong predictions); grey images and black text have none."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return int(np.sum((r > 0.8) & (g < 0.3) & (b < 0.3)))


@pytest.mark.parametrize("num_images, columns, title, size", [
    (5, 2, "", (525, 320)),        # 3 rows of 2: 3 × 175 px high, 2 × 160 px wide
    (5, 2, "grid", (565, 320)),    # the title adds 40 px
    (10, None, "", (350, 1280)),   # default: at most 8 per row, so 2 rows of 8
    (3, None, "", (175, 480)),     # default: fewer than 8 images stay on one row
])
def test_image_grid_png_has_the_layouts_size(tmp_path, num_images, columns, title, size):
    images = np.random.default_rng(0).random((num_images, 28, 28), dtype=np.float32)
    path = tmp_path / "grid.png"
    plot.image_grid(images, path, columns=columns, title=title)
    assert _png_size(path) == size


def test_image_grid_draws_the_images_and_accepts_flat_rows(tmp_path):
    black, white = np.zeros((2, 784)), np.ones((2, 28, 28, 1))  # (m, H·W) rows and (m, H, W, 1) images
    plot.image_grid(black, tmp_path / "black.png", titles=["a", "b"])
    plot.image_grid(white, tmp_path / "white.png", titles=["a", "b"])
    dark = [int(np.sum(_pixels(tmp_path / name).max(axis=-1) < 0.05)) for name in ("black.png", "white.png")]
    # Two black 28×28 images fill far more black pixels than the titles' text alone does.
    assert dark[0] > dark[1] + 2 * 28 * 28


@pytest.mark.parametrize("images, kwargs, match", [
    (np.zeros((2, 28, 28, 3)), {}, r"images must be .*shape \(2, 28, 28, 3\)"),
    (np.zeros((2, 780)), {}, r"images must be .*shape \(2, 780\)"),
    (np.zeros(784), {}, r"images must be .*shape \(784,\)"),
    (np.zeros((3, 28, 28)), {"titles": ["a", "b"]}, r"titles must have one entry per image \(3\), got 2"),
])
def test_image_grid_refuses_bad_input_naming_the_argument(tmp_path, images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot.image_grid(images, tmp_path / "bad.png", **kwargs)
    assert not (tmp_path / "bad.png").exists()


def _examples(k, m, *, wrong=()):
    rng = np.random.default_rng(1)
    labels = np.arange(m) % 10
    predicted_adv = np.tile(labels, (k, 1))
    for j, i in wrong:
        predicted_adv[j, i] = (labels[i] + 1) % 10
    return dict(x=rng.random((m, 784), dtype=np.float32), x_adv=rng.random((k, m, 28, 28), dtype=np.float32),
                eps=[0.1 * (j + 1) for j in range(k)], labels=labels, predicted=labels.copy(),
                predicted_adv=predicted_adv)


@pytest.mark.parametrize("k, m, title, size", [
    (2, 3, "", (480, 450)),   # 3 rows × 160 px; 1 clean + 2 attacked columns × 150 px
    (1, 1, "t", (200, 300)),  # 160 px + 40 px for the title
])
def test_adversarial_examples_png_has_one_row_per_image_and_one_column_per_eps(tmp_path, k, m, title, size):
    path = tmp_path / "adv.png"
    plot.adversarial_examples(**_examples(k, m), path=path, title=title)
    assert _png_size(path) == size


def test_adversarial_examples_titles_wrong_predictions_in_red(tmp_path):
    plot.adversarial_examples(**_examples(2, 2), path=tmp_path / "right.png")
    plot.adversarial_examples(**_examples(2, 2, wrong=[(1, 0)]), path=tmp_path / "wrong.png")
    assert _red_pixels(_pixels(tmp_path / "right.png")) == 0
    assert _red_pixels(_pixels(tmp_path / "wrong.png")) > 10


@pytest.mark.parametrize("change, match", [
    ({"x_adv": np.zeros((3, 2, 28, 28))}, r"x_adv must be \(k=2, m=2, \.\.\.\).*got shape \(3, 2, 28, 28\)"),
    ({"x_adv": np.zeros((2, 3, 784))}, r"x_adv must be \(k=2, m=2, \.\.\.\).*got shape \(2, 3, 784\)"),
    ({"eps": [0.1]}, r"x_adv must be \(k=1, m=2, \.\.\.\) for 1 eps and 2 images"),
    ({"x": np.zeros((2, 756))}, r"images must be .*shape \(2, 756\)"),
    ({"x_adv": np.zeros((2, 2, 5, 5, 2))}, r"images must be .*shape \(2, 5, 5, 2\)"),
])
def test_adversarial_examples_refuses_bad_shapes_naming_the_argument(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        plot.adversarial_examples(**{**_examples(2, 2), **change}, path=tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


# A longer labels/predicted/predicted_adv than the images would have only its first m entries read (silently
# wrong titles), a shorter one would fail deep inside the drawing: both are refused up front, by name.
@pytest.mark.parametrize("change, name", [
    ({"labels": np.arange(3)}, "labels"),
    ({"labels": np.arange(1)}, "labels"),
    ({"predicted": np.arange(3)}, "predicted"),
    ({"predicted": np.arange(2)[:, None]}, "predicted"),
    ({"predicted_adv": np.zeros((2, 3), int)}, "predicted_adv"),
    ({"predicted_adv": np.zeros((1, 2), int)}, "predicted_adv"),
])
def test_adversarial_examples_refuses_mismatched_lengths_naming_the_argument(tmp_path, change, name):
    with pytest.raises(ValueError, match=rf"^{name} must have shape"):
        plot.adversarial_examples(**{**_examples(2, 2), **change}, path=tmp_path / "bad.png")
