"""Benchmark: the kernels that bound two CPU targets, XLA:CPU vs NumPy (OpenBLAS), side by side in one run.

    python benchmarks/bench_kernels.py [--repeats 9]

Two targets of benchmarks/RESULTS.md are not met on the 2-core CPU of this project's machines. This script
measures the kernels each one is made of, so the reason can be checked on any machine in a few seconds:

1. ``run_epoch`` ≥ 1.2× a NumPy backprop epoch (784-16-16-10, batch 128). The step's cost is
   dominated by the first layer's two products, ``x @ W1`` (128×784 · 784×16, the forward pass) and
   ``xᵀ @ δ1`` (784×128 · 128×16, the weight gradient). Each is timed as one call of NumPy's ``@``
   (OpenBLAS) and as one iteration of a jitted ``fori_loop`` that calls it on operands drawn from a
   small pool (cache-resident like a training batch, and not hoistable), next to the cost of the
   loop's iteration alone.
2. One k-means iteration (60,000 × 784 float32, k = 10) no slower than scikit-learn's. A jitted
   Lloyd step is the score product C·Xᵀ plus ``segment_sum`` of X by label: two passes over X (188 MB).
   Each is timed alone, next to one plain reduction over X (``X.sum(0)``, the cost of reading X once)
   and NumPy's C @ Xᵀ.

Warm-up first, compile apart (``.lower().compile()``), ``block_until_ready``, contenders interleaved per
repeat with a 0.2 s pause before each timed call (OpenBLAS threads spin on after NumPy returns), median (min–max).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath.bench.timing import compile_fn, measure_interleaved

POOL = 8  # distinct operand sets cycled through by the XLA loops
CALLS = 2000  # products per timed XLA loop


def _xla_per_call(product, lhs_pool, rhs_pool):
    """Seconds per iteration of a jitted loop computing ``product(lhs_pool[i % POOL], rhs_pool[i % POOL])``."""

    def loop(lhs_pool, rhs_pool):
        def body(i, acc):
            return acc + product(lhs_pool[i % POOL], rhs_pool[i % POOL])

        return lax.fori_loop(0, CALLS, body, jnp.zeros_like(product(lhs_pool[0], rhs_pool[0])))

    compiled, _, _ = compile_fn(loop, lhs_pool, rhs_pool)
    return lambda: compiled(lhs_pool, rhs_pool)


def _numpy_per_call(product, lhs_pool, rhs_pool):
    def run():
        for i in range(CALLS):
            product(lhs_pool[i % POOL], rhs_pool[i % POOL])

    return run


def _fmt_us(t, scale):
    return f"{t.median * scale:.1f} ({t.min * scale:.1f}–{t.max * scale:.1f})"


def bench_mlp_layer1(repeats):
    rng = np.random.default_rng(0)
    x = rng.random((POOL, 128, 784), dtype=np.float32)
    w1 = rng.random((POOL, 784, 16), dtype=np.float32)
    delta = rng.random((POOL, 128, 16), dtype=np.float32)
    forward = lambda a, b: a @ b  # noqa: E731
    weight_grad = lambda a, b: a.T @ b  # noqa: E731
    loop_only = lambda a, b: b  # noqa: E731
    xj, w1j, dj = jnp.asarray(x), jnp.asarray(w1), jnp.asarray(delta)
    fns = {
        "x @ W1, NumPy": _numpy_per_call(forward, x, w1),
        "x @ W1, XLA": _xla_per_call(forward, xj, w1j),
        "xT @ d1, NumPy": _numpy_per_call(weight_grad, x, delta),
        "xT @ d1, XLA": _xla_per_call(weight_grad, xj, dj),
        "loop iteration alone, XLA": _xla_per_call(loop_only, xj, dj),
    }
    times = measure_interleaved(fns, repeats=repeats, warmup=1, pause=0.2)
    scale = 1e6 / CALLS
    print(f"784-16-16-10, first layer at batch 128: µs per product, median (min–max) of {repeats} x {CALLS} calls")
    print("| product | µs per call |\n|---|---|")
    for name, t in times.items():
        print(f"| {name} | {_fmt_us(t, scale)} |")
    for name in ("x @ W1", "xT @ d1"):
        ratio = times[f"{name}, XLA"].median / times[f"{name}, NumPy"].median
        print(f"- {name}: XLA / NumPy = {ratio:.2f}x")


def bench_kmeans_passes(repeats):
    rng = np.random.default_rng(0)
    X = rng.random((60_000, 784), dtype=np.float32)
    C = X[rng.choice(len(X), 10, replace=False)]
    labels = rng.integers(0, 10, len(X)).astype(np.int32)
    Xj, Cj, lj = jnp.asarray(X), jnp.asarray(C), jnp.asarray(labels)

    def compiled(fn, *args):
        exe, _, _ = compile_fn(fn, *args)
        return lambda: exe(*args)

    from jaxmath.unsupervised import kmeans as K

    fns = {
        "Lloyd step (lloyd_step), XLA": compiled(lambda X, C: K.lloyd_step(C, X), Xj, Cj),
        "scores C @ X.T, XLA": compiled(lambda X, C: C @ X.T, Xj, Cj),
        "segment_sum(X, labels), XLA": compiled(lambda X, l: jax.ops.segment_sum(X, l, 10), Xj, lj),
        "X.sum(0): one read of X, XLA": compiled(lambda X: X.sum(0), Xj),
        "scores C @ X.T, NumPy": lambda: C @ X.T,
    }
    times = measure_interleaved(fns, repeats=repeats, warmup=1, pause=0.2)
    print(f"\nk-means, 60,000 x 784 float32, k = 10: ms per call, median (min–max) of {repeats}")
    print("| kernel | ms |\n|---|---|")
    for name, t in times.items():
        print(f"| {name} | {_fmt_us(t, 1e3)} |")
    parts = times["scores C @ X.T, XLA"].median + times["segment_sum(X, labels), XLA"].median
    print(f"- scores + segment_sum = {parts * 1e3:.1f} ms; one read of X = "
          f"{times['X.sum(0): one read of X, XLA'].median * 1e3:.1f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}, numpy {np.__version__}, "
          f"devices {jax.devices()}, load {os.getloadavg()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    bench_mlp_layer1(args.repeats)
    bench_kmeans_passes(args.repeats)


if __name__ == "__main__":
    main()
