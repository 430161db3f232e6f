"""Package-level guarantees: a clean import, no optax anywhere, no data committed, a working CLI entry point."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What `import jaxmath` must never load: the test oracles, the optional extras, the progress bar (imported
# inside the function that shows it), and the two modules that need them (the plots, the command line).
HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "minisom", "optax", "tqdm", "jaxmath.plot", "jaxmath.cli")


def test_import_jaxmath_stays_light():
    # -X importtime lists every module the import loads, the way a user would check it.
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import jaxmath"],
                            capture_output=True, text=True, check=True)
    loaded = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "jaxmath" in loaded and "jax" in loaded
    leaked = sorted(name for name in loaded if name.split(".")[0] in HEAVY or name in HEAVY)
    assert not leaked, f"import jaxmath imported {leaked}"


def test_version_is_the_packages_and_the_command_lines():
    import jaxmath

    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', text, re.MULTILINE).group(1) == jaxmath.__version__
    out = subprocess.run([sys.executable, "-m", "jaxmath", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout == f"jaxmath {jaxmath.__version__}\n"


def test_runtime_dependencies_are_the_documented_five():
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)\]", text, re.MULTILINE | re.DOTALL).group(1)
    names = sorted(re.findall(r'"([A-Za-z0-9_-]+)', block))
    assert names == ["chex", "jax", "jaxlib", "numpy", "tqdm"]


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


def _inits():
    import numpy as np

    from jaxmath.models import lasso, linear_regression, logistic_regression, mlp, perceptron, sigmoid_neuron
    from jaxmath.unsupervised import competitive, hebbian, kmeans, som

    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    return {
        "mlp.make(...).init": lambda key: mlp.make((2, 3, 2)).init(key),
        "mlp.init": lambda key: mlp.init(key, (2, 3, 2)),
        "linear_regression.init": lambda key: linear_regression.init(key, 2),
        "lasso.init": lambda key: lasso.init(key, 2),
        "logistic_regression.init": lambda key: logistic_regression.init(key, 2, num_classes=3),
        "perceptron.init": lambda key: perceptron.init(key, 2),
        "sigmoid_neuron.init": lambda key: sigmoid_neuron.init(key, 2),
        "hebbian.init": lambda key: hebbian.init(key, 2),
        "competitive.init": lambda key: competitive.init(key, x, num_neurons=2),
        "kmeans.init": lambda key: kmeans.init(key, x, num_clusters=2),
        "som.init": lambda key: som.init(key, x, rows=2, cols=2),
    }


@pytest.mark.parametrize("name", sorted(_inits()))
def test_an_int_key_gets_a_clear_error_and_a_real_key_works(name):
    import jax

    init = _inits()[name]
    with pytest.raises(TypeError, match=r"jax\.random\.key\(0\)"):
        init(0)
    for key in (jax.random.key(0), jax.random.PRNGKey(0)):  # typed and raw keys are both accepted
        assert jax.tree_util.tree_leaves(init(key))
