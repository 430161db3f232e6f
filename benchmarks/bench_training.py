"""One MNIST epoch with ``run_epoch`` against the ways users write it, side by side in one run.

The network of the notes, 784-16-16-10 sigmoid, sum-of-squares loss, SGD (lr 1.0), batch 128, one epoch over
the real MNIST training split (``train``, 60,000 images; ``--samples`` takes a leading slice):

  run_epoch        jaxmath.training.run_epoch: one compiled lax.scan, uint8 data on the device, on-device
                   shuffling, each step gathers its rows of the device array, metrics as scan outputs
  prebatched_scan  the same step in a lax.scan over batches cut once beforehand ((steps, 128, 28, 28) on the
                   device, no shuffle, no gather, no finite check): what the per-step row gather costs run_epoch
  prebatched_guarded  the same, with run_epoch's per-step finite check (reject a non-finite step): separates
                   the gather from the guard
  run_epoch_logistic  run_epoch over a loss written with jax.nn.sigmoid (lax.logistic) instead of
                   jaxmath.activations.sigmoid: separates the engine's cost from the activation's
  flax_style       as the JAX and flax MNIST examples write it: float32 images in host memory, a NumPy
                   permutation per epoch, each batch gathered with NumPy on the host and passed to a jitted
                   step (one host-to-device copy per step)
  jax_loop         float32 data on the device indexed with a host permutation on every step (x[idx]: an eager
                   gather dispatch per step), then the jitted step
  numpy            a hand-written NumPy backprop loop (the delta rule), float32 (default OpenBLAS threads, and
                   again limited to one thread when threadpoolctl is installed)

then the per-step cost of jaxmath's jitted ``make_train_step`` called from a Python loop vs bare ``jax.jit``
SGD steps on the same pre-made device batches, and the compile time of the epoch (measured apart).

Usage: ``python benchmarks/bench_training.py [--repeats 5] [--samples 60000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import optim
from jaxmath.models import mlp
from jaxmath.training import make_classifier_loss, make_train_step, run_epoch
from jaxmath.training.epoch import _epoch_core, _tree_all_finite

SIZES = (784, 16, 16, 10)
BATCH = 128
LEARNING_RATE = 1.0


def stats(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}


def load_data(samples):
    """uint8 (samples, 28, 28) images and uint8 labels: the leading ``samples`` of the MNIST training split."""
    from jaxmath.datasets import load_mnist

    split = "train" if samples >= 60_000 else f"train[:{samples}]"
    images, labels = load_mnist(split)
    return np.asarray(images), np.asarray(labels), f"MNIST {split}"


# ----------------------------------------------------------------------------- (a) usual plain JAX


def plain_loss(params, x, labels):
    a = x
    for w, b in params:
        a = jax.nn.sigmoid(a @ w + b)
    return jnp.mean(jnp.sum((a - jax.nn.one_hot(labels, 10, dtype=a.dtype)) ** 2, axis=-1))


@functools.partial(jax.jit, donate_argnums=(0,))
def plain_step(params, x, labels):
    loss, grads = jax.value_and_grad(plain_loss)(params, x, labels)
    params = jax.tree_util.tree_map(lambda p, g: p - LEARNING_RATE * g, params, grads)
    return params, loss


def flax_style_epoch(params, x_host, labels_host, seed):
    """The JAX/flax MNIST examples' loop: NumPy permutation, NumPy gather of each batch, jitted step."""
    perm = np.random.default_rng(seed).permutation(len(x_host))
    losses = []
    for i in range(len(x_host) // BATCH):
        idx = perm[i * BATCH:(i + 1) * BATCH]
        params, loss = plain_step(params, x_host[idx], labels_host[idx])
        losses.append(loss)
    return jax.block_until_ready((params, losses))


def jax_loop_epoch(params, x_dev, labels_dev, seed):
    """Device arrays indexed with a host permutation on every step: an eager gather dispatch per step."""
    perm = np.random.default_rng(seed).permutation(x_dev.shape[0])
    losses = []
    for i in range(x_dev.shape[0] // BATCH):
        idx = perm[i * BATCH:(i + 1) * BATCH]
        params, loss = plain_step(params, x_dev[idx], labels_dev[idx])
        losses.append(loss)
    return jax.block_until_ready((params, losses))


def handwritten_loss(params, batch):
    """The same loss and accuracy as jaxmath's loss_fn, written inline with jax.nn.sigmoid (lax.logistic)."""
    x_u8, y = batch
    a = x_u8.reshape(x_u8.shape[0], -1).astype(jnp.float32) / 255
    for w, b in params:
        a = jax.nn.sigmoid(a @ w + b)
    loss = jnp.mean(jnp.sum((a - jax.nn.one_hot(y, 10, dtype=a.dtype)) ** 2, axis=-1))
    return loss, {"accuracy": jnp.mean(jnp.argmax(a, axis=-1) == y)}


# ----------------------------------------------------------------------------- (b) NumPy backprop


def numpy_epoch(params, images, labels, seed):
    """The delta rule by hand: δ_L = 2/n (a−y) a(1−a), δ_l = (δ_{l+1} W_{l+1}ᵀ) a_l(1−a_l)."""
    params = [(w.copy(), b.copy()) for w, b in params]
    eye = np.eye(SIZES[-1], dtype=np.float32)
    flat = images.reshape(len(images), -1)
    perm = np.random.default_rng(seed).permutation(len(images))
    scale = np.float32(1 / 255)
    for i in range(len(images) // BATCH):
        idx = perm[i * BATCH:(i + 1) * BATCH]
        acts = [flat[idx].astype(np.float32) * scale]
        for w, b in params:
            acts.append(1 / (1 + np.exp(-(acts[-1] @ w + b))))
        a = acts[-1]
        delta = (np.float32(2 / BATCH) * (a - eye[labels[idx]]) * a * (1 - a)).astype(np.float32)
        for l in range(len(params) - 1, -1, -1):
            w, b = params[l]
            grad_w, grad_b = acts[l].T @ delta, delta.sum(axis=0)
            if l > 0:
                delta = (delta @ w.T) * acts[l] * (1 - acts[l])
            params[l] = (w - np.float32(LEARNING_RATE) * grad_w, b - np.float32(LEARNING_RATE) * grad_b)
    return params


# ----------------------------------------------------------------------------- measurement


def time_calls(fn, repeats):
    """Wall time of ``repeats`` calls, each after a 0.2 s pause.

    The pause is for every side alike: the side timed just before leaves worker threads spinning
    (OpenBLAS after the NumPy epoch, XLA's pool after a jax call), and without it whichever side
    runs next in the interleaved order pays for the previous one on a 2-core machine.
    """
    times = []
    for _ in range(repeats):
        time.sleep(0.2)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--step-repeats", type=int, default=100, help="steps per timing of the step loop")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    images_u8, labels_u8, source = load_data(args.samples)
    n = len(images_u8)
    steps = n // BATCH
    model = mlp.make(SIZES, activation="sigmoid", output="sigmoid", scheme="glorot")
    params0 = model.init(jax.random.key(0))
    params_np = [(np.asarray(w), np.asarray(b)) for w, b in params0]
    optimizer = optim.sgd(learning_rate=LEARNING_RATE)

    loss_fn = make_classifier_loss(model, num_classes=10, loss="sum_of_squares")
    train_step = make_train_step(loss_fn, optimizer)

    images_dev = jax.device_put(images_u8)
    labels_dev = jax.device_put(labels_u8)

    def fresh_state():
        return train_step.init(jax.tree_util.tree_map(jnp.array, params0), key=jax.random.key(1))

    # Compile time of the epoch, apart: trace + lower, then compile, of the same jitted function run_epoch
    # calls, from cold caches. Wall time and process CPU time: on a machine shared with other jobs the CPU
    # time is what the compile costs on an idle one (XLA's CPU compile is essentially single-threaded).
    epoch_jit = jax.jit(_epoch_core, static_argnums=(0, 1), donate_argnums=(2,))
    lower_wall, compile_wall, total_cpu = [], [], []
    for _ in range(3):
        jax.clear_caches()
        cpu0, t0 = time.process_time(), time.perf_counter()
        lowered = epoch_jit.lower(train_step, BATCH, fresh_state(), images_dev, labels_dev)
        t1 = time.perf_counter()
        lowered.compile()
        t2, cpu1 = time.perf_counter(), time.process_time()
        lower_wall.append(t1 - t0)
        compile_wall.append(t2 - t1)
        total_cpu.append(cpu1 - cpu0)
    compile_times = [a + b for a, b in zip(lower_wall, compile_wall)]
    jax.clear_caches()
    state = fresh_state()
    cpu0, start = time.process_time(), time.perf_counter()
    state, metrics = run_epoch(state, images_dev, labels_dev, train_step=train_step, batch_size=BATCH)
    jax.block_until_ready(metrics)
    first_call, first_call_cpu = time.perf_counter() - start, time.process_time() - cpu0

    def epoch_runner(step_fn, state):
        holder = {"state": state}

        def go():
            st, m = run_epoch(holder["state"], images_dev, labels_dev, train_step=step_fn, batch_size=BATCH)
            jax.block_until_ready((st, m))
            holder["state"] = st

        return go

    jaxmath_epoch = epoch_runner(train_step, state)
    # The engine alone: run_epoch over a loss written with jax.nn.sigmoid instead of jaxmath.activations.
    logistic_step = make_train_step(handwritten_loss, optimizer)
    logistic_epoch = epoch_runner(logistic_step, logistic_step.init(params0, key=jax.random.key(1)))
    logistic_epoch()  # compile

    # The same step scanned over batches cut once (no shuffle, no per-step gather).
    x_batches = images_dev[: steps * BATCH].reshape((steps, BATCH) + images_u8.shape[1:])
    y_batches = labels_dev[: steps * BATCH].reshape(steps, BATCH)

    @functools.partial(jax.jit, donate_argnums=(0,))
    def prebatched(state, xs, ys):
        return jax.lax.scan(lambda st, batch: train_step.pure(st, batch), state, (xs, ys))

    @functools.partial(jax.jit, donate_argnums=(0,))
    def prebatched_guarded(state, xs, ys):
        def body(carry, batch):  # run_epoch's guard: keep the last finite state
            current, first_bad = carry
            candidate, metrics = train_step.pure(current, batch)
            ok = (first_bad < 0) & jnp.isfinite(metrics["loss"]) & _tree_all_finite(candidate.params)
            current = jax.tree_util.tree_map(lambda new, old: jax.lax.select(ok, new, old), candidate, current)
            return (current, jnp.where((first_bad < 0) & ~ok, 0, first_bad)), metrics

        (state, _), metrics = jax.lax.scan(body, (state, jnp.asarray(-1, jnp.int32)), (xs, ys))
        return state, metrics

    def scan_runner(fn):
        holder = {"state": fresh_state()}

        def go():
            st, m = fn(holder["state"], x_batches, y_batches)
            jax.block_until_ready((st, m))
            holder["state"] = st

        go()  # compile
        return go

    prebatched_epoch = scan_runner(prebatched)
    guarded_epoch = scan_runner(prebatched_guarded)

    # Baselines as users write them: float32 pixels scaled once, like the examples' input pipelines.
    x_host = images_u8.reshape(n, -1).astype(np.float32) / np.float32(255)
    labels_host = labels_u8.astype(np.int32)
    x_dev, y_dev = jax.device_put(x_host), jax.device_put(labels_host)
    params_plain = lambda: jax.tree_util.tree_map(jnp.array, params0)  # noqa: E731  (plain_step donates)
    flax_style_epoch(params_plain(), x_host, labels_host, 0)  # warm-up: compiles plain_step
    jax_loop_epoch(params_plain(), x_dev, y_dev, 0)  # warm-up: the eager gathers
    numpy_epoch(params_np, images_u8, labels_u8, 0)  # warm-up: page in, BLAS threads

    # Interleave the sides so load on the shared machine hits them alike.
    try:  # OpenBLAS with one thread suffers least from other jobs' load: a second, steadier NumPy figure
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    results = {"run_epoch": [], "prebatched_scan": [], "prebatched_guarded": [], "run_epoch_logistic": [],
               "flax_style": [], "jax_loop": [], "numpy": []}
    if threadpool_limits is not None:
        results["numpy_1thread"] = []
    for r in range(args.repeats):
        results["run_epoch"] += time_calls(jaxmath_epoch, 1)
        results["prebatched_scan"] += time_calls(prebatched_epoch, 1)
        results["prebatched_guarded"] += time_calls(guarded_epoch, 1)
        results["run_epoch_logistic"] += time_calls(logistic_epoch, 1)
        p = params_plain()
        results["flax_style"] += time_calls(lambda: flax_style_epoch(p, x_host, labels_host, r), 1)
        p = params_plain()
        results["jax_loop"] += time_calls(lambda: jax_loop_epoch(p, x_dev, y_dev, r), 1)
        results["numpy"] += time_calls(lambda: numpy_epoch(params_np, images_u8, labels_u8, r), 1)
        if threadpool_limits is not None:
            with threadpool_limits(limits=1, user_api="blas"):
                results["numpy_1thread"] += time_calls(lambda: numpy_epoch(params_np, images_u8, labels_u8, r), 1)

    # Step overhead: jaxmath's jitted make_train_step (TrainState, optimizer state, metrics dict) vs bare
    # jax.jit steps doing a plain SGD update, all called from a Python loop over the same pre-made device
    # batches. "bare_same_loss" uses jaxmath's loss_fn (isolates make_train_step's own cost);
    # "bare_handwritten" also writes the loss inline with jax.nn.sigmoid (same outputs: loss, accuracy).
    batches = [(images_dev[i * BATCH:(i + 1) * BATCH], labels_dev[i * BATCH:(i + 1) * BATCH]) for i in range(16)]
    batches = jax.block_until_ready(batches)

    def bare_step_for(loss):
        @functools.partial(jax.jit, donate_argnums=(0,))
        def bare_step(params, batch):
            (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params, batch)
            params = jax.tree_util.tree_map(lambda p, g: p - LEARNING_RATE * g, params, grads)
            return params, {"loss": value, **metrics}

        return bare_step

    def loop(step_fn, init):
        carry = init()
        carry, m = step_fn(carry, batches[0])  # compile + warm-up
        jax.block_until_ready(carry)

        def go():
            nonlocal carry
            for i in range(args.step_repeats):
                carry, m = step_fn(carry, batches[i % len(batches)])
            jax.block_until_ready((carry, m))

        return go

    loops = {
        "jaxmath_step": loop(train_step, fresh_state),
        "bare_same_loss": loop(bare_step_for(loss_fn), params_plain),
        "bare_handwritten": loop(bare_step_for(handwritten_loss), params_plain),
    }
    step_results = {k: [] for k in loops}
    for _ in range(3 * args.repeats):  # short chunks, interleaved
        for k, go in loops.items():
            step_results[k] += [t / args.step_repeats for t in time_calls(go, 1)]

    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.system()}",
        "device": str(jax.devices()[0]),
        "load_average": os.getloadavg(),
        "jax": jax.__version__,
        "data": f"{n} samples, {source}",
        "epoch": {k: stats(v) for k, v in results.items()},
        "step": {k: stats(v) for k, v in step_results.items()},
        "compile_s": stats(compile_times),
        "lower_s": stats(lower_wall),
        "xla_compile_s": stats(compile_wall),
        "compile_cpu_s": stats(total_cpu),
        "first_call_s": first_call,
        "first_call_cpu_s": first_call_cpu,
    }
    raw = {**results, **step_results}

    def ratio(table, a, b):
        """Ratio of medians (the figure), of minima, and the median of paired ratios: a and b were timed back to
        back in each round, so their ratio round by round is the least disturbed by other jobs' load."""
        paired = statistics.median(x / y for x, y in zip(raw[a], raw[b]))
        return {"median": table[a]["median"] / table[b]["median"], "min": table[a]["min"] / table[b]["min"],
                "paired": paired}

    report["ratios"] = {
        "flax_style / run_epoch": ratio(report["epoch"], "flax_style", "run_epoch"),
        "jax_loop / run_epoch": ratio(report["epoch"], "jax_loop", "run_epoch"),
        "numpy / run_epoch": ratio(report["epoch"], "numpy", "run_epoch"),
        **({"numpy 1 BLAS thread / run_epoch": ratio(report["epoch"], "numpy_1thread", "run_epoch")}
           if "numpy_1thread" in report["epoch"] else {}),
        "run_epoch / prebatched_scan (shuffle + row gather + finite check)": ratio(report["epoch"], "run_epoch",
                                                                                   "prebatched_scan"),
        "run_epoch / prebatched_guarded (shuffle + row gather)": ratio(report["epoch"], "run_epoch",
                                                                       "prebatched_guarded"),
        "run_epoch / run_epoch_logistic (cost of jaxmath's sigmoid)": ratio(report["epoch"], "run_epoch",
                                                                            "run_epoch_logistic"),
        "jaxmath step / bare jit step, same loss": ratio(report["step"], "jaxmath_step", "bare_same_loss"),
        "jaxmath step / bare jit step, handwritten loss": ratio(report["step"], "jaxmath_step", "bare_handwritten"),
    }
    print(f"device {report['device']}, jax {report['jax']}, load {report['load_average']}, {report['data']}")
    print(f"784-16-16-10 sigmoid, sum of squares, SGD lr {LEARNING_RATE}, batch {BATCH}, {steps} steps/epoch")
    print(f"{'epoch':<20}{'median s':>10}{'min s':>10}{'max s':>10}{'samples/s':>12}")
    for k, v in report["epoch"].items():
        print(f"{k:<20}{v['median']:>10.3f}{v['min']:>10.3f}{v['max']:>10.3f}{n / v['median']:>12,.0f}")
    print(f"{'step (loop)':<20}{'median us':>10}{'min us':>10}{'max us':>10}")
    for k, v in report["step"].items():
        print(f"{k:<20}{v['median'] * 1e6:>10.1f}{v['min'] * 1e6:>10.1f}{v['max'] * 1e6:>10.1f}")
    c = report["compile_s"]
    lw, xw, cc = report["lower_s"], report["xla_compile_s"], report["compile_cpu_s"]
    print(f"compile of the epoch, wall: median {c['median']:.3f} s (lower {lw['median']:.3f} + XLA "
          f"{xw['median']:.3f}); process CPU: median {cc['median']:.3f} s")
    print(f"first run_epoch call incl. compile and one epoch: wall {first_call:.3f} s, CPU {first_call_cpu:.3f} s")
    for k, v in report["ratios"].items():
        print(f"{k}: {v['median']:.2f} (minima {v['min']:.2f}, paired {v['paired']:.2f})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
