"""Every chapter in colab/ runs top to bottom on CPU with small settings, and is committed clean.

The chapters run with 8 host devices (``--xla_force_host_platform_device_count=8``), as on a Colab TPU v2-8 or
v5e-8: code that depends on the device count (meshes, sharded batches, batch sizes divisible by it) runs in CI
the way it runs there. The flag is read when JAX starts in the kernel, so it goes in the kernel's environment.
"""

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))
DEVICES = 8  # a TPU v2-8 / v5e-8 host


def _kernel_env() -> dict:
    """JAX on the CPU, shown as ``DEVICES`` devices (other XLA flags kept)."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    # Simulated devices share the CI's cores: under load one device thread can reach a collective long after
    # the others, past XLA:CPU's default 40 s abort.
    timeout = "--xla_cpu_collective_call_terminate_timeout_seconds=600"
    return {"JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": " ".join(flags + [f"--xla_force_host_platform_device_count={DEVICES}", timeout])}


def test_kernel_environment_shows_eight_cpu_devices():
    import subprocess

    env = {**os.environ, **_kernel_env()}
    code = "import jax; print(jax.default_backend(), jax.device_count(), jax.local_device_count())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cpu", str(DEVICES), str(DEVICES)]


def _load(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean_and_opens_with_colab_link_and_install_cell(path):
    nb = _load(path)
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown"
    first = "".join(cells[0]["source"])
    assert f"colab.research.google.com/github/jaxmath/jaxmath/blob/main/colab/{path.name}" in first
    install = "".join(cells[1]["source"])
    assert cells[1]["cell_type"] == "code" and "google.colab" in install and "pip install" in install
    assert '"jaxmath[plot] @ git+https://github.com/jaxmath/jaxmath"' in install  # the extra jaxmath.plot needs
    assert 'SMALL = os.environ.get("JAXMATH_SMALL") == "1"' in install
    for cell in cells:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name} is committed with outputs"
            assert cell.get("execution_count") is None


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("JAXMATH_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for name, value in _kernel_env().items():
        monkeypatch.setenv(name, value)
    # The kernel must import the jaxmath of this checkout, whatever the kernel's cwd.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
