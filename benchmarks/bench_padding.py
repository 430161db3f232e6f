"""Padding for the matrix units, measured: a matmul and an MLP training step at unpadded and padded sizes.

    python benchmarks/bench_padding.py [--rounds 7] [--inner 20] [--dtype float32|bfloat16]

Cases (``jaxmath.devices.padding``): the hidden width 1000 against 1024 (= padded_size(1000, 128)) and the
batch 100 against 128 (a multiple of 8 and of 128), as one (batch, 784) @ (784, width) matmul and as one
jitted ``training.make_train_step`` step of a 784-width-10 ReLU MLP (softmax cross-entropy, Adam). Every case
is compiled first (compile time reported apart), warmed up, then timed in ``--rounds`` rounds that visit the
cases in turn, so a burst of load from other processes hits all of them alike; a round times ``--inner``
calls and a ``block_until_ready``. The table gives the median time per call over the rounds, the spread
(min–max), the time per row when every row is real (a batch of 128 real images), and the ratio to 100 × 1000
(the cost of padding 100 real rows to 128, or 1000 units to 1024).

Read it honestly: a CPU has no matrix unit. XLA:CPU runs matmuls through vectorised loops (Eigen / oneDNN),
so a padded size is simply more arithmetic (1024 × 128 is 1.31× the multiply-adds of 1000 × 100); any gain
comes from friendlier vector and cache tiling, not from filling a 128 × 128 systolic array. The sizes that
matter are a TPU's (its MXU works on 128 × 128 tiles and XLA pads every array to (8, 128) tiles anyway, so
1000 costs what 1024 costs) and a GPU's tensor cores (multiples of 8 for 16-bit types); measure there with
``--dtype bfloat16`` when a device is available.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import optim, training
from jaxmath.devices import padding
from jaxmath.models import mlp

WIDTHS = (1000, padding.padded_size(1000, 128))
BATCHES = (100, padding.padded_size(100, 128))


def _matmul_case(batch, width, dtype):
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(size=(batch, 784)), dtype)
    b = jnp.asarray(rng.normal(size=(784, width)), dtype)
    fn = jax.jit(lambda a, b: a @ b)
    return (lambda: fn(a, b)), (lambda: fn.lower(a, b).compile())


def _step_case(batch, width, dtype):
    compute = None if dtype == "float32" else dtype
    model = mlp.make((784, width, 10), activation="relu", compute_dtype=compute)
    step = training.make_train_step(training.make_classifier_loss(model, num_classes=10),
                                    optim.adam(learning_rate=1e-3), donate=False)
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, 256, size=(batch, 28, 28), dtype=np.uint8))
    labels = jnp.asarray(rng.integers(0, 10, size=(batch,), dtype=np.uint8))
    return (lambda: step(state, (x, labels))), (lambda: jax.jit(step.pure).lower(state, (x, labels)).compile())


def _time(fn, inner):
    start = time.perf_counter()
    for _ in range(inner):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / inner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--inner", type=int, default=20, help="calls per timed round")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="matmul operands; for the step, the MLP's compute dtype (params stay float32)")
    args = parser.parse_args()
    import jaxlib

    load = os.getloadavg()
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.machine()}, "
          f"{os.cpu_count()} CPU cores; backend {jax.default_backend()} ({jax.devices()[0].device_kind}); "
          f"jax {jax.__version__}, jaxlib {jaxlib.__version__}")
    print(f"- command: python benchmarks/bench_padding.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"- load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    cases = {}
    for kind, make in (("matmul", _matmul_case), ("MLP step", _step_case)):
        for batch in BATCHES:
            for width in WIDTHS:
                cases[(kind, batch, width)] = make(batch, width, args.dtype)
    compile_s = {}
    for key, (run, compile_fn) in cases.items():
        start = time.perf_counter()
        compile_fn()
        compile_s[key] = time.perf_counter() - start
        _time(run, 3)  # warm up (the cached executable of the call path)
    times = {key: [] for key in cases}
    for _ in range(args.rounds):
        for key, (run, _) in cases.items():
            times[key].append(_time(run, args.inner))
    print(f"- load average after: {os.getloadavg()[0]:.2f}")
    print()
    print(f"| case ({args.dtype}) | batch | width | median per call | spread (min–max) | per row | "
          "vs 100 × 1000 | compile |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("matmul", "MLP step"):
        base = statistics.median(times[(kind, BATCHES[0], WIDTHS[0])])
        for batch in BATCHES:
            for width in WIDTHS:
                t = times[(kind, batch, width)]
                med = statistics.median(t)
                print(f"| {kind} | {batch} | {width} | {med * 1e6:,.0f} µs | {min(t) * 1e6:,.0f}–"
                      f"{max(t) * 1e6:,.0f} µs | {med / batch * 1e6:.2f} µs | {med / base:.2f}× | "
                      f"{compile_s[(kind, batch, width)] * 1e3:.0f} ms |")
    print("\n(per row: the time divided by the batch, every row real. Padding 100 real rows to 128 costs the "
          "'vs' ratio for no more results. Multiply-adds relative to 100 × 1000: 1.024× for width 1024, "
          "1.28× for batch 128, 1.31× for both.)")


if __name__ == "__main__":
    main()
