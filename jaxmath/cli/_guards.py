"""Checks ``jaxmath train`` makes before it loads data or compiles anything: the seed's range and whether the
network fits in memory.

The memory estimate is built from shapes alone (``jax.eval_shape`` and a traced jaxpr), so asking whether a
network of ten billion weights fits allocates nothing:

- params: the leaves ``model.init`` would create;
- optimizer state: the leaves ``optimizer.init`` would create for those params (Adam: two per weight);
- gradients: one more copy of the params;
- activations: every intermediate value of one forward pass over a batch, kept for the backward pass, plus as
  much again for their gradients.

It is compared with the device's ``memory_stats()["bytes_limit"]`` where the backend reports one (GPU, TPU),
else with the host's physical memory (the CPU backend allocates there).
"""

from __future__ import annotations

import math
import os
from typing import Any

SEED_MAX = 2**32 - 1  # jax.random.key takes a uint32 seed unless x64 is on; one range everywhere


def seed_problem(seed: int) -> str | None:
    """Why ``seed`` cannot seed ``jax.random.key``, or None."""
    if not 0 <= seed <= SEED_MAX:
        return f"--seed must be an integer in [0, {SEED_MAX}], got {seed}"
    return None


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _tree_bytes(tree: Any) -> int:
    import jax

    return int(sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree_util.tree_leaves(tree)))


def _jaxpr_bytes(jaxpr: Any) -> int:
    """Bytes of every value a jaxpr computes, nested jaxprs (jit, custom_jvp, scan bodies) included."""
    total = 0
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            aval = getattr(var, "aval", None)
            if hasattr(aval, "shape") and hasattr(aval, "dtype"):
                total += math.prod(aval.shape) * aval.dtype.itemsize
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += _jaxpr_bytes(inner)
    return total


def estimate_memory(model: Any, optimizer: Any, *, batch_size: int, example_shape: tuple[int, ...]) -> dict:
    """Bytes one training run needs, by part: ``{"params", "optimizer", "gradients", "activations", "total"}``.

    Args:
      model: a ``jaxmath.models.Model``.
      optimizer: the ``Optimizer`` whose state will be kept.
      batch_size: examples per step.
      example_shape: the shape of one input example as ``model.apply`` receives it, e.g. ``(784,)``.
    """
    import jax
    import jax.numpy as jnp

    params = jax.eval_shape(model.init, jax.random.key(0))
    opt_state = jax.eval_shape(optimizer.init, params)
    x = jax.ShapeDtypeStruct((batch_size, *example_shape), jnp.float32)
    forward = jax.make_jaxpr(model.apply)(params, x)
    parts = {
        "params": _tree_bytes(params),
        "optimizer": _tree_bytes(opt_state),
        "gradients": _tree_bytes(params),
        "activations": 2 * _jaxpr_bytes(forward.jaxpr),
    }
    parts["total"] = sum(parts.values())
    return parts


def available_memory() -> tuple[int | None, str]:
    """``(bytes, where)``: the first device's memory limit, else the host's physical memory."""
    import jax

    device = jax.devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # backends without memory statistics
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"the {device.platform} device's"
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "the host's"
    except (ValueError, OSError, AttributeError):
        return None, "unknown"


def memory_problem(model: Any, optimizer: Any, *, batch_size: int, example_shape: tuple[int, ...]) -> str | None:
    """One line refusing a run whose estimate exceeds the memory available, or None."""
    parts = estimate_memory(model, optimizer, batch_size=batch_size, example_shape=example_shape)
    limit, where = available_memory()
    if limit is None or parts["total"] <= limit:
        return None
    detail = ", ".join(f"{name} {format_bytes(parts[name])}" for name in ("params", "optimizer", "gradients",
                                                                           "activations"))
    return (f"the network needs about {format_bytes(parts['total'])} ({detail}; batch {batch_size}) but "
            f"{where} memory is {format_bytes(limit)}: choose a smaller network or --batch-size")
