"""``jaxmath train`` never loses a run: interrupts at controlled points, resume, outputs checked before training,
memory and seed refused in one line. Everything runs in subprocesses, as a user would meet it.

The child processes run ``jaxmath.cli.main`` with a hook around fit's epoch function that prints a marker on
stderr (and, where a test needs a fixed point, waits there), so each signal lands where the test says.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

from jaxmath import checkpoint, models
from jaxmath.cli import _guards, main
from jaxmath.models import mlp

SHARED = Path(os.environ.get("JAXMATH_DATA_DIR", "")) / "mnist"
needs_shared = pytest.mark.skipif(not (SHARED / "t10k-labels-idx1-ubyte.gz").is_file(), reason="shared MNIST missing")

# Test slices only: a child that reads train decompresses all 60,000 images first.
TINY = ["--train", "test[128:640]", "--eval", "test[:128]", "--hidden", "8", "--batch-size", "64", "--no-progress"]

# Prints "epoch N" before fit's epoch N runs; with JAXMATH_TEST_WAIT_AT=N it waits there for the signal.
HOOKED = """
import os, sys, time
import jaxmath.training
fit_module = sys.modules["jaxmath.training.fit"]  # the module: jaxmath.training.fit is the function
original, calls = fit_module._fit_epoch, [0]
def hooked(*args, **kwargs):
    calls[0] += 1
    print(f"epoch {calls[0]}", file=sys.stderr, flush=True)
    if calls[0] == int(os.environ.get("JAXMATH_TEST_WAIT_AT", "0")):
        time.sleep(120)
    return original(*args, **kwargs)
fit_module._fit_epoch = hooked
from jaxmath.cli import main
sys.exit(main(sys.argv[1:]))
"""


# A shell that starts a job in the background (as a CI runner may) leaves SIGINT ignored, and children inherit
# that; a user's Ctrl-C reaches a foreground process, so each child Python is started through this launcher,
# which restores the default disposition and execs (no preexec_fn: forking a multithreaded JAX process is unsafe).
PYTHON = [sys.executable, "-c",
          "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
          "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"]


def start(*argv, wait_at=0, cwd=None):
    env = {**os.environ, "COLUMNS": "80", "MPLBACKEND": "Agg", "JAXMATH_TEST_WAIT_AT": str(wait_at)}
    return subprocess.Popen([*PYTHON, "-c", HOOKED, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=cwd)


def signal_at(child, marker, signum):
    """Read stderr until ``marker``, send ``signum``; return (rc, stdout, the stderr lines after the markers)."""
    seen = []
    for line in child.stderr:
        seen.append(line.rstrip("\n"))
        if line.strip() == marker:
            child.send_signal(signum)
            break
    out, err = child.communicate(timeout=300)
    lines = [line for line in seen + err.splitlines() if not line.startswith("epoch ")]
    return child.returncode, out, lines


def run(*argv):
    env = {**os.environ, "COLUMNS": "80", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "jaxmath", *argv], capture_output=True, text=True, env=env,
                          timeout=600)


# ----------------------------------------------------------------------------- interrupts


@needs_shared
@pytest.mark.parametrize("repeat", range(3))
def test_ctrl_c_during_the_first_compile_exits_130_with_one_line(repeat):
    # The interrupt lands while the first epoch compiles: it used to segfault (rc -11) at interpreter exit.
    child = start("train", "mlp", *TINY, "--epochs", "3")
    rc, out, lines = signal_at(child, "epoch 1", signal.SIGINT)
    assert rc == 130, (rc, lines)
    assert len(lines) == 1 and lines[0].startswith("jaxmath train mlp: interrupted"), lines
    assert "Traceback" not in out


@needs_shared
def test_interrupt_during_training_checkpoints_the_last_epoch_and_resume_matches_an_unbroken_run(tmp_path):
    flags = [*TINY, "--epochs", "4", "--seed", "5"]
    ck = tmp_path / "ck"
    child = start("train", "mlp", *flags, "--checkpoint", str(ck), wait_at=3)  # epochs 1 and 2 completed
    rc, out, lines = signal_at(child, "epoch 3", signal.SIGINT)
    assert rc == 130, (rc, lines)
    assert lines == [f"jaxmath train mlp: interrupted; epoch 2 saved in {ck / 'step_00000002'} "
                     f"(continue with --checkpoint {ck} --resume)"]
    assert checkpoint.latest_step(ck) == 2

    # Subprocesses too: this process runs with x64 on (conftest), which changes the optimizer state's dtypes.
    for result in (run("train", "mlp", *flags, "--save", str(tmp_path / "unbroken")),
                   run("train", "mlp", *flags, "--checkpoint", str(ck), "--resume",
                       "--save", str(tmp_path / "resumed"))):
        assert result.returncode == 0, result.stderr
    _, want, _ = models.load(tmp_path / "unbroken")
    _, got, metadata = models.load(tmp_path / "resumed")
    chex.assert_trees_all_equal(got, want)  # bit for bit: the resumed run is the unbroken one
    assert metadata["results"]["epochs_run"] == 4


@needs_shared
def test_interrupt_with_save_alone_saves_the_last_completed_epochs_params(tmp_path):
    child = start("train", "mlp", *TINY, "--epochs", "5", "--save", str(tmp_path / "m"), wait_at=2)
    rc, _, lines = signal_at(child, "epoch 2", signal.SIGINT)
    assert rc == 130
    assert lines == [f"jaxmath train mlp: interrupted; the params of epoch 1 saved in {tmp_path / 'm'} "
                     "(load with jaxmath.models.load)"]
    model, params, metadata = models.load(tmp_path / "m")
    assert model.config["sizes"] == [784, 8, 10] and metadata["results"]["stop_reason"] == "interrupted"
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(params))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # the private checkpoint folder is gone


SWALLOWED = """
import sys, time
from jaxmath.cli import _redeliver_interrupts
sys.unraisablehook = _redeliver_interrupts(sys.unraisablehook)
class Finalized:
    def __del__(self):
        raise KeyboardInterrupt  # as when Ctrl-C lands while the garbage collector runs a finalizer
