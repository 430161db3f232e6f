"""The README matches what the code does: its Quickstart prints what its comments say, its small commands print
the figures its tables give, every command it shows parses, and the Data section says where data comes from."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SHARED = Path(os.environ.get("JAXMATH_DATA_DIR", "")) / "mnist"
needs_shared = pytest.mark.skipif(not (SHARED / "train-labels-idx1-ubyte.gz").is_file(),
                                  reason="shared MNIST (train and test) missing")


def section(title: str) -> str:
    start = README.index(title)
    rest = README[start + len(title):]
    following = re.search(r"^#{2,3} ", rest, re.MULTILINE)
    return rest[: following.start()] if following else rest


def run(command, tmp_path, *, extra=()):
    env = {**os.environ, "COLUMNS": "80", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(command + list(extra), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)


def same_line(got: str, expected: str, *, tolerance: float) -> bool:
    """Equal word by word, numbers within ``tolerance`` (absolute)."""
    a, b = got.split(), expected.split()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        try:
            if abs(float(x) - float(y)) > tolerance:
                return False
        except ValueError:
            if x != y:
                return False
    return True


# ----------------------------------------------------------------------------- Quickstart


def quickstart():
    code = re.search(r"```python\n(.*?)```", section("## Quickstart"), re.DOTALL).group(1)
    expected = [m.strip() for m in re.findall(r"#\s*prints\s+(.*)$", code, re.MULTILINE)]
    return code, expected


def test_quickstart_states_its_output():
    code, expected = quickstart()
    assert len(expected) == code.count("print(") == 3
    assert expected[0] == "13002"  # the notes' count of weights and biases


@needs_shared
def test_quickstart_runs_in_a_fresh_process_and_prints_what_it_says(tmp_path):
    code, expected = quickstart()
    result = run([sys.executable, "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == len(expected), result.stdout
    for got, want in zip(lines, expected):
        # Accuracies may move in the last digit on another CPU; counts must be exact (they are integers).
        assert same_line(got, want, tolerance=0.015), (got, want)
        assert [w for w in got.split() if w.isdigit()] == [w for w in want.split() if w.isdigit()]


# ----------------------------------------------------------------------------- commands


def table_rows(title):
    """(command, accuracy in [0, 1]) of each row of the first table under ``title``."""
    rows = []
    for line in section(title).splitlines():
        if rows and not line.startswith("|"):
            break  # the end of the first table
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`jaxmath"):
            accuracy = float(re.match(r"([\d.]+)%", cells[2]).group(1)) / 100
            rows.append((cells[1].strip("`"), accuracy))
    return rows


EXPECT = table_rows("### What to expect")


def test_the_tables_have_the_rows_the_readme_describes():
    assert [cmd.split()[2] for cmd, _ in EXPECT] == ["mlp", "mlp", "logo"]
    assert all('--train "train[:' in cmd for cmd, _ in EXPECT[:2])  # slices of the real training split


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("command, accuracy", EXPECT, ids=[c for c, _ in EXPECT])
def test_small_readme_commands_print_the_readme_figures(command, accuracy, tmp_path):
    argv = shlex.split(command)
    extra = ["--no-progress", "--json", "r.json"] + (["--out", "logo.png"] if argv[2] == "logo" else [])
    result = run([sys.executable, "-m", "jaxmath", *argv[1:]], tmp_path, extra=extra)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    printed = re.search(r"eval accuracy\s+([\d.]+)", result.stdout).group(1)
    assert float(printed) == pytest.approx(results["eval_accuracy"], abs=1e-4)
    # The README rounds to 0.1%; another CPU may move a few test images.
    assert results["eval_accuracy"] == pytest.approx(accuracy, abs=0.006)


def readme_commands():
    """Every ``jaxmath ...`` command the README shows: code blocks and table cells."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("jaxmath"):
                commands.append(line)
    commands += re.findall(r"`(jaxmath (?:train|bench|info)[^`]*)`", README)
    return commands


def test_every_command_in_the_readme_parses():
    from jaxmath.cli import build_parser

    commands = readme_commands()
    assert len(commands) >= 10
    for command in commands:
        argv = shlex.split(command)[1:]
        if argv == ["--version"]:
            continue
        args = build_parser(argv).parse_args(argv)  # raises CLIError on an unknown flag or value
        assert args.command == argv[0], command


def test_full_split_figures_are_measured_and_dated():
    text = section("### What to expect")
    full = text[text.index("full 60,000-image"):]
    assert re.search(r"measured on \d{4}-\d{2}-\d{2}", full) and "jax " in full
    rows = table_rows("full 60,000-image")
    assert len(rows) == 2 and all("--train" not in cmd for cmd, _ in rows)  # the whole split
    assert rows[1][1] >= 0.98  # the ReLU/Adam network's target


# ----------------------------------------------------------------------------- data


def test_data_section_comes_first_and_matches_the_loader(monkeypatch):
    from jaxmath.datasets import mnist

    assert README.index("## Data") < README.index("## Quickstart")
    data = section("## Data")
    monkeypatch.delenv("JAXMATH_DATA_DIR", raising=False)
    assert mnist.data_root() == Path.home() / ".cache" / "jaxmath"
    assert "`~/.cache/jaxmath/mnist/`" in data and "`<dir>/mnist/`" in data and "JAXMATH_DATA_DIR=<dir>" in data
    for images, labels, _ in mnist.SPLITS.values():
        assert f"`{images}`" in data and f"`{labels}`" in data
