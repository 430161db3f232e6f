"""jaxmath.optim.adam vs the same Adam hand-inlined as one jitted function, side by side in one run.

Both sides do one full Adam step (moments, bias correction, parameter update) on a pytree of ``--leaves``
float32 leaves totalling ``--params`` parameters, jitted, without buffer donation on either side. Compile time is
measured apart (``jax.jit(f).lower(...).compile()``); the two compiled functions are then timed alternately
(``block_until_ready`` on every output) after a warm-up, and the median and min/max are printed with the
ratio of medians (target: jaxmath / inlined ≤ 1.1).

    python benchmarks/bench_optim.py [--params 10000000] [--leaves 100] [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import optim

LEARNING_RATE, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8


def make_tree(num_params: int, num_leaves: int, key: jax.Array) -> list[jax.Array]:
    """``num_leaves`` float32 leaves of mixed shapes (matrices and vectors) summing to ``num_params``."""
    sizes = [num_params // num_leaves] * num_leaves
    sizes[-1] += num_params - sum(sizes)
    leaves = []
    for i, (size, k) in enumerate(zip(sizes, jax.random.split(key, num_leaves))):
        shape = (size // 100, 100) if i % 2 == 0 and size % 100 == 0 else (size,)
        leaves.append(jax.random.normal(k, shape, jnp.float32))
    return leaves


def jaxmath_step(opt):
    def step(params, grads, state):
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    return step


def inlined_step(params, grads, mu, nu, count):
    """Adam written out by hand over the list of leaves: no Optimizer, no state NamedTuple, no tree_map."""
    t = (count + 1).astype(jnp.float32)
    bias_correction1 = 1 - B1**t
    bias_correction2 = 1 - B2**t
    new_params, new_mu, new_nu = [], [], []
    for p, g, m, v in zip(params, grads, mu, nu):
        m = B1 * m + (1 - B1) * g
        v = B2 * v + (1 - B2) * g * g
        p = p - LEARNING_RATE * (m / bias_correction1) / (jnp.sqrt(v / bias_correction2) + EPS)
        new_params.append(p)
        new_mu.append(m)
        new_nu.append(v)
    return new_params, new_mu, new_nu, count + 1


def compile_timed(fn, *args):
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def timed(fn, *args) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--leaves", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)

    key_p, key_g = jax.random.split(jax.random.key(0))
    params = make_tree(args.params, args.leaves, key_p)
    grads = make_tree(args.params, args.leaves, key_g)
    opt = optim.adam(learning_rate=LEARNING_RATE, b1=B1, b2=B2, eps=EPS)
    state = opt.init(params)
    zeros = [jnp.zeros_like(p) for p in params]
    count = jnp.zeros([], jnp.int32)

    ours, ours_compile = compile_timed(jaxmath_step(opt), params, grads, state)
    inlined, inlined_compile = compile_timed(inlined_step, params, grads, zeros, zeros, count)

    # Same numbers first: the benchmark compares two implementations of one update.
    ours_params, _ = ours(params, grads, state)
    inlined_params, *_ = inlined(params, grads, zeros, zeros, count)
    for a, b in zip(ours_params, inlined_params):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)

    for _ in range(args.warmup):
        timed(ours, params, grads, state)
        timed(inlined, params, grads, zeros, zeros, count)
    ours_times, inlined_times = [], []
    for _ in range(args.repeats):  # alternate, so load changes hit both sides alike
        ours_times.append(timed(ours, params, grads, state))
        inlined_times.append(timed(inlined, params, grads, zeros, zeros, count))

    total = sum(int(np.prod(p.shape)) for p in params)
    print(f"# jax {jax.__version__}, jaxlib {jax.lib.__version__ if hasattr(jax.lib, '__version__') else '?'}, "
          f"device {jax.devices()[0].device_kind} ({jax.default_backend()}), "
          f"{platform.machine()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"# Adam step on {len(params)} float32 leaves, {total:,} parameters, {args.repeats} repeats")
    print("| implementation | compile (s) | median (ms) | min (ms) | max (ms) |")
    print("|---|---:|---:|---:|---:|")
    for name, compile_s, times in (
        ("jaxmath.optim.adam + apply_updates", ours_compile, ours_times),
        ("hand-inlined Adam", inlined_compile, inlined_times),
    ):
        ms = [1e3 * t for t in times]
        print(f"| {name} | {compile_s:.2f} | {statistics.median(ms):.2f} | {min(ms):.2f} | {max(ms):.2f} |")
    ratio = statistics.median(ours_times) / statistics.median(inlined_times)
    print(f"ratio (jaxmath / inlined, medians): {ratio:.3f}  (target <= 1.1)")


if __name__ == "__main__":
    main()
