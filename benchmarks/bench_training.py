"""Issue 5 benchmark: one MNIST epoch with ``run_epoch`` vs the usual ways of writing it, in one run.

The network of the notes, 784-16-16-10 sigmoid, sum-of-squares loss, SGD (lr 1.0), batch 128, one epoch
over 60,000 MNIST-shaped samples (the shared 10k test split tiled 6x, or random pixels without it):

  run_epoch      jaxmath.training.run_epoch: one compiled lax.scan, uint8 data on the device,
                 on-device shuffling, metrics as scan outputs
  run_epoch_logistic   the same engine over a loss written with jax.nn.sigmoid (lax.logistic) instead of
                 jaxmath.activations.sigmoid: separates the engine's cost from the activation's
  jax loop       the usual plain-JAX way: float32 data on the device, host-side permutation,
                 a Python loop calling a jitted step on x[idx], y[idx]
  numpy          a hand-written NumPy backprop loop (the delta rule), float32 (default OpenBLAS threads,
                 and again limited to one thread when threadpoolctl is installed)

then the per-step cost of jaxmath's jitted ``make_train_step`` called from a Python loop vs bare ``jax.jit``
SGD steps (on jaxmath's loss function, and on a loss written inline with ``jax.nn.sigmoid``), on the same pre-made device batches, and the compile time of
the epoch (``jax.jit(...).lower(...).compile()``, measured apart).

Usage: ``python benchmarks/bench_training.py [--repeats 7] [--samples 60000] [--json out.json]``
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
from jaxmath.training import TrainState, epoch_core, make_classifier_loss, make_train_step, run_epoch

SIZES = (784, 16, 16, 10)
BATCH = 128
LEARNING_RATE = 1.0


def stats(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}


def load_data(samples, seed):
    """uint8 (samples, 28, 28) images and uint8 labels: the shared test split tiled, else random pixels."""
    try:
        from jaxmath.datasets import load_mnist

        images, labels = load_mnist("test", mirrors=())
        source = "MNIST test split tiled"
    except (FileNotFoundError, ValueError):
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(10_000, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(10_000,), dtype=np.uint8)
        source = "random MNIST-shaped pixels"
    reps = -(-samples // len(images))
    return np.tile(images, (reps, 1, 1))[:samples], np.tile(labels, reps)[:samples], source


# ----------------------------------------------------------------------------- (a) usual plain JAX


def plain_loss(params, x, y):
    a = x
    for w, b in params:
        a = jax.nn.sigmoid(a @ w + b)
    return jnp.mean(jnp.sum((a - y) ** 2, axis=-1))


@jax.jit
def plain_step(params, x, y):
    loss, grads = jax.value_and_grad(plain_loss)(params, x, y)
    params = jax.tree_util.tree_map(lambda p, g: p - LEARNING_RATE * g, params, grads)
    return params, loss


def plain_jax_epoch(params, x_f32, y_onehot, seed):
    n = x_f32.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    losses = []
    for i in range(n // BATCH):
        idx = perm[i * BATCH:(i + 1) * BATCH]
        params, loss = plain_step(params, x_f32[idx], y_onehot[idx])
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
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--step-repeats", type=int, default=100, help="steps per timing of the step loop")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    images_u8, labels_u8, source = load_data(args.samples, seed=0)
    n = len(images_u8)
    steps = n // BATCH
    key = jax.random.PRNGKey(0)
    params0 = mlp.init(key, SIZES, scheme="glorot", dtype=jnp.float32)
    params_np = [(np.asarray(w), np.asarray(b)) for w, b in params0]
    optimizer = optim.sgd(learning_rate=LEARNING_RATE)

    apply_fn = functools.partial(mlp.apply, activation="sigmoid", output="sigmoid")
    loss_fn = make_classifier_loss(apply_fn, num_classes=10, loss="sum_of_squares")
    train_step = make_train_step(loss_fn, optimizer)

    images_dev = jax.device_put(images_u8)
    labels_dev = jax.device_put(labels_u8)

    def fresh_state():
        return TrainState.create(jax.tree_util.tree_map(jnp.array, params0), optimizer, key=jnp.array(key))

    # Compile time of the epoch, apart: trace + lower, then compile, of the same jitted function run_epoch
    # calls, from cold caches. Wall time and process CPU time: on a machine shared with other jobs the CPU
    # time is what the compile costs on an idle one (XLA's CPU compile is essentially single-threaded).
    epoch_jit = jax.jit(epoch_core, static_argnums=(0, 1), donate_argnums=(2,))
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
    logistic_epoch = epoch_runner(make_train_step(handwritten_loss, optimizer), fresh_state())
    logistic_epoch()  # compile

    x_f32 = jnp.asarray(images_u8.reshape(n, -1), jnp.float32) / 255
    y_onehot = jax.nn.one_hot(jnp.asarray(labels_u8), 10, dtype=jnp.float32)
    params_plain = jax.tree_util.tree_map(jnp.array, params0)
    plain_jax_epoch(params_plain, x_f32, y_onehot, 0)  # warm-up: compiles plain_step, caches the gathers
    numpy_epoch(params_np, images_u8, labels_u8, 0)  # warm-up: page in, BLAS threads

    # Interleave the three so load on the shared machine hits them alike.
    try:  # OpenBLAS with one thread suffers least from other jobs' load: a second, steadier NumPy figure
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    results = {"run_epoch": [], "run_epoch_logistic": [], "jax_loop": [], "numpy": []}
    if threadpool_limits is not None:
        results["numpy_1thread"] = []
    for r in range(args.repeats):
        results["run_epoch"] += time_calls(jaxmath_epoch, 1)
        results["run_epoch_logistic"] += time_calls(logistic_epoch, 1)
        results["jax_loop"] += time_calls(lambda: plain_jax_epoch(params_plain, x_f32, y_onehot, r), 1)
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

    fresh_params = lambda: jax.tree_util.tree_map(jnp.array, params0)  # noqa: E731
    loops = {
        "jaxmath_step": loop(train_step, fresh_state),
        "bare_same_loss": loop(bare_step_for(loss_fn), fresh_params),
        "bare_handwritten": loop(bare_step_for(handwritten_loss), fresh_params),
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
        "jax_loop / run_epoch (target >= 1.5)": ratio(report["epoch"], "jax_loop", "run_epoch"),
        "numpy / run_epoch (target >= 1.2)": ratio(report["epoch"], "numpy", "run_epoch"),
        "run_epoch / run_epoch_logistic (cost of jaxmath's sigmoid)": ratio(report["epoch"], "run_epoch",
                                                                            "run_epoch_logistic"),
        **({"numpy 1 BLAS thread / run_epoch": ratio(report["epoch"], "numpy_1thread", "run_epoch")}
           if "numpy_1thread" in report["epoch"] else {}),
        "jaxmath step / bare jit step, same loss (target <= 1.1)": ratio(report["step"], "jaxmath_step",
                                                                         "bare_same_loss"),
        "jaxmath step / bare jit step, handwritten loss": ratio(report["step"], "jaxmath_step", "bare_handwritten"),
    }
    print(f"device {report['device']}, jax {report['jax']}, load {report['load_average']}, {report['data']}")
    print(f"784-16-16-10 sigmoid, sum of squares, SGD lr {LEARNING_RATE}, batch {BATCH}, {steps} steps/epoch")
    print(f"{'epoch':<20}{'median s':>10}{'min s':>10}{'max s':>10}{'samples/s':>12}")
    for k, v in report["epoch"].items():
        print(f"{k:<20}{v['median']:>10.3f}{v['min']:>10.3f}{v['max']:>10.3f}{n / v['median']:>12,.0f}")
    print(f"{'step (loop)':<18}{'median us':>10}{'min us':>10}{'max us':>10}")
    for k, v in report["step"].items():
        print(f"{k:<18}{v['median'] * 1e6:>10.1f}{v['min'] * 1e6:>10.1f}{v['max'] * 1e6:>10.1f}")
    c = report["compile_s"]
    lw, xw, cc = report["lower_s"], report["xla_compile_s"], report["compile_cpu_s"]
    print(f"compile of the epoch (trace+lower+compile), wall: median {c['median']:.3f} s (min {c['min']:.3f}, "
          f"max {c['max']:.3f}) = lower {lw['median']:.3f} + XLA compile {xw['median']:.3f}; "
          f"process CPU: median {cc['median']:.3f} s (min {cc['min']:.3f}, max {cc['max']:.3f})")
    print(f"first run_epoch call incl. compile and one epoch: wall {first_call:.3f} s, CPU {first_call_cpu:.3f} s")
    for k, v in report["ratios"].items():
        print(f"{k}: {v['median']:.2f} (ratio of minima {v['min']:.2f}, median of paired ratios {v['paired']:.2f})")
    print(f"compile s (target <= 1): wall {c['median']:.2f}, process CPU {cc['median']:.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
