"""Precision parity: how far an MLP's outputs and gradients move from CPU float32 at each matmul precision.

On TPU the default matmul precision multiplies in one bfloat16 pass; on Ampere+
GPUs it allows TensorFloat-32. This report makes that visible: for each
precision ("default", "high", "highest") and compute dtype (float32 params with
float32 or bfloat16 matmuls), it runs the same MLP forward pass and gradient on
the current device and compares with CPU float32 at "highest":

    abs error = max_i |a_i − r_i|,      rel error = max_i |a_i − r_i| / max_i |r_i|

a ↔ the device's result, r ↔ the CPU float32 reference (outputs: the logits;
gradients: all parameter gradients, each leaf compared and the worst kept). The
relative error is normwise (scaled by the reference's largest magnitude), so
entries near zero do not blow it up.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath._validation import check_choice

PRECISIONS = ("default", "high", "highest")
COMPUTE_DTYPES = ("float32", "bfloat16")


class ParityRow(NamedTuple):
    device_kind: str
    precision: str
    compute_dtype: str
    output_abs: float
    output_rel: float
    grad_abs: float
    grad_rel: float


def max_errors(actual: Any, reference: Any) -> tuple[float, float]:
    """``(max |a − r|, max |a − r| / max |r|)`` over the leaves of two pytrees (worst leaf), in float64 NumPy."""
    worst_abs = worst_rel = 0.0
    for a, r in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(reference)):
        a = np.asarray(a, np.float64)
        r = np.asarray(r, np.float64)
        diff = float(np.max(np.abs(a - r))) if a.size else 0.0
        scale = float(np.max(np.abs(r))) if r.size else 0.0
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / scale if scale > 0 else (0.0 if diff == 0 else np.inf))
    return worst_abs, worst_rel


def _outputs_and_grads(params, x, labels, *, sizes, precision, compute_dtype, activation):
    from jaxmath import losses
    from jaxmath.models import mlp

    apply = mlp.make(sizes, activation=activation, output="identity", precision=precision,
                     compute_dtype=compute_dtype).apply

    @jax.jit
    def run(params, x, labels):
        def loss(p):
            return losses.softmax_cross_entropy(apply(p, x), labels)

        return apply(params, x), jax.grad(loss)(params)

    return run(params, x, labels)


def parity_report(
    *,
    sizes: Sequence[int] = (784, 256, 256, 10),
    batch: int = 128,
    precisions: Sequence[str] = PRECISIONS,
    compute_dtypes: Sequence[str] = COMPUTE_DTYPES,
    activation: str = "tanh",
    device: jax.Device | None = None,
    seed: int = 0,
) -> list[ParityRow]:
    """Errors of the MLP's outputs and gradients on ``device`` against CPU float32 at "highest".

    Args:
      sizes: MLP layer sizes (float32 params from ``mlp.make(sizes).init``).
      batch: rows of the random input batch (inputs ~ U[0, 1), like scaled pixels).
      precisions: matmul precisions to try.
      compute_dtypes: "float32" and/or "bfloat16" (``mlp.apply(compute_dtype=...)``, params stay float32).
      device: where to run (default: JAX's default device).

    Returns:
      One ``ParityRow`` per (precision, compute dtype).
    """
    for p in precisions:
        check_choice(p, PRECISIONS, name="precision")
    for d in compute_dtypes:
        check_choice(d, COMPUTE_DTYPES, name="compute_dtype")
    from jaxmath.models import mlp

    device = device or jax.devices()[0]
    cpu = jax.devices("cpu")[0]
    rng = np.random.default_rng(seed)
    x = rng.random((batch, sizes[0]), dtype=np.float32)
    labels = rng.integers(0, sizes[-1], size=(batch,)).astype(np.int32)
    with jax.default_device(cpu):
        params = mlp.make(sizes, dtype="float32").init(jax.random.key(seed))
    ref_args = jax.device_put((params, x, labels), cpu)
    reference = _outputs_and_grads(*ref_args, sizes=sizes, precision="highest", compute_dtype=None,
                                   activation=activation)
    dev_args = jax.device_put((params, x, labels), device)
    rows = []
    for dtype in compute_dtypes:
        for precision in precisions:
            out, grads = _outputs_and_grads(
                *dev_args, sizes=sizes, precision=precision, compute_dtype=None if dtype == "float32" else "bfloat16",
                activation=activation,
            )
            o_abs, o_rel = max_errors(out, reference[0])
            g_abs, g_rel = max_errors(grads, reference[1])
            rows.append(ParityRow(device.device_kind, precision, dtype, o_abs, o_rel, g_abs, g_rel))
    return rows


def format_parity(rows: Sequence[ParityRow]) -> str:
    """The report as a fixed-width table."""
    head = ("device", "precision", "compute", "output abs", "output rel", "grad abs", "grad rel")
    body = [(r.device_kind, r.precision, r.compute_dtype, f"{r.output_abs:.2e}", f"{r.output_rel:.2e}",
             f"{r.grad_abs:.2e}", f"{r.grad_rel:.2e}") for r in rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
