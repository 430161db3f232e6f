"""Package-level guarantees: a clean import, no optax anywhere, no data committed, a working CLI entry point."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORACLES = ("torch", "sklearn", "scipy", "matplotlib", "minisom", "optax")


def test_import_jaxmath_pulls_in_none_of_the_oracles():
    code = (
        "import sys, jaxmath\n"
        f"print(sorted(m for m in {ORACLES!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import jaxmath imported {out.strip()}"


def test_every_public_family_is_reexported_explicitly():
    import jaxmath

    for name in jaxmath.__all__:
        assert hasattr(jaxmath, name), name
    assert {"activations", "losses", "optim", "models", "training", "unsupervised"} <= set(jaxmath.__all__)


def test_no_optax_anywhere_in_code_tests_or_notebooks():
    pattern = re.compile(r"^\s*(import optax|from optax)", re.MULTILINE)
    files = [p for ext in ("*.py", "*.ipynb") for p in ROOT.rglob(ext) if ".ci" not in p.parts and ".venv" not in p.parts]
    offenders = [str(p.relative_to(ROOT)) for p in files if pattern.search(p.read_text(errors="ignore"))]
    assert not offenders, offenders


def test_no_data_files_are_tracked():
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    data = [f for f in tracked.splitlines() if re.search(r"ubyte|\.npz$|\.pkl$|\.h5$", f, re.IGNORECASE)]
    assert not data, data


def test_console_entry_point_answers_help():
    out = subprocess.run([sys.executable, "-m", "jaxmath", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for command in ("train", "info", "bench"):
        assert command in out.stdout


def test_the_test_oracles_are_installed():
    # Oracle comparisons use pytest.importorskip; without this test a missing oracle would
    # turn them into silent skips instead of a red run.
    import importlib.util

    oracles = ("torch", "sklearn", "scipy", "minisom", "hypothesis", "matplotlib", "nbclient", "nbformat")
    missing = [name for name in oracles if importlib.util.find_spec(name) is None]
    assert not missing, f'test oracles missing: {missing}; install with pip install -e ".[dev]"'
