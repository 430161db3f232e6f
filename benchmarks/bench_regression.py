"""Regression fits against scikit-learn, side by side in one run.

1. Logistic regression on ``--n`` × ``--d`` float32 (default 100,000 × 100), L2 with C = 1: jaxmath's
   ``logistic_regression.fit`` (L-BFGS and Newton / IRLS, each one ``lax.while_loop``, jitted) vs
   ``sklearn.linear_model.LogisticRegression(solver="lbfgs")`` (its default tol). Both objectives are evaluated
   afterwards in float64 on the same data as mean cross-entropy + ½ α ‖w‖² with α = 1 / (C n) (scikit-learn's
   objective divided by C n). Target: jaxmath's final objective ≤ scikit-learn's + 1e-4, in no more wall time.
2. ``--batch`` (256) independent linear regressions of ``--rows`` × ``--features`` (10,000 × 20) float32:
   ``jax.vmap`` of ``linear_regression.fit_closed_form`` in one jitted call (solver "normal"; "lstsq" too
   with ``--lstsq``)
   vs a Python loop of ``sklearn.linear_model.LinearRegression().fit``. Target: ≥ 10× faster.

Compile time is measured apart (``jax.jit(f).lower(*args).compile()``); every timed call ends with
``block_until_ready``; each side is warmed up, then timed ``--repeats`` times alternately, each timed call after a
0.2 s pause so the previous side's spinning worker threads do not slow it; median and min/max.

    python benchmarks/bench_regression.py [--repeats 5] [--n 100000] [--d 100] [--batch 256] [--lstsq]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from functools import partial

import jax
import jaxlib
import numpy as np

from jaxmath.models import linear_regression, logistic_regression


def _settle(seconds=0.2):
    """Pause before a timed call: the side just timed leaves its worker threads spinning for a while (BLAS
    after scikit-learn, XLA's pool after jax), which slows whichever side runs next on a small machine."""
    time.sleep(seconds)


def _stats(times):
    return statistics.median(times), min(times), max(times)


def _fmt(times):
    med, lo, hi = _stats(times)
    return f"{med * 1e3:9.1f} ms  [{lo * 1e3:.1f} – {hi * 1e3:.1f}]"


def _objective64(w, b, X, t, alpha):
    z = X.astype(np.float64) @ np.asarray(w, np.float64) + float(b)
    ce = np.mean(np.logaddexp(0.0, z) - t * z)
    return ce + 0.5 * alpha * np.sum(np.asarray(w, np.float64) ** 2)


def bench_logistic(n, d, repeats, solvers=("lbfgs", "newton"), seed=0):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    w_true = rng.normal(size=d) / np.sqrt(d) * 3
    t = (X @ w_true + rng.logistic(size=n) > 0).astype(np.int32)
    C = 1.0
    alpha = 1.0 / (C * n)

    Xj, tj = jax.device_put(X), jax.device_put(t)
    compiled, compile_s = {}, {}
    for solver in solvers:
        # The public fit under jit: its value checks skip tracers, num_classes is given since labels are traced.
        fit = jax.jit(partial(logistic_regression.fit, num_classes=2, penalty="l2", alpha=alpha, solver=solver,
                              max_steps=100, tol=1e-5))
        t0 = time.perf_counter()
        compiled[solver] = fit.lower(Xj, tj).compile()
        compile_s[solver] = time.perf_counter() - t0
        jax.block_until_ready(compiled[solver](Xj, tj))  # warm-up

    LogisticRegression(C=C, solver="lbfgs", max_iter=1000).fit(X, t)  # warm-up

    times = {name: [] for name in (*solvers, "sklearn")}
    results = {}
    for _ in range(repeats):
        for solver in solvers:
            _settle()
            t0 = time.perf_counter()
            results[solver] = jax.block_until_ready(compiled[solver](Xj, tj))
            times[solver].append(time.perf_counter() - t0)
        _settle()
        t0 = time.perf_counter()
        sk = LogisticRegression(C=C, solver="lbfgs", max_iter=1000).fit(X, t)
        times["sklearn"].append(time.perf_counter() - t0)

    f_sk = _objective64(sk.coef_[0], sk.intercept_[0], X, t, alpha)
    sk_med = statistics.median(times["sklearn"])
    print(f"\n## Logistic regression, {n} x {d} float32, L2, C = {C}")
    print("| fit | iterations | compile | wall time (median [min – max]) | final objective (float64) | gap vs sklearn | speed-up vs sklearn |")
    print("|---|---|---|---|---|---|---|")
    for solver in solvers:
        params, info = results[solver]
        f = _objective64(params["w"], params["b"], X, t, alpha)
        print(f"| jaxmath logistic_regression.fit(solver={solver!r}), jit | {int(info.num_steps)} | "
              f"{compile_s[solver] * 1e3:.0f} ms | {_fmt(times[solver])} | {f:.8f} | {f - f_sk:+.1e} | "
              f"{sk_med / statistics.median(times[solver]):.2f}x |")
    print(f"| sklearn LogisticRegression(solver='lbfgs') | {int(sk.n_iter_[0])} | – | {_fmt(times['sklearn'])} | "
          f"{f_sk:.8f} | 0 | 1.00x |")


def bench_batched_linear(batch, rows, features, repeats, solvers=("normal",), seed=1):
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, rows, features)).astype(np.float32)
    W = rng.normal(size=(batch, features)).astype(np.float32)
    y = (np.einsum("brf,bf->br", X, W) + 0.5 + 0.1 * rng.normal(size=(batch, rows))).astype(np.float32)
    Xj, yj = jax.device_put(X), jax.device_put(y)

    print(f"\n## {batch} independent linear regressions, {rows} x {features} float32 each")
    print("| fit | wall time (median [min – max]) | compile | max |w − w_sklearn| | speed-up vs sklearn loop |")
    print("|---|---|---|---|---|")

    sk_fit = lambda: [LinearRegression().fit(X[i], y[i]) for i in range(batch)]  # noqa: E731
    sk_fit()  # warm-up
    compiled, compile_s = {}, {}
    for solver in solvers:
        f = jax.jit(jax.vmap(partial(linear_regression.fit_closed_form, solver=solver)))
        t0 = time.perf_counter()
        compiled[solver] = f.lower(Xj, yj).compile()
        compile_s[solver] = time.perf_counter() - t0
        jax.block_until_ready(compiled[solver](Xj, yj))  # warm-up
    # Alternate the sides within each repeat (as the module docstring says), so a change of machine load
    # during the run hits both sides alike instead of skewing the ratio.
    sk_times, times, params = [], {solver: [] for solver in solvers}, {}
    for _ in range(repeats):
        _settle()
        t0 = time.perf_counter()
        models = sk_fit()
        sk_times.append(time.perf_counter() - t0)
        for solver in solvers:
            _settle()
            t0 = time.perf_counter()
            params[solver], _ = jax.block_until_ready(compiled[solver](Xj, yj))
            times[solver].append(time.perf_counter() - t0)
    sk_coef = np.stack([m.coef_ for m in models])
    sk_med = statistics.median(sk_times)

    for solver in solvers:
        err = float(np.max(np.abs(np.asarray(params[solver]["w"]) - sk_coef)))
        print(f"| jaxmath vmap(closed_form, solver={solver!r}), one jitted call | {_fmt(times[solver])} | "
              f"{compile_s[solver] * 1e3:.0f} ms | {err:.1e} | {sk_med / statistics.median(times[solver]):.1f}x |")
    print(f"| Python loop of sklearn LinearRegression().fit | {_fmt(sk_times)} | – | 0 | 1.0x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--only", choices=("logistic", "linear"), help="run one of the two benchmarks")
    parser.add_argument("--lstsq", action="store_true",
                        help="also time the batched solver='lstsq' (QR + SVD; slow on CPU, ~minutes)")
    args = parser.parse_args()

    import sklearn

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; jax {jax.__version__}, jaxlib {jaxlib.__version__}, "
          f"scikit-learn {sklearn.__version__}, numpy {np.__version__}; device {jax.devices()[0].device_kind}")
    if args.only != "linear":
        bench_logistic(args.n, args.d, args.repeats)
    if args.only != "logistic":
        solvers = ("normal", "lstsq") if args.lstsq else ("normal",)
        bench_batched_linear(args.batch, args.rows, args.features, args.repeats, solvers=solvers)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
