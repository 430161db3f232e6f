"""``jaxmath train``: tiny runs through a subprocess (what a user types), outputs checked against NumPy."""

import contextlib
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxmath import models
from jaxmath.cli import main

SHARED = Path(os.environ.get("JAXMATH_DATA_DIR", "")) / "mnist"
needs_shared = pytest.mark.skipif(not (SHARED / "train-labels-idx1-ubyte.gz").is_file(),
                                  reason="shared MNIST (train and test) missing")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def jaxmath(*argv, env=None, code=None):
    """Run ``jaxmath ARGV`` (or ``python -c CODE ARGV``) in a fresh process with an 80-column terminal."""
    environ = {**os.environ, "COLUMNS": "80", "MPLBACKEND": "Agg", **(env or {})}
    command = [sys.executable, "-m", "jaxmath", *argv] if code is None else [sys.executable, "-c", code, *argv]
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=600)


def raw_split(name):
    """An MNIST split decoded here with gzip + the fixed IDX header sizes (independent of jaxmath)."""
    prefix = {"train": "train", "test": "t10k"}[name]
    images = np.frombuffer(gzip.decompress((SHARED / f"{prefix}-images-idx3-ubyte.gz").read_bytes())[16:], np.uint8)
    labels = np.frombuffer(gzip.decompress((SHARED / f"{prefix}-labels-idx1-ubyte.gz").read_bytes())[8:], np.uint8)
    return images.reshape(-1, 784), labels


def numpy_forward(params, x, *, hidden, output):
    act = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "identity": lambda z: z}
    a = x
    for i, (w, b) in enumerate(params):
        z = a @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
        a = act[output if i == len(params) - 1 else hidden](z)
    return a


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """One tiny run (train slice, val slice, eval slice) writing every output; shared by the checks below."""
    out = tmp_path_factory.mktemp("mlp")
    result = jaxmath("train", "mlp", "--train", "train[:512]", "--val", "train[-256:]", "--eval", "test[:256]",
                     "--epochs", "2", "--batch-size", "64", "--seed", "3", "--no-progress",
                     "--json", str(out / "r.json"), "--plot", str(out / "curves.png"), "--save", str(out / "model"))
    return result, out


@needs_shared
def test_mlp_prints_an_80_column_table_and_the_files_it_wrote(mlp_run):
    result, out = mlp_run
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "jaxmath train mlp: 784-16-16-10 sigmoid, 13,002 params"
    for row in ("train accuracy", "val accuracy", "eval accuracy", "epoch time", "samples/s", "device"):
        assert any(line.lstrip().startswith(row) for line in lines), row
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    # The params first: a report that fails to write never loses them.
    assert lines[-4:] == [f"wrote {out / 'model' / 'params.npz'}", f"wrote {out / 'model' / 'config.json'}",
                          f"wrote {out / 'r.json'}", f"wrote {out / 'curves.png'}"]


@needs_shared
def test_mlp_report_matches_numpy_recomputation_on_train_val_and_eval(mlp_run):
    result, out = mlp_run
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "r.json").read_text())
    config, settings, results, history = report["config"], report["settings"], report["results"], report["history"]
    assert config["name"] == "mlp" and config["sizes"] == [784, 16, 16, 10] and config["output"] == "sigmoid"
    assert settings["loss"] == "sum_of_squares" and settings["learning_rate"] == 1.0
    assert (settings["train"], settings["val"], settings["eval"]) == ("train[:512]", "train[-256:]", "test[:256]")
    assert (results["train_examples"], results["val_examples"], results["eval_examples"]) == (512, 256, 256)
    assert results["epochs_run"] == 2 and len(history["train_loss"]) == 2 and len(history["val_loss"]) == 2
    assert results["best_epoch"] == 1 + int(np.argmin(history["val_loss"]))  # the kept params: lowest val loss

    model, params, metadata = models.load(out / "model")
    assert model.config == config and metadata["results"] == results
    train_x, train_labels = raw_split("train")
    test_x, test_labels = raw_split("test")
    for name, x, labels in (("train", train_x[:512], train_labels[:512]), ("val", train_x[-256:], train_labels[-256:]),
                            ("eval", test_x[:256], test_labels[:256])):
        a = numpy_forward(params, x.astype(np.float64) / 255, hidden="sigmoid", output="sigmoid")
        accuracy = np.mean(np.argmax(a, axis=1) == labels)
        loss = np.mean(np.sum((a - np.eye(10)[labels]) ** 2, axis=1))  # the notes' sum of squares, mean over examples
        assert abs(results[f"{name}_accuracy"] - accuracy) <= 1 / len(labels) + 1e-9, name
        np.testing.assert_allclose(results[f"{name}_loss"], loss, rtol=1e-5, err_msg=name)
    # Validation is what fit monitored: the kept epoch's val loss is the final val loss.
    np.testing.assert_allclose(history["val_loss"][results["best_epoch"] - 1], results["val_loss"], rtol=1e-5)


