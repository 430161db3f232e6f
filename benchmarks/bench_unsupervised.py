"""Benchmark: one k-means (Lloyd) iteration and one online SOM epoch, jaxmath vs eager JAX, scikit-learn, MiniSom.

    .venv/bin/python benchmarks/bench_unsupervised.py [--repeats 5]

k-means: the 60,000 × 784 float32 MNIST training images scaled to [0, 1], k = 10.
  - jaxmath ``lloyd_step`` jitted vs the same code eagerly (``jax.disable_jit``), per iteration;
  - scikit-learn ``KMeans(init=C, n_init=1, algorithm="lloyd", tol=0)``: per iteration as the slope between
    ``max_iter=2`` and ``max_iter=12`` fits (fixed costs cancel) and, more flattering to jaxmath, as the
    total time of the 12-iteration fit divided by ``n_iter_``.
SOM: 10 × 10 grid, one online epoch (10,000 steps, sequential order, gaussian, asymptotic decays) over the
  first 10,000 MNIST training images scaled to [0, 1]: jaxmath ``som.fit`` (jitted ``lax.scan``) vs
  ``MiniSom.train``.

Warm-up first, compile time apart, ``block_until_ready``; the contenders are timed interleaved (one of each
per repeat) and the ratios are medians of per-repeat ratios, so a shared, loaded machine hits them alike.
Needs scikit-learn and minisom (test extras) and the MNIST training split ($JAXMATH_DATA_DIR).
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

from jaxmath.datasets import load_mnist
from jaxmath.unsupervised import kmeans as K
from jaxmath.unsupervised import som as S


def _times(fn, repeats):
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _fmt(ts, scale=1.0):
    ts = [t * scale for t in ts]
    return f"{statistics.median(ts):.4g} ({min(ts):.4g}–{max(ts):.4g})"


def bench_kmeans(repeats):
    from sklearn.cluster import KMeans

    images, _ = load_mnist("train")
    X = images.reshape(len(images), -1).astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    C0 = X[rng.choice(len(X), 10, replace=False)]
    Xj, Cj = jnp.asarray(X), jnp.asarray(C0)

    t = time.perf_counter()
    compiled = K.lloyd_step.lower(Cj, Xj).compile()  # lloyd_step is itself jitted
    compile_s = time.perf_counter() - t

    def jitted():
        jax.block_until_ready(compiled(Cj, Xj))

    def eager():
        with jax.disable_jit():
            jax.block_until_ready(K.lloyd_step(Cj, Xj))

    def sk_fit(max_iter):
        km = KMeans(10, init=C0, n_init=1, algorithm="lloyd", tol=0.0, max_iter=max_iter)
        km.fit(X)
        return km.n_iter_

    jitted(), eager(), sk_fit(2)  # warm-up
    n_long = sk_fit(12)
    # Interleaved: every repeat times all four back to back, so load changes hit them alike.
    jit_t, eager_t, short, long = [], [], [], []
    for _ in range(repeats):
        jit_t += _times(jitted, 1)
        eager_t += _times(eager, 1)
        short += _times(lambda: sk_fit(2), 1)
        long += _times(lambda: sk_fit(12), 1)
    slope = [(b - a) / (n_long - 2) for a, b in zip(short, long)]
    per_fit = [b / n_long for b in long]
    rows = [
        ("jaxmath lloyd_step, jit", jit_t),
        ("same code, eager (disable_jit)", eager_t),
        ("scikit-learn lloyd, slope 2→12 iters", slope),
        (f"scikit-learn lloyd, 12-iter fit / {n_long}", per_fit),
    ]
    return compile_s, rows, {
        "eager / jit": _ratio(eager_t, jit_t),
        "sklearn (slope) / jit": _ratio(slope, jit_t),
        "sklearn (fit / n_iter) / jit": _ratio(per_fit, jit_t),
    }


def _ratio(a, b):
    """Median and range of the per-repeat ratios a_i / b_i."""
    r = [x / y for x, y in zip(a, b)]
    return statistics.median(r), min(r), max(r)


def bench_som(repeats):
    from minisom import MiniSom

    images, _ = load_mnist("train[:10000]")
    X = images.reshape(len(images), -1).astype(np.float32) / 255.0
    Xj = jnp.asarray(X)
    params = S.init(jax.random.key(0), Xj, rows=10, cols=10)
    w0 = np.asarray(params, np.float64)

    def ours():
        new, _ = S.fit(Xj, params=params, max_steps=len(X), sigma=1.5, learning_rate=0.5)
        jax.block_until_ready(new)

    t = time.perf_counter()
    ours()  # first call: trace + compile + one run
    first_s = time.perf_counter() - t

    def theirs():
        m = MiniSom(10, 10, X.shape[1], sigma=1.5, learning_rate=0.5, random_seed=0)
        m._weights = w0.copy()
        m.train(X, len(X))

    ours_t, mini_t = [], []
    for _ in range(max(2, repeats // 2)):  # interleaved, as for k-means
        ours_t += _times(ours, 1)
        mini_t += _times(theirs, 1)
    rows = [("jaxmath som.fit, jit (lax.scan)", ours_t), ("MiniSom.train", mini_t)]
    return first_s, rows, {"MiniSom / jaxmath": _ratio(mini_t, ours_t)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"jax {jax.__version__}, devices {jax.devices()}, load {os.getloadavg()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")

    compile_s, rows, ratios = bench_kmeans(args.repeats)
    print("k-means, one Lloyd iteration, 60,000 x 784 float32 (MNIST train), k = 10 (compile: %.3g s)" % compile_s)
    print("| implementation | ms per iteration: median (min–max) |\n|---|---|")
    for name, ts in rows:
        print(f"| {name} | {_fmt(ts, 1e3)} |")
    print("\n" + "\n".join(f"- {k}: {m:.3g}x (per-repeat {lo:.3g}–{hi:.3g})" for k, (m, lo, hi) in ratios.items()) + "\n")

    first_s, rows, ratios = bench_som(args.repeats)
    print("SOM, one online epoch, 10,000 MNIST train images, 10 x 10 grid (first call incl. compile: %.3g s)"
          % first_s)
    print("| implementation | s per epoch: median (min–max) |\n|---|---|")
    for name, ts in rows:
        print(f"| {name} | {_fmt(ts)} |")
    print("\n" + "\n".join(f"- {k}: {m:.3g}x (per-repeat {lo:.3g}–{hi:.3g})" for k, (m, lo, hi) in ratios.items()))
    print(f"\nload after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