try:
    Finalized()
    start = time.monotonic()
    while time.monotonic() - start < 60:
        pass
    print("lost")
except KeyboardInterrupt:
    print("delivered")
"""


def test_an_interrupt_swallowed_by_a_finalizer_is_delivered_again():
    result = subprocess.run([*PYTHON, "-c", SWALLOWED], capture_output=True, text=True, timeout=120)
    assert result.stdout == "delivered\n" and result.stderr == "", result.stderr


@needs_shared
def test_interrupt_with_checkpoint_and_save_keeps_both(tmp_path):
    ck, saved = tmp_path / "ck", tmp_path / "m"
    child = start("train", "mlp", *TINY, "--epochs", "4", "--checkpoint", str(ck), "--save", str(saved), wait_at=2)
    rc, _, lines = signal_at(child, "epoch 2", signal.SIGTERM)
    assert rc == 130
    assert lines == [f"jaxmath train mlp: interrupted; epoch 1 saved in {ck / 'step_00000001'}, its params in {saved} "
                     f"(continue with --checkpoint {ck} --resume)"]
    tree, _ = checkpoint.restore(ck, step=1)
    _, params, _ = models.load(saved)
    chex.assert_trees_all_equal(params, tree["state"].params)


@needs_shared
def test_interrupt_before_any_epoch_completed_says_nothing_was_saved(tmp_path):
    child = start("train", "mlp", *TINY, "--epochs", "3", "--checkpoint", str(tmp_path / "ck"), wait_at=1)
    rc, _, lines = signal_at(child, "epoch 1", signal.SIGTERM)
    assert rc == 130
    assert lines == ["jaxmath train mlp: interrupted before the first epoch completed; nothing saved"]


@needs_shared
def test_resuming_another_networks_checkpoint_is_a_one_line_error(tmp_path):
    ck = tmp_path / "ck"
    first = run("train", "mlp", *TINY, "--epochs", "1", "--checkpoint", str(ck))
    assert first.returncode == 0, first.stderr
    other = run("train", "mlp", *TINY, "--epochs", "2", "--hidden", "12", "--checkpoint", str(ck), "--resume")
    assert other.returncode == 2 and other.stdout == "" and "Traceback" not in other.stderr
    assert other.stderr.count("\n") == 1 and "does not match" in other.stderr, other.stderr
    assert checkpoint.latest_step(ck) == 1  # the refused run wrote nothing


def test_resume_without_a_checkpoint_is_refused(tmp_path, capsys):
    assert main(["train", "mlp", "--resume"]) == 2
    assert "--resume needs --checkpoint DIR" in capsys.readouterr().err
    assert main(["train", "mlp", "--checkpoint", str(tmp_path / "none"), "--resume"]) == 2
    assert f"--resume: no checkpoint in '{tmp_path / 'none'}'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- outputs checked before training


def test_json_to_a_full_disk_is_refused_before_training():
    result = run("train", "mlp", "--json", "/dev/full")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "jaxmath train mlp: error: --json: cannot write '/dev/full': No space left on device\n"


@pytest.mark.parametrize("flag", ["--save", "--checkpoint", "--json"])
def test_a_read_only_folder_is_refused_before_training(tmp_path, monkeypatch, capsys, flag):
    # The OS call is mocked, so this holds when the tests run as root (who may write anywhere).
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    target = tmp_path / ("r.json" if flag == "--json" else "out")
    assert main(["train", "mlp", flag, str(target)]) == 2
    err = capsys.readouterr().err
    assert err == f"jaxmath train mlp: error: {flag}: cannot write in '{tmp_path}': Permission denied\n"


def test_a_read_only_existing_json_file_is_refused_before_training(tmp_path, monkeypatch, capsys):
    import builtins

    target = tmp_path / "r.json"
    target.write_text("{}")
    real_open = builtins.open

    def open_read_only(path, mode="r", *args, **kwargs):
        if str(path) == str(target) and mode != "r":
            raise PermissionError(13, "Permission denied")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_read_only)
    assert main(["train", "mlp", "--json", str(target)]) == 2
    assert capsys.readouterr().err == f"jaxmath train mlp: error: --json: cannot write '{target}': Permission denied\n"
    assert target.read_text() == "{}"


def test_save_into_a_path_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["train", "mlp", "--checkpoint", str(tmp_path / "file" / "ck")]) == 2
    assert "--checkpoint: " in capsys.readouterr().err


# ----------------------------------------------------------------------------- memory and seeds


def test_memory_estimate_counts_params_optimizer_gradients_and_activations():
    from jaxmath import optim

    model = mlp.make((784, 16, 16, 10))
    parts = _guards.estimate_memory(model, optim.adam(learning_rate=1e-3), batch_size=32, example_shape=(784,))
    weights = 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10  # 13,002 float32
    assert parts["params"] == parts["gradients"] == 4 * weights
    assert 2 * 4 * weights <= parts["optimizer"] <= 2 * 4 * weights + 16  # Adam's m and v, plus its count
    assert parts["activations"] >= 2 * 4 * 32 * (16 + 16 + 10)  # each layer's output, kept for backprop
    assert parts["total"] == sum(parts[k] for k in ("params", "optimizer", "gradients", "activations"))


def test_a_network_that_cannot_fit_is_refused_in_one_line_before_anything_runs():
    # 10^12 weights (about 4 TiB each for params and gradients): more than any device or host here.
    result = run("train", "mlp", "--hidden", "1000000,1000000")
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("jaxmath train mlp: error: the network needs about ")
    assert "memory is " in result.stderr and "--batch-size" in result.stderr


def test_the_issues_hidden_100000_is_refused_where_memory_is_smaller(monkeypatch, capsys):
    monkeypatch.setattr(_guards, "available_memory", lambda: (32 * 2**30, "the host's"))
    assert main(["train", "mlp", "--hidden", "100000,100000"]) == 2
    err = capsys.readouterr().err
    assert "needs about 75.3 GiB (params 37.5 GiB" in err and "the host's memory is 32.0 GiB" in err


@pytest.mark.parametrize("seed", [str(2**64), "2**64"])
def test_seeds_out_of_range_are_one_line_errors(seed):
    result = run("train", "mlp", "--seed", seed)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "--seed" in result.stderr


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seeds_just_outside_the_range_are_refused(seed, capsys):
    assert main(["train", "mlp", "--seed", str(seed)]) == 2
    expected = f"jaxmath train mlp: error: --seed must be an integer in [0, 4294967295], got {seed}\n"
    assert capsys.readouterr().err == expected


def test_the_largest_seed_is_accepted(capsys):
    # It passes the checks and reaches the data loading (here: a split error raised after the seed check).
    assert main(["train", "mlp", "--seed", str(2**32 - 1), "--train", "test[:x]"]) == 2
    assert "--seed" not in capsys.readouterr().err


@pytest.mark.parametrize("module", ["jax._src.lax.lax", "jax.numpy", "jaxmath.activations", "jaxmath.training"])
def test_ctrl_c_while_jax_and_jaxmath_are_still_importing_ends_with_one_line_and_status_130(module):
    # -X importtime names each module on stderr as its import finishes: a controlled point inside the imports,
    # before any of jaxmath.cli runs.
    child = subprocess.Popen([*PYTHON, "-X", "importtime", "-m", "jaxmath", "info"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "80"})
    lines = []
    for line in child.stderr:
        lines.append(line)
        if line.split("|")[-1].strip() == module:
            child.send_signal(signal.SIGINT)
            break
    rest = child.stderr.read()
    rc = child.wait(timeout=120)
    assert lines and lines[-1].split("|")[-1].strip() == module, "the import marker never came"
    assert rc == 130, rest
    assert "Traceback" not in rest
    assert [l for l in rest.splitlines() if not l.startswith("import time:")] == ["jaxmath: interrupted"]
