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
