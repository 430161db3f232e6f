"""What JAX is running on: backend, devices, memory, versions, precision, x64.

Also the commonest silent failure on a new machine: an NVIDIA GPU or a TPU is
present but the installed jaxlib is CPU-only, so everything runs on the CPU.
``fallback_warning`` detects it. Detection looks at the filesystem and PATH and
is injectable (``root``, ``which``, ``environ``) so tests can fake a machine.
"""

from __future__ import annotations

import glob
import os
import platform
import re
import shutil
from typing import Any, Callable, Mapping

import jax

from jaxmath.devices.precision import DEFAULT_MEANING, current_precision, how_to_change

FIXES = {
    "gpu": 'pip install -U "jax[cuda12]"',
    "tpu": 'pip install -U "jax[tpu]"',
}


def detect_accelerators(
    *,
    root: str = "/",
    which: Callable[[str], str | None] = shutil.which,
    environ: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """Signs of accelerators on this system, whatever JAX uses: ``{"gpu": [...], "tpu": [...]}``.

    GPU: ``nvidia-smi`` on PATH, or ``/dev/nvidia<N>``. TPU: ``/dev/accel<N>`` (TPU v2–v5e VMs),
    numbered VFIO groups ``/dev/vfio/<N>`` (v5p, v6e), or a ``TPU_ACCELERATOR_TYPE`` /
    ``COLAB_TPU_ADDR`` environment variable.

    Args:
      root: the filesystem root to look under (tests pass a temporary directory).
      which: ``shutil.which``-like lookup of executables.
      environ: the environment (default ``os.environ``).

    Returns:
      A dict of kind → list of human-readable evidence (empty lists when nothing is found).
    """
    environ = os.environ if environ is None else environ
    dev = os.path.join(root, "dev")
    found: dict[str, list[str]] = {"gpu": [], "tpu": []}
    smi = which("nvidia-smi")
    if smi:
        found["gpu"].append(f"nvidia-smi at {smi}")
    nodes = sorted(
        p for p in glob.glob(os.path.join(dev, "nvidia*")) if re.fullmatch(r"nvidia\d+", os.path.basename(p))
    )
    if nodes:
        found["gpu"].append(f"{len(nodes)} device node(s) like /dev/{os.path.basename(nodes[0])}")
    accel = sorted(p for p in glob.glob(os.path.join(dev, "accel*")) if re.fullmatch(r"accel\d+", os.path.basename(p)))
    if accel:
        found["tpu"].append(f"{len(accel)} device node(s) like /dev/{os.path.basename(accel[0])}")
    vfio = sorted(p for p in glob.glob(os.path.join(dev, "vfio", "*")) if os.path.basename(p).isdigit())
    if vfio:
        found["tpu"].append(f"{len(vfio)} VFIO group(s) under /dev/vfio")
    for var in ("TPU_ACCELERATOR_TYPE", "COLAB_TPU_ADDR"):
        if environ.get(var):
            found["tpu"].append(f"{var}={environ[var]}")
    return found


def _memory(device: jax.Device) -> dict[str, int] | None:
    """``device.memory_stats()`` where the backend reports it (GPU/TPU), else None (CPU)."""
    try:
        stats = device.memory_stats()
    except Exception:  # not implemented on some backends
        return None
    if not stats:
        return None
    keep = ("bytes_limit", "bytes_in_use", "peak_bytes_in_use")
    return {k: int(stats[k]) for k in keep if k in stats}


def collect_info(*, accelerators: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Everything ``jaxmath info`` prints, as a JSON-friendly dict.

    Args:
      accelerators: the result of ``detect_accelerators`` (default: detect on this system).
    """
    import jaxlib

    devices = jax.devices()
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for d in devices:
        g = groups.setdefault(
            (d.platform, d.device_kind),
            {"platform": d.platform, "kind": d.device_kind, "count": 0, "ids": [], "memory": _memory(d)},
        )
        g["count"] += 1
        g["ids"].append(d.id)
    backend = jax.default_backend()
    return {
        "backend": backend,
        "devices": list(groups.values()),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "process_count": jax.process_count(),
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "python_version": platform.python_version(),
        "default_matmul_precision": current_precision(),
        "x64_enabled": bool(jax.config.jax_enable_x64),
        "jax_platforms": os.environ.get("JAX_PLATFORMS", ""),
        "accelerators_present": accelerators if accelerators is not None else detect_accelerators(),
    }


def fallback_warning(info: Mapping[str, Any]) -> str | None:
    """A loud warning when an accelerator is present but JAX's backend is the CPU, else None."""
    if info["backend"] != "cpu":
        return None
    present = {k: v for k, v in info["accelerators_present"].items() if v}
    if not present:
        return None
    lines = ["WARNING: JAX is running on CPU, but this machine shows an accelerator:"]
    for kind, evidence in present.items():
        lines.append(f"  {kind.upper()}: " + "; ".join(evidence))
        lines.append(f"  likely fix: {FIXES[kind]}   (then restart the Python process / Colab runtime)")
    if info.get("jax_platforms"):
        lines.append(f"  note: JAX_PLATFORMS={info['jax_platforms']} is set and restricts the backends JAX may use")
    return "\n".join(lines)


def _bytes(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def format_info(info: Mapping[str, Any]) -> str:
    """The human-readable report of ``collect_info``."""
    lines = [
        f"backend:                  {info['backend']}",
        f"devices:                  {info['device_count']} ({info['local_device_count']} local, "
        f"{info['process_count']} process(es))",
    ]
    for g in info["devices"]:
        mem = g["memory"]
        if mem and "bytes_limit" in mem:
            memory = f"memory {_bytes(mem['bytes_limit'])} (in use {_bytes(mem.get('bytes_in_use', 0))})"
        else:
            memory = "memory not reported by this backend"
        lines.append(f"  {g['count']} x {g['kind']} [{g['platform']}], {memory}")
    lines += [
        f"jax / jaxlib:             {info['jax_version']} / {info['jaxlib_version']}",
        f"python:                   {info['python_version']}",
        f"default matmul precision: {info['default_matmul_precision']}",
        f"  {'default on ' + info['backend'] + ':':<24}"
        f"{DEFAULT_MEANING.get(info['backend'], 'see the backend documentation')}",
        f"  to change:              {how_to_change()[0]}",
        f"    {how_to_change()[1]}",
        f"x64 (float64) enabled:    {'on' if info['x64_enabled'] else 'off'}",
    ]
    if info.get("jax_platforms"):
        lines.append(f"JAX_PLATFORMS:            {info['jax_platforms']}")
    return "\n".join(lines)
