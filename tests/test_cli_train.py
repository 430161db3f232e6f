"""``jaxmath train``: in-process runs with tiny settings; outputs checked against NumPy recomputations."""

import contextlib
import gzip
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from jaxmath.cli import main
from jaxmath.cli.train import load_params
from jaxmath.datasets import mnist as mnist_module

SHARED = Path(os.environ.get("JAXMATH_DATA_DIR", "")) / "mnist"
needs_shared = pytest.mark.skipif(not (SHARED / "t10k-images-idx3-ubyte.gz").is_file(), reason="shared MNIST missing")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def raw_test_split():
    """The MNIST test split decoded here with gzip + the fixed IDX header sizes (independent of jaxmath)."""
    images = np.frombuffer(gzip.decompress((SHARED / "t10k-images-idx3-ubyte.gz").read_bytes())[16:], np.uint8)
    labels = np.frombuffer(gzip.decompress((SHARED / "t10k-labels-idx1-ubyte.gz").read_bytes())[8:], np.uint8)
    return images.reshape(-1, 784), labels


def numpy_forward(params, x, *, hidden, output):
    act = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "identity": lambda z: z}
    a = x
    for i, (w, b) in enumerate(params):
        z = a @ w.astype(np.float64) + b.astype(np.float64)
        a = act[output if i == len(params) - 1 else hidden](z)
    return a


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """One tiny training run writing every output; shared by the checks below."""
    out = tmp_path_factory.mktemp("mlp")
    argv = ["train", "mlp", "--train", "test[:512]", "--eval", "test[512:768]", "--epochs", "2",
            "--batch-size", "64", "--hidden", "16,16", "--seed", "3", "--no-progress",
            "--json", str(out / "r.json"), "--plot", str(out / "curves.png"), "--save", str(out / "model")]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(argv)
    return code, out, stdout.getvalue()


@needs_shared
def test_mlp_prints_table(mlp_run):
    code, _, out = mlp_run
    assert code == 0
    for row in ("train accuracy", "eval accuracy", "epoch time", "samples/s", "device", "784-16-16-10", "13,002"):
        assert row in out


@needs_shared
def test_mlp_json_matches_numpy_recomputation(mlp_run):
    code, out, _ = mlp_run
    assert code == 0
    report = json.loads((out / "r.json").read_text())
    config, results, history = report["config"], report["results"], report["history"]
    assert config["sizes"] == [784, 16, 16, 10] and config["loss"] == "sum_of_squares"
    assert config["train"] == "test[:512]" and config["eval"] == "test[512:768]"
    assert results["train_examples"] == 512 and results["eval_examples"] == 256 and results["epochs_run"] == 2
    assert len(history["train_loss"]) == 2 and len(history["val_accuracy"]) == 2
    assert results["samples_per_s"] > 0 and results["device"].startswith("cpu")

    params, saved_config = load_params(out / "model")
    assert saved_config == config
    assert [tuple(w.shape) + tuple(b.shape) for w, b in params] == [(784, 16, 16), (16, 16, 16), (16, 10, 10)]
    assert all(w.dtype == np.float32 for w, _ in params)

    images, labels = raw_test_split()
    for rows, acc_key, loss_key in ((slice(0, 512), "train_accuracy", "train_loss"),
                                    (slice(512, 768), "eval_accuracy", "eval_loss")):
        x = images[rows].astype(np.float64) / 255
        y = labels[rows]
        a = numpy_forward(params, x, hidden="sigmoid", output="sigmoid")
        accuracy = np.mean(np.argmax(a, axis=1) == y)
        loss = np.mean(np.sum((a - np.eye(10)[y]) ** 2, axis=1))  # the notes' sum of squares, mean over examples
        assert abs(results[acc_key] - accuracy) <= 1 / len(y) + 1e-9
        np.testing.assert_allclose(results[loss_key], loss, rtol=1e-5)
    # The final eval metrics are the last history entry (evaluated with the same params).
    np.testing.assert_allclose(history["val_loss"][-1], results["eval_loss"], rtol=1e-6)


@needs_shared
def test_mlp_plot_is_a_png(mlp_run):
    _, out, _ = mlp_run
    data = (out / "curves.png").read_bytes()
    assert data[:8] == PNG_MAGIC
    image = pytest.importorskip("matplotlib.image").imread(out / "curves.png")
    assert image.shape[:2] == (350, 900)  # figsize (9, 3.5) at 100 dpi