@needs_shared
def test_mlp_plot_is_a_png(mlp_run):
    _, out = mlp_run
    assert (out / "curves.png").read_bytes()[:8] == PNG_MAGIC
    image = pytest.importorskip("matplotlib.image").imread(out / "curves.png")
    assert image.shape[:2] == (350, 900)  # figsize (9, 3.5) at 100 dpi


@needs_shared
def test_loss_mse_is_jaxmath_losses_mse(tmp_path):
    # Slices of test only: a child process that reads train decompresses all 60,000 images first.
    result = jaxmath("train", "mlp", "--train", "test[128:384]", "--eval", "test[:128]", "--loss", "mse",
                     "--epochs", "1", "--batch-size", "64", "--no-progress", "--save", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    _, params, metadata = models.load(tmp_path / "m")
    x, labels = raw_split("test")
    a = numpy_forward(params, x[:128].astype(np.float64) / 255, hidden="sigmoid", output="sigmoid")
    # The mean over every entry, not the notes' sum over the 10 outputs.
    np.testing.assert_allclose(metadata["results"]["eval_loss"], np.mean((a - np.eye(10)[labels[:128]]) ** 2),
                               rtol=1e-5)


@needs_shared
def test_nonfinite_loss_stops_with_exit_status_1_and_keeps_params(tmp_path, capsys):
    code = main(["train", "mlp", "--train", "test[128:640]", "--eval", "test[:128]", "--epochs", "3",
                 "--loss", "softmax_cross_entropy", "--activation", "relu", "--lr", "1e30", "--no-progress",
                 "--save", str(tmp_path / "m")])
    captured = capsys.readouterr()
    assert code == 1
    assert "non-finite loss at epoch 1, step" in captured.err and "Traceback" not in captured.err
    _, params, metadata = models.load(tmp_path / "m")
    assert all(np.isfinite(np.asarray(leaf)).all() for layer in params for leaf in layer)
    assert metadata["results"]["stop_reason"].startswith("non-finite")


# ----------------------------------------------------------------------------- the first hour, as typed


def test_version():
    import jaxmath as package

    result = jaxmath("--version")
    assert result.returncode == 0 and result.stdout == f"jaxmath {package.__version__}\n"


@pytest.mark.parametrize(
    "argv, expected",
    [
        # The default --eval is test: training on test would report accuracy on the training data.
        (["--train", "test"], "--train 'test' and --eval 'test' share 10,000 examples"),
        (["--train", "train", "--val", "train[-5000:]"], "--train 'train' and --val 'train[-5000:]' share 5,000"),
        (["--train", "train[:50000]", "--val", "test[:100]"], "--val 'test[:100]' and --eval 'test' share 100"),
        (["--hidden", ""], "--hidden must be comma-separated positive integers like 16,16, got ''"),
        (["--patience", "3"], "--patience needs a validation split"),
        (["--loss", "ce"], "--loss must be one of sum_of_squares, mse, softmax_cross_entropy"),
    ],
)
def test_first_hour_mistakes_are_refused_in_one_line(argv, expected):
    result = jaxmath("train", "mlp", *argv)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    if "share" in expected:
        assert "--allow-overlap" in result.stderr


@needs_shared
def test_allow_overlap_trains_on_overlapping_splits_when_asked(tmp_path):
    result = jaxmath("train", "mlp", "--train", "test[:256]", "--eval", "test[:256]", "--allow-overlap",
                     "--epochs", "1", "--batch-size", "64", "--no-progress", "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert results["train_accuracy"] == results["eval_accuracy"]  # the same examples, the same figure


def test_missing_data_is_a_short_error_that_creates_no_folders(tmp_path):
    # No network in tests: a fake fetcher that fails like an offline machine, set up in the child process.
    code = (
        "import sys, urllib.error\n"
        "import jaxmath.datasets.download as d\n"
        "def offline(url, **kw):\n"
        "    raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')\n"
        "d._open_url = offline\n"
        "from jaxmath.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    data_dir = tmp_path / "data"
    result = jaxmath("train", "mlp", "--data-dir", str(data_dir), "--train", "train[:100]", code=code)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("jaxmath train mlp: error: --train 'train[:100]': MNIST files missing: ")
    assert "train-images-idx3-ubyte.gz" in lines[0] and "train-labels-idx1-ubyte.gz" in lines[0]
    assert lines[1] == f"  looked in {data_dir / 'mnist'}"
    assert [line.split()[1] for line in lines[2:5]] == [f"{m}:" for m in __import__(
        "jaxmath.datasets.mnist", fromlist=["MIRRORS"]).MIRRORS]
    assert len(lines) == 6 and len(result.stderr) < 800
    assert not data_dir.exists()


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "matplotlib" else object())
    code = main(["train", "mlp", "--plot", "curves.png"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--plot needs matplotlib: pip install 'jaxmath[plot]'" in err


# ----------------------------------------------------------------------------- one-line errors (in-process)


BAD_FLAGS = [
    (["train"], "jaxmath train mlp"),
    (["train", "mlp", "--lr", "-1"], "--lr must be a finite number > 0, got -1"),
    (["train", "mlp", "--lr", "nan"], "--lr"),
    (["train", "mlp", "--lr", "fast"], "--lr"),
    (["train", "mlp", "--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["train", "mlp", "--epochs", "two"], "--epochs"),
    (["train", "mlp", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "mlp", "--patience", "0", "--val", "train[-10:]"], "--patience must be >= 1"),
    (["train", "mlp", "--hidden", "16,x"], "--hidden"),
    (["train", "mlp", "--hidden", "16,0"], "--hidden"),
    (["train", "mlp", "--hidden", "none"], "--hidden"),
    (["train", "mlp", "--activation", "swish"], "--activation must be one of sigmoid, relu"),
    (["train", "mlp", "--loss", "hinge"], "--loss must be one of"),
    (["train", "mlp", "--optimizer", "lbfgs"], "--optimizer must be one of"),
    (["train", "mlp", "--seed", "-3"], "--seed"),
    (["train", "mlp", "--train", "test[:abc]"], "--train"),
    (["train", "mlp", "--eval", "validation"], "--eval"),
    (["train", "mlp", "--val", "train[1:2:3]"], "--val"),
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


@pytest.mark.slow
def test_logo_default_settings_reach_97_percent_and_write_outputs(tmp_path):
    """The logo MLP with its default flags (seed 0) classifies >= 97% of fresh points correctly."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["train", "logo", "--no-progress", "--resolution", "20", "--out", str(tmp_path / "logo.png"),
                     "--json", str(tmp_path / "logo.json"), "--save", str(tmp_path / "logo_model")])
    assert code == 0
    assert f"wrote {tmp_path / 'logo.png'}" in stdout.getvalue().splitlines()
    assert (tmp_path / "logo.png").read_bytes()[:8] == PNG_MAGIC
    report = json.loads((tmp_path / "logo.json").read_text())
    results = report["results"]
    assert report["config"]["sizes"] == [2, 64, 64, 2] and report["config"]["activation"] == "tanh"
    assert results["train_examples"] == 20_000 and results["eval_examples"] == 5_000
    assert results["eval_accuracy"] >= 0.97 and results["train_accuracy"] >= 0.97

    # Recompute on hand-picked points of the Batman curve with the saved params, in NumPy.
    model, params, metadata = models.load(tmp_path / "logo_model")
    points = np.array([[0.0, 0.0], [5.0, 0.0], [-5.0, 0.0], [0.0, 3.8], [7.8, 3.8], [-7.8, -3.8], [0.0, 2.7],
                       [2.0, 1.6]])
    scale = np.array(metadata["settings"]["input_scale"])
    logits = numpy_forward(params, points / scale, hidden="tanh", output="identity")
    np.testing.assert_array_equal(np.argmax(logits, axis=1), [1, 1, 1, 0, 0, 0, 0, 0])


# ----------------------------------------------------------------------------- train cnn (LeNet-5)


@needs_shared
def test_cnn_has_the_mlp_outputs_and_its_saved_params_score_what_the_table_says(tmp_path):
    out, network, header = tmp_path, "lenet5", "lenet5 (modern), 61,706 params"
    result = jaxmath("train", "cnn", "--model", network, "--train", "test[128:384]", "--eval", "test[:128]",
                     "--epochs", "1", "--batch-size", "64", "--no-progress", "--json", str(out / "r.json"),
                     "--plot", str(out / "c.png"), "--save", str(out / "m"), "--checkpoint", str(out / "ck"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"jaxmath train cnn: {header}"), lines[0]
    assert max(len(line) for line in lines if not line.startswith("wrote ")) <= 80  # tmp paths are long
    assert lines[-4:] == [f"wrote {out / 'm' / 'params.npz'}", f"wrote {out / 'm' / 'config.json'}",
                          f"wrote {out / 'r.json'}", f"wrote {out / 'c.png'}"]
    assert (out / "c.png").read_bytes()[:8] == PNG_MAGIC and (out / "ck" / "step_00000001").is_dir()
    report = json.loads((out / "r.json").read_text())
    assert report["config"]["name"] == "lenet5" and report["settings"]["network"] == network
    assert report["settings"]["loss"] == "softmax_cross_entropy" and report["settings"]["optimizer"] == "adam"
    # The saved params, applied to test images decoded here from the gzip files, give the reported accuracy.
    model, params, metadata = models.load(out / "m")
    x, labels = raw_split("test")
    logits = np.asarray(model.apply(params, x[:128].astype(np.float32) / 255))
    accuracy = np.mean(np.argmax(logits, axis=1) == labels[:128])
    assert abs(metadata["results"]["eval_accuracy"] - accuracy) <= 1 / 128 + 1e-9
    assert metadata["results"]["eval_accuracy"] == report["results"]["eval_accuracy"]


@needs_shared
def test_cnn_1998_trains_through_the_same_path(tmp_path, capsys):
    code = main(["train", "cnn", "--model", "lenet5-1998", "--train", "test[128:256]", "--eval", "test[:64]",
                 "--epochs", "1", "--batch-size", "64", "--no-progress", "--json", str(tmp_path / "r.json")])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["config"]["variant"] == "1998" and report["settings"]["network"] == "lenet5-1998"
    assert lines[0] == f"jaxmath train cnn: lenet5 (1998), {report['results']['params']:,} params"
    assert report["results"]["params"] == 60_000  # LeCun et al. 1998: C3's partial table leaves 60,000 weights
    assert 0 <= report["results"]["eval_accuracy"] <= 1 and report["results"]["epochs_run"] == 1


def test_cnn_refuses_unknown_networks_in_one_line(capsys):
    assert main(["train", "cnn", "--model", "alexnet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--model" in err and "lenet5-1998" in err


@needs_shared
def test_lr_schedule_cosine_decays_the_rate_to_the_closed_form_value(tmp_path):
    result = jaxmath("train", "mlp", "--train", "train[:512]", "--eval", "test[:256]", "--hidden", "8",
                     "--epochs", "2", "--batch-size", "64", "--optimizer", "adam", "--lr", "0.01",
                     "--lr-schedule", "cosine", "--no-progress", "--json", str(tmp_path / "r.json"),
                     "--checkpoint", str(tmp_path / "ck"))
    assert result.returncode == 0, result.stderr
    assert "adam lr 0.01 cosine" in result.stdout
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["lr_schedule"] == "cosine"
    from jaxmath import checkpoint

    tree, _ = checkpoint.restore(tmp_path / "ck")
    state = tree["state"]
    assert int(state.step) == 2 * (512 // 64)
    # After the last update the state records η(T) = η₀ ½ (1 + cos π) = 0 (a constant rate would stay 0.01).
    np.testing.assert_allclose(float(state.opt_state.learning_rate), 0.01 * 0.5 * (1 + np.cos(np.pi)), atol=1e-9)
    bad = jaxmath("train", "mlp", "--lr-schedule", "linear")
    assert bad.returncode == 2 and "--lr-schedule" in bad.stderr


# ----------------------------------------------------------------------------- --devices, --distributed, bf16

MESH_TRAIN, MESH_TRAIN_ROWS, MESH_EVAL, MESH_EVAL_ROWS = "train[:202]", 202, "test[:301]", 301
MESH_BATCH, MESH_EPOCHS, MESH_SEED, MESH_LR = 16, 2, 3, 0.5
# 202 rows in global batches of 16: the 13th batch of each epoch is ragged (10 rows; 5 + 5 over 2 processes).
MESH_ARGS = ("train", "mlp", "--train", MESH_TRAIN, "--eval", MESH_EVAL, "--hidden", "32", "--activation", "tanh",
             "--loss", "softmax_cross_entropy", "--optimizer", "sgd", "--lr", str(MESH_LR), "--epochs",
             str(MESH_EPOCHS), "--batch-size", str(MESH_BATCH), "--seed", str(MESH_SEED), "--no-progress")


COLLECTIVE_PATIENCE = " --xla_cpu_collective_call_terminate_timeout_seconds=600"


def _device_env(count):
    """Forced CPU devices take effect only before JAX starts: a fresh process with the flag set."""
    # XLA:CPU aborts the process when the simulated devices' threads do not all reach a collective within
    # 40 s; on a heavily shared machine a starved thread can take that long, so the abort waits longer.
    return {"XLA_FLAGS": f"--xla_force_host_platform_device_count={count}{COLLECTIVE_PATIENCE}",
            "JAX_PLATFORMS": "cpu", "COLUMNS": "80", "MPLBACKEND": "Agg"}


def _launch(argv, env):
    environ = {**os.environ, **env}
    environ.pop("JAX_ENABLE_X64", None)
    return subprocess.Popen([sys.executable, "-m", "jaxmath", *argv], env=environ, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait(procs):
    """(returncode, stdout, stderr) of each process; a hung coordinator is a failure, not a wait forever."""
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a jaxmath train subprocess hung")
        results.append((p.returncode, out, err))
    return results


def _replayed_params(process_count):
    """The reference: one device, ``training``'s plain loss on the real rows of the global batches a run on
    ``process_count`` processes feeds (each process shuffles its contiguous rows with the epoch's key folded
    with its index; shares of B / P rows; the last, short shares concatenated rather than padded)."""
    import jax

    from jaxmath import optim, training
    from jaxmath.models import mlp

    assert jax.config.jax_threefry_partitionable  # the CLI turns it on; the permutations below assume it
    model = mlp.make((784, 32, 10), activation="tanh", output="identity", dtype="float32")
    step = training.make_train_step(training.make_classifier_loss(model, num_classes=10),
                                    optim.sgd(learning_rate=MESH_LR))
    init_key, shuffle_key = jax.random.split(jax.random.key(MESH_SEED))
    epoch_keys = [jax.random.fold_in(shuffle_key, epoch) for epoch in range(1, MESH_EPOCHS + 1)]
    state = step.init(model.init(init_key), key=shuffle_key)  # the step donates the state, key included
    x, labels = (a[:MESH_TRAIN_ROWS] for a in raw_split("train"))
    n, local = MESH_TRAIN_ROWS, MESH_BATCH // process_count
    shards = [(x[n * i // process_count:n * (i + 1) // process_count],
               labels[n * i // process_count:n * (i + 1) // process_count]) for i in range(process_count)]
    steps = -(-(-(-n // process_count)) // local)
    for key in epoch_keys:
        orders = [np.asarray(jax.random.permutation(jax.random.fold_in(key, i), len(s[1])))
                  for i, s in enumerate(shards)]
        for t in range(steps):
            idx = [order[t * local:(t + 1) * local] for order in orders]
            bx = np.concatenate([s[0][i] for s, i in zip(shards, idx)])
            bl = np.concatenate([s[1][i] for s, i in zip(shards, idx)])
            state, _ = step(state, (bx, bl))
    assert int(state.step) == MESH_EPOCHS * 13
    return [np.asarray(leaf) for leaf in _param_leaves(state.params)]


def _param_leaves(params):
    return [leaf for layer in params for leaf in layer]


def _saved_leaves(directory):
    model, params, metadata = models.load(directory)
    return model, [np.asarray(leaf) for leaf in _param_leaves(params)], metadata


def _numpy_accuracy(leaves, split, rows):
    x, labels = (a[:rows] for a in raw_split(split))
    params = list(zip(leaves[0::2], leaves[1::2]))
    outputs = numpy_forward(params, x.astype(np.float64) / 255, hidden="tanh", output="identity")
    return float(np.mean(np.argmax(outputs, axis=1) == labels))


@pytest.fixture(scope="module")
def mesh_runs(tmp_path_factory):
    """Side by side on 4 forced CPU devices: --devices all, --devices 1, a batch that does not split."""
    out = tmp_path_factory.mktemp("mesh")
    runs = {
        "all": [*MESH_ARGS, "--devices", "all", "--save", str(out / "all"), "--json", str(out / "all.json")],
        "one": [*MESH_ARGS, "--devices", "1", "--save", str(out / "one"), "--json", str(out / "one.json")],
        "ragged": [*MESH_ARGS, "--devices", "all", "--batch-size", "30"],
    }
    procs = [_launch(argv, _device_env(4)) for argv in runs.values()]
    return dict(zip(runs, _wait(procs))), out


@needs_shared
def test_devices_all_on_4_cpus_trains_the_params_of_devices_1_and_of_plain_steps(mesh_runs):
    results, out = mesh_runs
    for name in ("all", "one"):
        assert results[name][0] == 0, results[name][2][-3000:]
    assert "  mesh            4 × cpu (batch)" in results["all"][1].splitlines()
    assert "  mesh            1 × cpu (batch)" in results["one"][1].splitlines()
    _, all_leaves, all_meta = _saved_leaves(out / "all")
    _, one_leaves, one_meta = _saved_leaves(out / "one")
    reference = _replayed_params(1)
    for a, b, c in zip(all_leaves, one_leaves, reference):
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == c.shape
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
        np.testing.assert_allclose(a, c, atol=1e-5, rtol=0)
    got, want = all_meta["results"], one_meta["results"]
    assert (got["train_examples"], got["eval_examples"]) == (MESH_TRAIN_ROWS, MESH_EVAL_ROWS)  # nothing dropped
    assert all_meta["settings"]["devices"] == 4 and one_meta["settings"]["devices"] == 1
    np.testing.assert_allclose(got["eval_accuracy"], want["eval_accuracy"], atol=1e-5)
    np.testing.assert_allclose(got["eval_loss"], want["eval_loss"], atol=1e-5)
    # The table's accuracy counts all 301 rows (301 = 1000-row batches padded): NumPy on the saved params.
    np.testing.assert_allclose(got["eval_accuracy"], _numpy_accuracy(all_leaves, "test", MESH_EVAL_ROWS),
                               atol=1.5 / MESH_EVAL_ROWS)


def test_batch_size_that_does_not_split_over_the_devices_is_one_line_naming_both(mesh_runs):
    code, stdout, stderr = mesh_runs[0]["ragged"]
    assert code == 2 and stdout == "" and stderr.count("\n") == 1, stderr
    assert "--batch-size 30 must be divisible by the 4 devices of the mesh (4 × cpu (batch)): e.g. 28 or 32" in stderr


BF16_RUNS = {
    "mlp": ["--train", "train[:2000]", "--eval", "test[:500]", "--hidden", "64", "--activation", "relu",
            "--loss", "softmax_cross_entropy", "--optimizer", "adam", "--epochs", "2", "--batch-size", "64"],
    "cnn": ["--train", "test[128:256]", "--eval", "test[:64]", "--epochs", "1", "--batch-size", "64"],
}


@needs_shared
@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_compute_dtype_bfloat16_trains_finite_with_float32_params(network, tmp_path, capsys):
    out = tmp_path
    code = main(["train", network, *BF16_RUNS[network], "--no-progress", "--compute-dtype", "bfloat16",
                 "--save", str(out / network), "--json", str(out / f"{network}.json")])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "  compute dtype   bfloat16 (params, optimizer state float32)" in stdout.splitlines()
    model, params, metadata = models.load(out / network)
    import jax

    leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(params)]
    assert {leaf.dtype for leaf in leaves} == {np.dtype(np.float32)}
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves)
    assert model.config["compute_dtype"] == "bfloat16" and metadata["settings"]["compute_dtype"] == "bfloat16"
    report = json.loads((out / f"{network}.json").read_text())
    assert all(np.isfinite(report["history"]["train_loss"]))
    # The saved model (bfloat16 matmuls again) scores on test images decoded here what the table says.
    rows = report["results"]["eval_examples"]
    x, labels = raw_split("test")
    logits = np.asarray(model.apply(params, x[:rows].astype(np.float32) / 255), np.float32)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == labels[:rows]))
    assert abs(report["results"]["eval_accuracy"] - accuracy) <= 1.5 / rows
    if network == "mlp":  # 2,000 training images, 2 epochs of Adam: well above chance despite 8-bit mantissas
        assert report["results"]["eval_accuracy"] > 0.8


@pytest.mark.slow
@needs_shared
def test_distributed_2_processes_x_2_cpus_match_the_replayed_global_batches(tmp_path):
    """2 processes × 2 forced CPU devices on localhost (gloo): the params of one process replaying the same
    global batches on one device; only process 0 prints and writes."""
    import socket

    with socket.socket() as s:  # a free port for the coordinator (as tests/test_distributed.py finds one)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [*MESH_ARGS, "--distributed", "--save", str(tmp_path / "m"), "--json", str(tmp_path / "r.json")]
    # Process 0 takes the coordinator from flags, process 1 from the environment variables.
    procs = [_launch([*argv, "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "0"],
                     _device_env(2)),
             _launch(argv, {**_device_env(2), "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
                            "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"})]
    (code0, out0, err0), (code1, out1, err1) = _wait(procs)
    assert code0 == 0 and code1 == 0, err0[-3000:] + err1[-3000:]
    assert "  mesh            2 processes × 2 cpu (batch)" in out0.splitlines()
    # Gloo's C++ side prints its connection lines to stdout in every process; the table is process 0's alone.
    assert any(line.startswith("jaxmath train mlp: 784-32-10 tanh") for line in out0.splitlines())
    assert "jaxmath train" not in out1 and "wrote" not in out1
    _, leaves, metadata = _saved_leaves(tmp_path / "m")
    for a, b in zip(leaves, _replayed_params(2)):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    results = metadata["results"]
    assert (results["train_examples"], results["eval_examples"]) == (MESH_TRAIN_ROWS, MESH_EVAL_ROWS)
    assert metadata["settings"]["processes"] == 2 and metadata["settings"]["devices"] == 4
    np.testing.assert_allclose(results["eval_accuracy"], _numpy_accuracy(leaves, "test", MESH_EVAL_ROWS),
                               atol=1.5 / MESH_EVAL_ROWS)


@pytest.mark.parametrize("argv, expected", [
    (["--devices", "0"], "--devices must be 'all' or a positive integer, got '0'"),
    (["--devices", "two"], "--devices must be 'all' or a positive integer, got 'two'"),
    (["--coordinator", "127.0.0.1:1234"], "--coordinator needs --distributed"),
    (["--distributed", "--devices", "2"], "--distributed uses every device of every process; drop --devices 2"),
    (["--distributed", "--coordinator", "localhost"], "--coordinator must be HOST:PORT"),
    (["--distributed", "--num-processes", "2", "--process-id", "2"], "--process-id must be in [0, 2), got 2"),
    (["--compute-dtype", "float16"], "--compute-dtype: invalid choice: 'float16'"),
])
def test_device_flags_are_checked_in_one_line_before_anything_runs(argv, expected, capsys):
    assert main(["train", "mlp", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_checkpoint_is_refused_with_devices_before_anything_runs(tmp_path, capsys):
    assert main(["train", "cnn", "--devices", "all", "--checkpoint", str(tmp_path / "ck")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--checkpoint and --resume are not available with --devices" in err
