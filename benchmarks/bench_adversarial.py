"""PGD-40 on LeNet-5: jitted attack vs a Python loop of jitted steps, one vmapped ε curve vs eight runs, torch.

    python benchmarks/bench_adversarial.py --samples 10000 --repeats 3 --json /tmp/bench_adversarial.json
    python benchmarks/bench_adversarial.py --samples 500 --repeats 2        # smoke run
    python benchmarks/bench_adversarial.py --samples 10000 --contenders pgd,loop,torch   # the per-attack ratios

Contenders, timed interleaved in one run (repeat r runs every contender once, so load changes on a shared
machine hit them alike), each over the first ``--samples`` test images in batches of ``--batch-size``:

  (a) ``pgd``: ``adversarial.pgd`` (one compiled ``lax.fori_loop`` per batch) against ``loop``: the same
      attack as a Python loop of 40 calls to one jitted PGD step (random start, gradient sign step,
      projection, clip), the way cleverhans' JAX PGD drives its steps from Python;
  (b) ``curve_vmap``: ``adversarial.robust_accuracy`` over 8 radii, vmapped (``vectorize_eps=True``: one
      program on 8·B rows), and ``curve_map``: the same with ``vectorize_eps=False`` (``lax.map`` over the
      radii in one program, the CPU default), against ``curve_8_runs``: eight ``robust_accuracy`` calls with
      one radius each (one compile, ε traced);
  (c) ``torch``: PGD-40 written as torch users write it (nn.Module with the same weights,
      ``torch.autograd.grad`` in a Python loop) on torch's CPU backend.

Warm-up first: the first call of each contender (compile + run) is reported as ``first_call_s``; the timed
repeats follow, with ``block_until_ready``; the median and the min/max spread are reported, and the ratios of
the medians. Weights: ``--model DIR`` (saved by ``jaxmath train cnn``) or a random LeNet-5 (the attack's cost
does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import adversarial, models
from jaxmath.datasets import load_mnist
from jaxmath.models import lenet5

EPS, STEP_SIZE, NUM_STEPS = 0.3, 0.01, 40
CURVE = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35)


def _batches(n, batch_size):
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def make_jax_contenders(model, params, x, labels, batch_size):
    apply_fn = model.apply
    key = jax.random.key(0)
    spans = _batches(x.shape[0], batch_size)

    def pgd_all():
        out = [adversarial.pgd(apply_fn, params, x[s:e], labels[s:e], jax.random.fold_in(key, b), eps=EPS,
                               step_size=STEP_SIZE, num_steps=NUM_STEPS) for b, (s, e) in enumerate(spans)]
        return jax.block_until_ready(out)

    def objective(z, y):
        return jnp.sum(adversarial.cross_entropy(apply_fn(params, z), y))

    @jax.jit
    def start(x0, k):
        return jnp.clip(x0 + EPS * jax.random.uniform(k, x0.shape, x0.dtype, -1.0, 1.0), 0.0, 1.0)

    @jax.jit
    def one_step(x_adv, x0, y):
        g = jax.grad(objective)(x_adv, y)
        x_adv = jnp.clip(x_adv + STEP_SIZE * jnp.sign(g), x0 - EPS, x0 + EPS)
        return jnp.clip(x_adv, 0.0, 1.0)

    def loop_all():
        out = []
        for b, (s, e) in enumerate(spans):
            x0, y = x[s:e], labels[s:e]
            x_adv = start(x0, jax.random.fold_in(key, b))
            for _ in range(NUM_STEPS):  # one dispatch per step, as a Python-driven attack does
                x_adv = one_step(x_adv, x0, y)
            out.append(x_adv)
        return jax.block_until_ready(out)

    def curve(vectorize_eps):
        return adversarial.robust_accuracy(apply_fn, params, x, labels, key, eps=list(CURVE), step_size=STEP_SIZE,
                                           num_steps=NUM_STEPS, batch_size=batch_size,
                                           vectorize_eps=vectorize_eps).accuracy

    def curve_8_runs():
        return np.concatenate([
            adversarial.robust_accuracy(apply_fn, params, x, labels, key, eps=[e], step_size=STEP_SIZE,
                                        num_steps=NUM_STEPS, batch_size=batch_size).accuracy for e in CURVE])

    return {"pgd": pgd_all, "loop": loop_all, "curve_vmap": lambda: curve(True), "curve_map": lambda: curve(False),
            "curve_8_runs": curve_8_runs}


def make_torch_contender(params, x, labels, batch_size):
    import torch
    import torch.nn.functional as F

    class LeNet5(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(1, 6, 5)
            self.c3 = torch.nn.Conv2d(6, 16, 5)
            self.c5 = torch.nn.Conv2d(16, 120, 5)
            self.f6 = torch.nn.Linear(120, 84)
            self.out = torch.nn.Linear(84, 10)

        def forward(self, z):
            h = F.pad(z.reshape(-1, 1, 28, 28), (2, 2, 2, 2))
            h = F.max_pool2d(F.relu(self.c1(h)), 2)
            h = F.max_pool2d(F.relu(self.c3(h)), 2)
            h = F.relu(self.c5(h)).flatten(1)
            return self.out(F.relu(self.f6(h)))

    net = LeNet5().eval()
    with torch.no_grad():
        for name in ("c1", "c3", "c5"):  # HWIO → OIHW
            w = np.asarray(params[name]["w"]).transpose(3, 2, 0, 1).copy()
            getattr(net, name).weight.copy_(torch.from_numpy(w))
            getattr(net, name).bias.copy_(torch.from_numpy(np.array(params[name]["b"])))
        for name in ("f6", "out"):
            getattr(net, name).weight.copy_(torch.from_numpy(np.array(params[name]["w"]).T.copy()))
            getattr(net, name).bias.copy_(torch.from_numpy(np.array(params[name]["b"])))
    for p in net.parameters():
        p.requires_grad_(False)
    xt = torch.from_numpy(np.array(x))
    yt = torch.from_numpy(np.array(labels)).long()
    spans = _batches(xt.shape[0], batch_size)

    def torch_pgd():
        gen = torch.Generator().manual_seed(0)
        out = []
        for s, e in spans:
            x0, y = xt[s:e], yt[s:e]
            x_adv = (x0 + EPS * (2 * torch.rand(x0.shape, generator=gen) - 1)).clamp(0, 1)
            for _ in range(NUM_STEPS):
                x_adv.requires_grad_(True)
                loss = F.cross_entropy(net(x_adv), y, reduction="sum")
                (grad,) = torch.autograd.grad(loss, x_adv)
                x_adv = x_adv.detach() + STEP_SIZE * grad.sign()
                x_adv = torch.min(torch.max(x_adv, x0 - EPS), x0 + EPS).clamp(0, 1)
            out.append(x_adv)
        return out

    return torch_pgd, net, torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=10000, help="test images attacked (first N)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="directory saved by jaxmath train cnn (default: random LeNet-5)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--contenders", help="comma-separated subset to run (default: all), e.g. pgd,loop,torch")
    args = parser.parse_args()

    x, labels = load_mnist(f"test[:{args.samples}]")
    x = jnp.asarray(x, jnp.float32).reshape(-1, 28, 28) / jnp.asarray(255, jnp.float32)
    labels = jnp.asarray(labels, jnp.int32)
    if args.model:
        model, params, _ = models.load(args.model)
    else:
        model = lenet5.make()
        params = model.init(jax.random.key(0))
    contenders = make_jax_contenders(model, params, x, labels, args.batch_size)
    if not args.no_torch:
        torch_pgd, net, torch = make_torch_contender(params, x, labels, args.batch_size)
        with torch.no_grad():  # same network: the copied weights give jaxmath's logits
            ref = net(torch.from_numpy(np.array(x[:64]))).numpy()
        np.testing.assert_allclose(ref, np.asarray(model.apply(params, x[:64])), rtol=1e-4, atol=1e-4)
        contenders["torch"] = torch_pgd
    if args.contenders:
        wanted = args.contenders.split(",")
        unknown = sorted(set(wanted) - set(contenders))
        if unknown:
            parser.error(f"--contenders: unknown {', '.join(unknown)}; choose from {', '.join(contenders)}")
        contenders = {name: fn for name, fn in contenders.items() if name in wanted}

    first = {}
    for name, fn in contenders.items():
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
        print(f"warm-up {name:13s} {first[name]:8.2f} s (compile + run)", flush=True)
    times = {name: [] for name in contenders}
    for r in range(args.repeats):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)

    rows = {name: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v), "first_call_s": first[name],
                   "compile_s_estimate": first[name] - statistics.median(v)} for name, v in times.items()}
    med = {k: v["median_s"] for k, v in rows.items()}
    pairs = {"loop_over_pgd": ("loop", "pgd"), "curve_8_runs_over_vmap": ("curve_8_runs", "curve_vmap"),
             "curve_8_runs_over_map": ("curve_8_runs", "curve_map"), "torch_over_pgd": ("torch", "pgd")}
    ratios = {name: med[a] / med[b] for name, (a, b) in pairs.items() if a in med and b in med}
    targets = {"loop_over_pgd": 2.0, "curve_8_runs_over_vmap": 1.5}

    print(f"\nPGD-40 (eps {EPS}, step {STEP_SIZE}, random start) on LeNet-5, {args.samples} test images, "
          f"batches of {args.batch_size}, {args.repeats} repeats")
    print(f"{'contender':14s} {'median s':>9s} {'min s':>8s} {'max s':>8s} {'1st call s':>10s}")
    for name, row in rows.items():
        print(f"{name:14s} {row['median_s']:9.2f} {row['min_s']:8.2f} {row['max_s']:8.2f} {row['first_call_s']:10.2f}")
    for name, value in ratios.items():
        target = targets.get(name)
        verdict = "" if target is None else f"  (target >= {target}: {'met' if value >= target else 'MISSED'})"
        print(f"{name:24s} {value:6.2f}x{verdict}")
    if args.json:
        out = {"samples": args.samples, "batch_size": args.batch_size, "repeats": args.repeats, "eps": EPS,
               "step_size": STEP_SIZE, "num_steps": NUM_STEPS, "curve": list(CURVE), "contenders": rows,
               "ratios": ratios, "targets": targets, "jax": jax.__version__, "machine": platform.machine(),
               "cpu_count": __import__("os").cpu_count(),
               "torch": None if args.no_torch else torch.__version__, "torch_threads": None if args.no_torch
               else torch.get_num_threads()}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