@needs_shared
def test_npz_has_no_pickled_objects(mlp_run):
    _, out, _ = mlp_run
    with np.load(out / "model" / "params.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["W0", "W1", "W2", "b0", "b1", "b2"]
        assert all(data[k].dtype.kind == "f" for k in data.files)


@needs_shared
def test_nonfinite_loss_stops_with_exit_status_1_and_keeps_params(tmp_path, capsys):
    code = main(["train", "mlp", "--train", "test[:512]", "--eval", "test[512:640]", "--epochs", "3",
                 "--loss", "ce", "--activation", "relu", "--lr", "1e30", "--no-progress", "--save", str(tmp_path / "m")])
    captured = capsys.readouterr()
    assert code == 1
    assert "non-finite loss at epoch 1, step" in captured.err
    assert "Traceback" not in captured.err
    params, _ = load_params(tmp_path / "m")
    assert all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in params)
    assert json.loads((tmp_path / "m" / "config.json").read_text())["results"]["stop_reason"].startswith("non-finite")


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    code = main(["train", "mlp", "--plot", "curves.png"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--plot needs matplotlib: pip install 'jaxmath[plot]'" in err


# ----------------------------------------------------------------------------- one-line errors


BAD_FLAGS = [
    (["train"], "jaxmath train mlp"),
    (["train", "mlp", "--lr", "-1"], "--lr must be a finite number > 0, got -1"),
    (["train", "mlp", "--lr", "nan"], "--lr"),
    (["train", "mlp", "--lr", "fast"], "--lr"),
    (["train", "mlp", "--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["train", "mlp", "--epochs", "two"], "--epochs"),
    (["train", "mlp", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "mlp", "--hidden", "16,x"], "--hidden"),
    (["train", "mlp", "--hidden", "16,0"], "--hidden"),
    (["train", "mlp", "--activation", "swish"], "--activation must be one of"),
    (["train", "mlp", "--loss", "hinge"], "--loss must be mse or ce"),
    (["train", "mlp", "--optimizer", "lbfgs"], "--optimizer must be one of"),
    (["train", "mlp", "--dataset", "cifar10"], "--dataset"),
    (["train", "mlp", "--seed", "-3"], "--seed"),
    (["train", "mlp", "--train", "test[:abc]"], "--train"),
    (["train", "mlp", "--eval", "validation"], "--eval"),
    (["train", "mlp", "--plot", "curves.jpg"], "--plot must name a .png"),
    (["train", "mlp", "--json", "/nonexistent-dir/r.json"], "--json: directory"),
    (["train", "mlp", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["train", "logo", "--points", "0"], "--points must be >= 1"),
    (["train", "logo", "--out", "logo.svg"], "--out must name a .png"),
    (["train", "logo", "--batch-size", "500", "--points", "100"], "--batch-size must be <= --points"),
]


@pytest.mark.parametrize("argv, expected", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flag_values_give_one_line_errors(argv, expected, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("jaxmath"), err
    assert expected in err
    assert "Traceback" not in err


@needs_shared
def test_batch_larger_than_training_split(capsys):
    code = main(["train", "mlp", "--train", "test[:100]", "--eval", "test[100:200]", "--batch-size", "128"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--batch-size must be <= the 100 training examples, got 128" in err


@needs_shared
def test_empty_split_is_refused(capsys):
    code = main(["train", "mlp", "--train", "test[5:5]", "--eval", "test[:10]"])
    err = capsys.readouterr().err
    assert code == 2 and "selects no examples" in err


def test_missing_data_offline_says_where(tmp_path, monkeypatch, capsys):
    def offline(url, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(mnist_module, "_urlopen_bytes", offline)
    code = main(["train", "mlp", "--data-dir", str(tmp_path), "--train", "train[:100]"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "train-images-idx3-ubyte.gz" in err and str(tmp_path / "mnist") in err
    assert list(tmp_path.rglob("*.gz")) == []


@pytest.mark.slow
def test_logo_default_settings_reach_97_percent_and_write_outputs(tmp_path):
    """The issue's target: the logo MLP classifies >= 97% of points correctly (default flags, seed 0)."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["train", "logo", "--no-progress", "--resolution", "20", "--out", str(tmp_path / "logo.png"),
                     "--json", str(tmp_path / "logo.json"), "--save", str(tmp_path / "logo_model")])
    assert code == 0
    assert "logo written to" in stdout.getvalue()
    assert (tmp_path / "logo.png").read_bytes()[:8] == PNG_MAGIC
    report = json.loads((tmp_path / "logo.json").read_text())
    results = report["results"]
    assert report["config"]["sizes"] == [2, 64, 64, 2]
    assert results["train_examples"] == 20_000 and results["eval_examples"] == 5_000
    assert results["eval_accuracy"] >= 0.97 and results["train_accuracy"] >= 0.97

    # Recompute on hand-picked points of the Batman curve with the saved params, in NumPy.
    params, config = load_params(tmp_path / "logo_model")
    points = np.array([[0.0, 0.0], [5.0, 0.0], [-5.0, 0.0], [0.0, 3.8], [7.8, 3.8], [-7.8, -3.8], [0.0, 2.7],
                       [2.0, 1.6]])
    logits = numpy_forward(params, points / np.array(config["input_scale"]), hidden="tanh", output="identity")
    assert logits.shape == (8, 2)
    np.testing.assert_array_equal(np.argmax(logits, axis=1), [1, 1, 1, 0, 0, 0, 0, 0])
