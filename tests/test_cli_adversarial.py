"""``jaxmath attack`` and ``jaxmath dream`` on a tiny MLP saved once per module: the printed table against
``robust_accuracy`` computed here, the JSON, the pictures, and the one-line errors (exit status 2) that come
before any work."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import adversarial, dream, models, optim, training
from jaxmath.cli import main
from jaxmath.datasets import load_mnist
from jaxmath.models import mlp

pytest.importorskip("matplotlib")
SAMPLES = 150


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 784-16-10 ReLU MLP trained for 2 epochs on 1,000 images, saved as 'jaxmath train --save' does."""
    x, labels = load_mnist("train[:1000]")
    model = mlp.make((784, 16, 10), activation="relu")
    loss_fn = training.make_classifier_loss(model, num_classes=10, loss="softmax_cross_entropy")
    step = training.make_train_step(loss_fn, optim.adam(learning_rate=3e-3))
    state, _ = training.fit(step.init(model.init(jax.random.key(0)), key=jax.random.key(1)), x, labels,
                            train_step=step, num_epochs=2, batch_size=50, progress=False)
    directory = tmp_path_factory.mktemp("model")
    models.save(directory, model, state.params)
    return str(directory)


@pytest.fixture(scope="module")
def test_images():
    x, labels = load_mnist(f"test[:{SAMPLES}]")
    return jnp.asarray(x.reshape(SAMPLES, -1), jnp.float32) / 255.0, jnp.asarray(labels, jnp.int32)


def _rows(out):
    """{'clean': (acc, count), '0.1': (acc, count), ...} from the printed table."""
    found = re.findall(r"^  (clean|[0-9.e-]+)\s+([01]\.\d{4})\s+([\d,]+)$", out, flags=re.M)
    return {name: (float(acc), int(count.replace(",", ""))) for name, acc, count in found}


