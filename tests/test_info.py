"""jaxmath.devices.info and `jaxmath info`: facts JAX reports, and the CPU-fallback warning on a faked machine."""

import json
import os

import jax
import jaxlib
import pytest

from jaxmath.cli import main
from jaxmath.devices import info as I

no_which = lambda name: None  # noqa: E731


def _touch(root, *parts):
    path = os.path.join(root, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()


def test_nothing_detected_on_an_empty_root(tmp_path):
    assert I.detect_accelerators(root=str(tmp_path), which=no_which, environ={}) == {"gpu": [], "tpu": []}


def test_detects_nvidia_gpu_from_device_nodes_and_nvidia_smi(tmp_path):
    _touch(tmp_path, "dev", "nvidia0")
    _touch(tmp_path, "dev", "nvidia1")
    _touch(tmp_path, "dev", "nvidiactl")  # a control node, not a GPU
    found = I.detect_accelerators(root=str(tmp_path), which=lambda n: "/usr/bin/nvidia-smi", environ={})
    assert found["tpu"] == []
    assert found["gpu"] == ["nvidia-smi at /usr/bin/nvidia-smi", "2 device node(s) like /dev/nvidia0"]


@pytest.mark.parametrize(
    "files, environ, expect",
    [
        ([("dev", "accel0")], {}, ["1 device node(s) like /dev/accel0"]),
        ([("dev", "vfio", "0"), ("dev", "vfio", "1"), ("dev", "vfio", "vfio")], {}, ["2 VFIO group(s) under /dev/vfio"]),
        ([("dev", "vfio", "vfio")], {}, []),  # the VFIO container alone is no TPU
        ([], {"TPU_ACCELERATOR_TYPE": "v5litepod-8"}, ["TPU_ACCELERATOR_TYPE=v5litepod-8"]),
    ],
)
def test_detects_tpu(tmp_path, files, environ, expect):
    for parts in files:
        _touch(tmp_path, *parts)
    found = I.detect_accelerators(root=str(tmp_path), which=no_which, environ=environ)
    assert found == {"gpu": [], "tpu": expect}


def test_collect_info_reports_what_jax_reports():
    info = I.collect_info(accelerators={"gpu": [], "tpu": []})
    assert info["backend"] == jax.default_backend()
    assert info["device_count"] == jax.device_count()
    assert sum(g["count"] for g in info["devices"]) == len(jax.devices())
    assert {g["kind"] for g in info["devices"]} == {d.device_kind for d in jax.devices()}
    assert info["jax_version"] == jax.__version__ and info["jaxlib_version"] == jaxlib.__version__
    assert info["x64_enabled"] is bool(jax.config.jax_enable_x64)  # conftest turns it on
    assert info["default_matmul_precision"] == "default"
    if jax.default_backend() == "cpu":
        assert all(g["memory"] is None for g in info["devices"])  # CPU reports no memory stats
    json.dumps(info)  # JSON-friendly


def test_precision_in_effect_is_reported():
    with jax.default_matmul_precision("highest"):
        assert I.collect_info(accelerators={"gpu": [], "tpu": []})["default_matmul_precision"] == "highest"


def _info(backend, gpu=(), tpu=()):
    return {"backend": backend, "accelerators_present": {"gpu": list(gpu), "tpu": list(tpu)}, "jax_platforms": ""}


def test_fallback_warning_names_the_fix():
    gpu = I.fallback_warning(_info("cpu", gpu=["nvidia-smi at /usr/bin/nvidia-smi"]))
    assert gpu.startswith("WARNING") and 'pip install -U "jax[cuda12]"' in gpu and "nvidia-smi" in gpu
    tpu = I.fallback_warning(_info("cpu", tpu=["1 device node(s) like /dev/accel0"]))
    assert 'pip install -U "jax[tpu]"' in tpu and "cuda" not in tpu
    assert I.fallback_warning(_info("cpu")) is None
    assert I.fallback_warning(_info("gpu", gpu=["nvidia-smi at x"])) is None  # JAX is using it


def test_format_info_lists_every_device_group_and_versions():
    info = I.collect_info(accelerators={"gpu": [], "tpu": []})
    text = I.format_info(info)
    assert f"backend:                  {info['backend']}" in text
    assert jax.__version__ in text and "x64 (float64) enabled:    on" in text
    for g in info["devices"]:
        assert f"{g['count']} x {g['kind']}" in text


def test_cli_info_prints_report_and_loud_warning(monkeypatch, capsys):
    monkeypatch.setattr(I, "detect_accelerators", lambda: {"gpu": ["2 device node(s) like /dev/nvidia0"], "tpu": []})
    assert main(["info"]) == 0
    out, err = capsys.readouterr()
    assert "backend:" in out and "jax / jaxlib:" in out
    if jax.default_backend() == "cpu":
        assert "WARNING: JAX is running on CPU" in err and "jax[cuda12]" in err


def test_cli_info_json(monkeypatch, capsys):
    monkeypatch.setattr(I, "detect_accelerators", lambda: {"gpu": [], "tpu": []})
    assert main(["info", "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["backend"] == jax.default_backend() and data["device_count"] == jax.device_count()
    assert err == ""


def test_jaxmath_info_through_the_command_line_fits_80_columns():
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "80", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-m", "jaxmath", "info"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert f"jax / jaxlib:             {jax.__version__} / {jaxlib.__version__}" in result.stdout.splitlines()
    assert max(len(line) for line in (result.stdout + result.stderr).splitlines()) <= 80
