"""LeNet-5 on MNIST: the full-split accuracy runs, and one training epoch against the ways users write it.

Two subcommands:

``train``: train ``lenet5.make(variant=...)`` on the full 60,000-image training split with ``run_epoch``
(Adam, batch 128, cosine-decayed learning rate) and evaluate on the 10,000 test images after every epoch:

    python benchmarks/bench_lenet.py train --variant modern --epochs 15
    python benchmarks/bench_lenet.py train --variant 1998 --epochs 20

``epoch``: one LeNet-5 (modern) epoch over the training images at batch 128, side by side in one run
(contenders interleaved, so that a shared machine's load hits them alike):

  run_epoch   jaxmath.training.run_epoch: one compiled lax.scan, uint8 data on the device, on-device shuffling
  jax_loop    the JAX MNIST example's way: float32 images in host memory, a NumPy permutation per epoch, each
              batch gathered with NumPy and fed to a jitted Adam step (written with jax.lax.conv_general_dilated)
  torch       the same network in torch eager on the CPU (nn.Module, optimizer.zero_grad/backward/step, tensor
              batches cut from a shuffled index, torch's default thread count)

and the compile apart from the warm epochs: ``lower`` (trace + lowering) and ``compile`` of run_epoch's jitted
epoch timed on their own, then the first ``run_epoch`` call (which finds the compiled executable in the
in-process cache).

    python benchmarks/bench_lenet.py epoch --repeats 3 [--samples 60000] [--batch-split auto|K] [--json out.json]

``--batch-split`` is ``lenet5.make``'s ``batch_split`` for the ``run_epoch`` contender (default "auto": on one CPU
device, 2 independent parts of 64 at batch 128); the JAX loop and torch contenders run the batch whole, as their
users write them.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import optim, training
from jaxmath.datasets import load_mnist
from jaxmath.models import lenet5

BATCH = 128
LEARNING_RATE = 1e-3


def stats(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}


# ----------------------------------------------------------------------------- full-split training


def train(args):
    x, labels = load_mnist("train" if args.samples >= 60_000 else f"train[:{args.samples}]")
    x_test, labels_test = load_mnist("test")
    x, labels = jax.device_put(x), jax.device_put(labels)
    model = lenet5.make(variant=args.variant)
    loss_fn = training.make_classifier_loss(model, num_classes=10)
    steps_per_epoch = x.shape[0] // BATCH
    schedule = optim.cosine_decay(
        init_value=args.learning_rate, decay_steps=args.epochs * steps_per_epoch, alpha=0.01
    )
    if args.weight_decay:
        optimizer = optim.adamw(learning_rate=schedule, weight_decay=args.weight_decay)
    else:
        optimizer = optim.adam(learning_rate=schedule)
    step = training.make_train_step(loss_fn, optimizer)
    state = step.init(model.init(jax.random.key(args.seed)), key=jax.random.key(args.seed + 1))
    print(f"# lenet5 variant={args.variant} params={lenet5.count_params(state.params)} train={x.shape[0]} "
          f"epochs={args.epochs} adam lr={args.learning_rate} cosine weight_decay={args.weight_decay} batch={BATCH} "
          f"seed={args.seed} "
          f"jax {jax.__version__} {platform.machine()} {jax.devices()[0].platform}", flush=True)
    records = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        state, metrics = training.run_epoch(state, x, labels, train_step=step, batch_size=BATCH)
        train_loss = float(jnp.mean(metrics["loss"]))
        seconds = time.perf_counter() - start
        result = training.evaluate(state.params, x_test, labels_test, loss_fn=loss_fn)
        record = {"epoch": epoch, "seconds": seconds, "train_loss": train_loss,
                  "test_loss": float(result["loss"]), "test_accuracy": float(result["accuracy"])}
        records.append(record)
        print(json.dumps(record), flush=True)
    warm = [r["seconds"] for r in records[1:]] or [records[0]["seconds"]]
    print(f"# final test accuracy {records[-1]['test_accuracy']:.4f}  first epoch {records[0]['seconds']:.1f} s "
          f"(with compile), median epoch {statistics.median(warm):.1f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"variant": args.variant, "records": records}, f, indent=1)


# ----------------------------------------------------------------------------- (b) the JAX MNIST example's loop


def _conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def plain_apply(params, x):
    """Modern LeNet-5 written directly with lax (as a JAX user would), same params as lenet5.init."""
    h = jnp.pad(x.reshape(-1, 28, 28, 1), ((0, 0), (2, 2), (2, 2), (0, 0)))
    h = _pool(jax.nn.relu(_conv(h, params["c1"]["w"]) + params["c1"]["b"]))
    h = _pool(jax.nn.relu(_conv(h, params["c3"]["w"]) + params["c3"]["b"]))
    h = jax.nn.relu(_conv(h, params["c5"]["w"]) + params["c5"]["b"]).reshape(-1, 120)
    h = jax.nn.relu(h @ params["f6"]["w"] + params["f6"]["b"])
    return h @ params["out"]["w"] + params["out"]["b"]


def plain_loss(params, x, labels):
    logits = plain_apply(params, x)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))


@functools.partial(jax.jit, donate_argnums=(0, 1, 2))
def plain_step(params, m, v, count, x, labels):
    loss, grads = jax.value_and_grad(plain_loss)(params, x, labels)
    count = count + 1
    m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
    v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
    c1, c2 = 1 - 0.9**count, 1 - 0.999**count
    params = jax.tree_util.tree_map(
        lambda p, m, v: p - LEARNING_RATE * (m / c1) / (jnp.sqrt(v / c2) + 1e-8), params, m, v
    )
    return params, m, v, count, loss


def jax_loop_epoch(carry, x_host, labels_host, rng):
    params, m, v, count = carry
    order = rng.permutation(x_host.shape[0])
    for i in range(x_host.shape[0] // BATCH):
        idx = order[i * BATCH:(i + 1) * BATCH]
        params, m, v, count, loss = plain_step(params, m, v, count, x_host[idx], labels_host[idx])
    jax.block_until_ready(params)
    return params, m, v, count


# ----------------------------------------------------------------------------- (c) torch eager


def torch_setup(params):
    import torch
    from torch import nn

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 6, 5, padding=2)
            self.c3 = nn.Conv2d(6, 16, 5)
            self.c5 = nn.Conv2d(16, 120, 5)
            self.f6 = nn.Linear(120, 84)
            self.out = nn.Linear(84, 10)

        def forward(self, x):
            x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
            x = nn.functional.max_pool2d(torch.relu(self.c3(x)), 2)
            x = torch.relu(self.c5(x)).flatten(1)
            return self.out(torch.relu(self.f6(x)))

    net = LeNet5()
    with torch.no_grad():  # same starting weights as the JAX contenders
        for name in ("c1", "c3", "c5"):
            getattr(net, name).weight.copy_(torch.from_numpy(np.array(params[name]["w"]).transpose(3, 2, 0, 1).copy()))
        for name in ("f6", "out"):
            getattr(net, name).weight.copy_(torch.from_numpy(np.array(params[name]["w"]).T.copy()))
        for name in ("c1", "c3", "c5", "f6", "out"):
            getattr(net, name).bias.copy_(torch.from_numpy(np.array(params[name]["b"])))
    return net, torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)


def torch_epoch(net, optimizer, x_t, labels_t):
    import torch

    order = torch.randperm(x_t.shape[0])
    for i in range(x_t.shape[0] // BATCH):
        idx = order[i * BATCH:(i + 1) * BATCH]
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x_t[idx]), labels_t[idx])
        loss.backward()
        optimizer.step()
    return loss.item()


# ----------------------------------------------------------------------------- the race


def epoch_bench(args):
    import torch

    images, labels = load_mnist("train" if args.samples >= 60_000 else f"train[:{args.samples}]")
    images, labels = np.asarray(images), np.asarray(labels)
    model = lenet5.make(variant="modern", batch_split=args.batch_split)
    params = model.init(jax.random.key(0))
    loss_fn = training.make_classifier_loss(model, num_classes=10)
    step = training.make_train_step(loss_fn, optim.adam(learning_rate=LEARNING_RATE))
    state = step.init(params, key=jax.random.key(1))
    x_dev, labels_dev = jax.device_put(images), jax.device_put(labels)

    from jaxmath.training.epoch import _run_epoch_donating  # the jitted epoch run_epoch calls

    start, cpu_start = time.perf_counter(), time.process_time()
    lowered = _run_epoch_donating.lower(step, BATCH, state, x_dev, labels_dev)
    lower_s, lower_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    start, cpu_start = time.perf_counter(), time.process_time()
    lowered.compile()
    compile_s, compile_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    start = time.perf_counter()
    state, metrics = training.run_epoch(state, x_dev, labels_dev, train_step=step, batch_size=BATCH)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - start

    x_host = (images.astype(np.float32) / 255.0).reshape(-1, 784)
    labels_host = labels.astype(np.int32)
    rng = np.random.default_rng(0)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    carry = (jax.tree_util.tree_map(jnp.array, params), zeros, jax.tree_util.tree_map(jnp.zeros_like, params),
             jnp.asarray(0.0, jnp.float32))
    start = time.perf_counter()
    carry = jax_loop_epoch(carry, x_host, labels_host, rng)
    jax_loop_first = time.perf_counter() - start

    net, torch_opt = torch_setup(params)
    x_t = torch.from_numpy(x_host.reshape(-1, 1, 28, 28))
    labels_t = torch.from_numpy(labels_host.astype(np.int64))
    torch_epoch(net, torch_opt, x_t[: 4 * BATCH], labels_t[: 4 * BATCH])  # warm-up

    times = {"run_epoch": [], "jax_loop": [], "torch": []}
    # Process CPU seconds (all threads) beside the wall clock: on a loaded machine a contender's wall time
    # also counts the time its threads wait for a core, which hurts torch's OpenMP barriers most.
    cpu = {k: [] for k in times}

    def timed(name, fn):
        time.sleep(0.2)  # let the previous contender's spinning threads go to sleep
        start, cpu_start = time.perf_counter(), time.process_time()
        out = fn()
        times[name].append(time.perf_counter() - start)
        cpu[name].append(time.process_time() - cpu_start)
        return out

    for _ in range(args.repeats):
        state, metrics = timed("run_epoch", lambda: jax.block_until_ready(
            training.run_epoch(state, x_dev, labels_dev, train_step=step, batch_size=BATCH)))
        carry = timed("jax_loop", lambda: jax_loop_epoch(carry, x_host, labels_host, rng))
        timed("torch", lambda: torch_epoch(net, torch_opt, x_t, labels_t))
        print({k: round(v[-1], 2) for k, v in times.items()}, {f"{k} cpu": round(v[-1], 2) for k, v in cpu.items()},
              flush=True)

    result = {
        "jax": jax.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "device": str(jax.devices()[0]), "samples": int(images.shape[0]), "batch": BATCH, "repeats": args.repeats,
        "batch_split": args.batch_split, "split_sizes": list(lenet5.split_sizes(BATCH, args.batch_split)),
        "run_epoch_lower_s": lower_s, "run_epoch_compile_s": compile_s,
        "run_epoch_lower_cpu_s": lower_cpu_s, "run_epoch_compile_cpu_s": compile_cpu_s,
        "run_epoch_first_call_s": first, "jax_loop_first_epoch_s": jax_loop_first,
        "epoch_s": {k: stats(v) for k, v in times.items()},
        "epoch_process_cpu_s": {k: stats(v) for k, v in cpu.items()},
    }
    med = {k: result["epoch_s"][k]["median"] for k in times}
    result["speedup_vs_torch"] = med["torch"] / med["run_epoch"]
    result["speedup_vs_jax_loop"] = med["jax_loop"] / med["run_epoch"]
    print(f"epoch over {images.shape[0]} images, batch {BATCH}, median of {args.repeats} "
          f"(run_epoch's network runs each batch as parts of {result['split_sizes']}):")
    for k in times:
        s = result["epoch_s"][k]
        c = result["epoch_process_cpu_s"][k]
        print(f"  {k:10s} {s['median']:7.2f} s  (min {s['min']:.2f}, max {s['max']:.2f})   "
              f"process CPU {c['median']:.2f} s")
    print(f"  run_epoch first epoch compile: lower {lower_s:.2f} s + compile {compile_s:.2f} s = "
          f"{lower_s + compile_s:.2f} s (target 3 s; process CPU {lower_cpu_s + compile_cpu_s:.2f} s); "
          f"first call after it {first:.2f} s; "
          f"torch threads {torch.get_num_threads()}")
    print(f"  speed-up vs torch eager {result['speedup_vs_torch']:.2f}x (target 1.2x), "
          f"vs plain-JAX loop {result['speedup_vs_jax_loop']:.2f}x (target 1.3x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


def _batch_split(text):
    return text if text == "auto" else int(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train on the full split, evaluate on test every epoch")
    p_train.add_argument("--variant", choices=lenet5.VARIANTS, default="modern")
    p_train.add_argument("--epochs", type=int, default=15)
    p_train.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    p_train.add_argument("--samples", type=int, default=60_000)
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument("--weight-decay", type=float, default=0.0, help="> 0: AdamW with this decoupled decay")
    p_train.add_argument("--json", default=None)
    p_epoch = sub.add_parser("epoch", help="one epoch: run_epoch vs plain-JAX loop vs torch eager")
    p_epoch.add_argument("--repeats", type=int, default=3)
    p_epoch.add_argument("--samples", type=int, default=60_000)
    p_epoch.add_argument("--batch-split", type=_batch_split, default="auto",
                         help='lenet5.make\'s batch_split for run_epoch: "auto" (default) or an int >= 1')
    p_epoch.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    (train if args.command == "train" else epoch_bench)(args)


if __name__ == "__main__":
    sys.exit(main())
