"""Data-parallel scaling: training samples/s against the device count (1, 2, 4, 8 simulated CPU devices).

    python benchmarks/bench_scaling.py [--rounds 2] [--epochs 2] [--samples 12000] [--lenet-samples 2048]
                                       [--counts 1,2,4,8]

Each device count runs in its own subprocess (``XLA_FLAGS=--xla_force_host_platform_device_count=D`` only
takes effect before JAX starts), and the rounds go 1, 2, 4, 8, 1, 2, 4, 8, ... so a burst of other load hits
every count alike; the table keeps each count's median epoch over all rounds.

Two ways to run one epoch data-parallel, both with the unchanged ``training.make_train_step``:
  * ``scan``: the whole epoch is one compiled ``lax.scan`` over the steps, the data sharded on its batch axis
    (the compiled-epoch path of ``training.run_epoch``);
  * ``host``: one ``parallel.data_parallel`` step per batch, each global batch placed from host memory with
    ``shard_batch`` (how JAX's k8s MNIST example and ``devices.distributed.train_epoch`` feed it).

Read the numbers honestly: on a CPU the "devices" are threads of one process sharing the same cores. With
2 cores, more than 2 devices cannot add compute; what the table measures is the cost of partitioning (the
gradient all-reduce, per-device launch overhead) on top of the same arithmetic, not a speedup that real chips
would show. Run it on a multi-GPU machine or a TPU v5e-8 / v2-8 (``--counts 1,2,4,8``, real devices, no
XLA_FLAGS needed) for the real curve.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import numpy as np
import jax, jax.numpy as jnp
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec as P
from jaxmath import optim, training
from jaxmath.datasets import load_mnist
from jaxmath.devices import parallel
from jaxmath.models import lenet5, mlp

devices, samples, epochs, lenet_samples = (int(a) for a in sys.argv[1:5])
assert len(jax.devices()) == devices, jax.devices()
jax.config.update("jax_threefry_partitionable", True)
x_all, labels_all = load_mnist(f"train[:{samples}]")
mesh = parallel.make_mesh()
rep, rows = parallel.replicated_sharding(mesh), NamedSharding(mesh, P(None, "batch"))
out = {}
workloads = [("mlp 784-16-16-10", mlp.make((784, 16, 16, 10), activation="sigmoid"), 256, samples)]
if lenet_samples:
    workloads.append(("lenet5 modern", lenet5.make(variant="modern"), 256, min(samples, lenet_samples)))
for name, model, batch, n in workloads:
    steps = n // batch
    x = x_all[:steps * batch].reshape(steps, batch, 28, 28)
    labels = labels_all[:steps * batch].reshape(steps, batch)
    step = training.make_train_step(training.make_classifier_loss(model, num_classes=10),
                                    optim.sgd(learning_rate=0.1), donate=False)
    state0 = parallel.replicate(step.init(model.init(jax.random.key(0)), key=jax.random.key(1)), mesh)

    def epoch(state, xs, ys):
        return lax.scan(lambda s, b: step.pure(s, b), state, (xs, ys))

    scan = jax.jit(epoch, in_shardings=(rep, rows, rows), out_shardings=(rep, rep))
    xs, ys = jax.device_put((x, labels), rows)
    t0 = time.perf_counter(); jax.block_until_ready(scan(state0, xs, ys)); compile_scan = time.perf_counter() - t0
    dp = parallel.data_parallel(step, mesh)

    def host_epoch(state):
        for i in range(steps):
            state, metrics = dp(state, parallel.shard_batch((x[i], labels[i]), mesh))
        return jax.block_until_ready(state)

    host_epoch(state0)  # compile and warm up
    times = {"scan": [], "host": []}
    for _ in range(epochs):  # interleaved, so load hits both alike
        t0 = time.perf_counter(); jax.block_until_ready(scan(state0, xs, ys))
        times["scan"].append(time.perf_counter() - t0)
        t0 = time.perf_counter(); host_epoch(state0); times["host"].append(time.perf_counter() - t0)
    out[name] = {"samples": steps * batch, "batch": batch, "compile_scan_s": compile_scan,
                 **{k: v for k, v in times.items()}}
print("RESULT " + json.dumps(out))
"""


def run_child(devices: int, samples: int, epochs: int, lenet_samples: int) -> dict:
    env = dict(os.environ)
    # XLA:CPU aborts the process when the simulated devices' threads do not all reach a collective within
    # 40 s; on a heavily shared machine a starved thread can take that long, so the abort waits longer.
    flags = f"--xla_force_host_platform_device_count={devices} --xla_cpu_collective_call_terminate_timeout_seconds=600"
    env.update(XLA_FLAGS=flags, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", CHILD, str(devices), str(samples), str(epochs), str(lenet_samples)],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{devices} devices failed:\n{done.stderr[-3000:]}")
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per mode per round")
    parser.add_argument("--samples", type=int, default=12000)
    parser.add_argument("--counts", default="1,2,4,8")
    parser.add_argument("--lenet-samples", type=int, default=2048, help="LeNet-5 epoch size (0: no LeNet-5)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    import jax
    import jaxlib

    load = os.getloadavg()
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.machine()}, "
          f"{os.cpu_count()} CPU cores; jax {jax.__version__}, jaxlib {jaxlib.__version__}")
    print(f"- load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"- command: python benchmarks/bench_scaling.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"- simulated CPU devices share the {os.cpu_count()} cores: the table shows the cost of "
          "partitioning, not real-chip scaling")
    results: dict[int, list[dict]] = {c: [] for c in counts}
    for _ in range(args.rounds):
        for c in counts:
            results[c].append(run_child(c, args.samples, args.epochs, args.lenet_samples))
    print()
    print("| workload | devices | samples/epoch | scan epoch (median) | scan samples/s | host-fed epoch | "
          "host samples/s | scan vs 1 device |")
    print("|---|---|---|---|---|---|---|---|")
    names = list(results[counts[0]][0])
    for name in names:
        base = None
        for c in counts:
            per = [r[name] for r in results[c]]
            n = per[0]["samples"]
            scan = statistics.median(t for r in per for t in r["scan"])
            host = statistics.median(t for r in per for t in r["host"])
            base = base or scan
            print(f"| {name} | {c} | {n} | {scan * 1e3:.1f} ms | {n / scan:,.0f} | {host * 1e3:.1f} ms | "
                  f"{n / host:,.0f} | {base / scan:.2f}x |")
    print(f"\nload average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