def test_attack_pgd_prints_robust_accuracy_per_eps_and_writes_json_and_plot(saved, test_images, tmp_path, capsys):
    json_path, png_path = tmp_path / "r.json", tmp_path / "grid.png"
    status = main(["attack", "--model", saved, "--method", "pgd", "--eps", "0.05,0.1,0.3", "--steps", "5",
                   "--step-size", "0.03", "--samples", str(SAMPLES), "--seed", "3", "--json", str(json_path),
                   "--plot", str(png_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    # The table fits 80 columns; "wrote FILE" lines carry the (long) tmp paths the test chose.
    assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith("wrote ")), out
    assert f"wrote {json_path}" in out and f"wrote {png_path}" in out

    model, params, _ = models.load(saved)
    x, labels = test_images
    want = adversarial.robust_accuracy(model.apply, params, x, labels, jax.random.key(3), eps=[0.05, 0.1, 0.3],
                                       attack="pgd", num_steps=5, step_size=0.03)
    rows = _rows(out)
    assert list(rows) == ["clean", "0.05", "0.1", "0.3"], out
    assert rows["clean"] == (round(want.clean_accuracy, 4), round(want.clean_accuracy * SAMPLES))
    for e, acc in zip(["0.05", "0.1", "0.3"], want.accuracy):
        assert rows[e] == (round(float(acc), 4), round(float(acc) * SAMPLES))
    assert rows["clean"][0] > 0.5 and rows["0.3"][0] < rows["clean"][0]  # a trained net, and the attack bites

    report = json.loads(json_path.read_text())
    assert report["results"]["eps"] == [0.05, 0.1, 0.3] and report["results"]["examples"] == SAMPLES
    np.testing.assert_allclose(report["results"]["accuracy"], want.accuracy)
    assert report["results"]["clean_accuracy"] == pytest.approx(want.clean_accuracy)
    assert report["settings"]["num_steps"] == 5 and report["config"]["name"] == "mlp"

    from matplotlib.image import imread

    picture = imread(png_path)
    assert picture.ndim == 3 and picture.shape[0] > picture.shape[1] > 200  # 6 rows of 4 images


def test_attack_fgsm_matches_robust_accuracy(saved, test_images, capsys):
    assert main(["attack", "--model", saved, "--method", "fgsm", "--eps", "0.1", "--samples", str(SAMPLES),
                 "--loss", "cw_margin"]) == 0
    model, params, _ = models.load(saved)
    want = adversarial.robust_accuracy(model.apply, params, *test_images, jax.random.key(0), eps=[0.1],
                                       attack="fgsm", loss="cw_margin")
    rows = _rows(capsys.readouterr().out)
    assert rows["0.1"][1] == round(float(want.accuracy[0]) * SAMPLES)


@pytest.mark.parametrize("flags, message", [
    (["--eps", "0.1,0"], "--eps values must be finite and > 0, got '0'"),
    (["--eps", "-0.2"], "--eps values must be finite and > 0, got '-0.2'"),
    (["--eps", "0.1,big"], "--eps must be comma-separated numbers like 0.1,0.2,0.3, got '0.1,big'"),
    (["--method", "cw"], "--method must be one of fgsm, pgd, got 'cw'"),
    (["--method", "fgsm", "--steps", "10"], "--steps applies to --method pgd only"),
    (["--norm", "l1"], "--norm must be one of linf, l2, got 'l1'"),
    (["--loss", "mse"], "--loss must be one of cross_entropy, cw_margin, got 'mse'"),
    (["--step-size", "0"], "--step-size must be a finite number > 0, got 0"),
    (["--samples", "0"], "--samples must be >= 1, got 0"),
    (["--plot", "/no/such/dir/grid.png"], "--plot: directory '/no/such/dir' does not exist"),
    (["--json", "/no/such/dir/r.json"], "--json: directory '/no/such/dir' does not exist"),
    (["--samples", "20000"], "--samples must be <= the 10,000 images of --eval 'test', got 20,000"),
])
def test_attack_bad_flags_are_one_line_errors(saved, flags, message, capsys):
    assert main(["attack", "--model", saved, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxmath attack: error: ") and message in err and err.count("\n") == 1, err


def test_missing_or_foreign_model_directory_is_refused(tmp_path, capsys):
    assert main(["attack", "--model", str(tmp_path / "none")]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["dream", "--model", str(tmp_path), "--layer", "c1"]) == 2
    err = capsys.readouterr().err
    assert "has no params.npz or config.json" in err and err.count("\n") == 1
    logo = mlp.make((2, 8, 2))
    models.save(tmp_path / "logo", logo, logo.init(jax.random.key(0)))
    assert main(["attack", "--model", str(tmp_path / "logo")]) == 2
    assert "is not an MNIST classifier" in capsys.readouterr().err


def test_dream_writes_the_picture_and_raises_the_objective(saved, tmp_path, capsys):
    out_png = tmp_path / "dream.png"
    assert main(["dream", "--model", saved, "--layer", "layer_1", "--channel", "2", "--out", str(out_png),
                 "--octaves", "2", "--steps", "5", "--start", "test:3"]) == 0
    out = capsys.readouterr().out
    before, after = (float(v) for v in re.search(r"objective  (\S+) -> (\S+)", out).groups())
    model, params, _ = models.load(saved)
    x, labels = load_mnist("test[3:4]")
    start = dream.layer_objective(model, "layer_1", channel=2)(params, jnp.asarray(x, jnp.float32) / 255.0)
    assert before == pytest.approx(float(start[0]), rel=1e-3) and after > before
    assert f"wrote {out_png}" in out and out_png.stat().st_size > 0
    assert f"(a {int(labels[0])})" in out


@pytest.mark.parametrize("flags, message", [
    (["--layer", "c3"], "--layer: layer must be one of layer_1, layer_2 (the layers of this mlp model), "
                        "got layer='c3'"),
    (["--layer", "layer_1", "--channel", "16"], "--channel: channel must be in [0, 16) for layer 'layer_1'"),
    (["--layer", "layer_1", "--start", "train:3"], "--start must be 'noise' or 'test:INDEX'"),
    (["--layer", "layer_1", "--start", "test:10000"], "--start test:INDEX must be < 10,000, got 10,000"),
    (["--layer", "layer_1", "--out", "dream.jpg"], "--out must name a .png file, got 'dream.jpg'"),
    (["--layer", "layer_1", "--octave-scale", "1"], "--octave-scale must be > 1, got 1"),
])
def test_dream_bad_flags_are_one_line_errors(saved, flags, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["dream", "--model", saved, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxmath dream: error: ") and message in err and err.count("\n") == 1, err
