"""Benchmark: conv2d forward + backward, im2col vs XLA's convolution vs torch, side by side in one run.

    python benchmarks/bench_conv.py [--repeats 7] [--large-batch 32]

Three layers, float32, NHWC/HWIO for JAX and NCHW/OIHW for torch (each as its users write it):

* LeNet C1: batch 128, 32×32×1 → 6 maps, 5×5, VALID (the 1998 net's padded input; 28×28 with padding 2 is the
  same work);
* LeNet C3: batch 128, 14×14×6 → 16 maps, 5×5, VALID;
* a larger layer: 28×28×64 → 64, 3×3, SAME, at ``--large-batch`` images.

"Forward + backward" is y = conv(x, w) and the vector-Jacobian product with a fixed δ: (y, ∂/∂x, ∂/∂w),
which is what a training step needs. Contenders:

* ``xla``: ``jax.vjp`` of ``conv2d(method="xla")`` (``lax.conv_general_dilated`` and its transposes), jitted;
* ``im2col``: ``jax.vjp`` of ``conv2d(method="im2col")``, jitted (below 32 output channels its custom VJP, the
  hand backprop in the transposed layout; from 32 up, autodiff of the patch matmul);
* ``im2col+hand``: ``conv2d(method="im2col")`` then ``conv2d_backprop`` (Pᵀδ, col2im(δWᵀ)), jitted;
* ``direct``: ``jax.vjp`` of ``conv2d(method="direct")`` (one slice and small matmul per tap), jitted;
* ``torch``: ``torch.nn.functional.conv2d`` forward, ``y.backward(δ)`` (eager, torch's default thread count).

The forward pass alone (``xla fwd``, ``im2col fwd``, ``torch fwd`` under ``no_grad``) runs in the same rounds, so
the table shows how much of each total is the backward pass.

Compile time is measured apart (``.lower().compile()``); then one warm-up call each, then ``--repeats`` rounds
in which every contender runs once (interleaved, so load bursts on a shared machine hit all alike), each call
ending in ``block_until_ready`` (torch is synchronous on CPU). Reported: median (min–max) in ms, and the ratio
to ``xla`` (forward-only rows: to ``xla fwd``). Each contender's outputs are checked against ``xla`` first.
"""

from __future__ import annotations

import argparse
import functools
import platform

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import conv as C
from jaxmath.bench.timing import compile_fn, measure_interleaved


def layers(large_batch):
    # name, x shape (NHWC), w shape (HWIO), padding
    return [
        ("LeNet C1 128x32x32x1 -> 6, 5x5", (128, 32, 32, 1), (5, 5, 1, 6), "VALID"),
        ("LeNet C3 128x14x14x6 -> 16, 5x5", (128, 14, 14, 6), (5, 5, 6, 16), "VALID"),
        (f"{large_batch}x28x28x64 -> 64, 3x3 SAME", (large_batch, 28, 28, 64), (3, 3, 64, 64), "SAME"),
    ]


def jax_contenders(padding):
    def by_autodiff(method):
        def fwd_bwd(x, w, delta):
            y, vjp = jax.vjp(functools.partial(C.conv2d, padding=padding, method=method), x, w)
            return (y, *vjp(delta))

        return fwd_bwd

    def by_hand(x, w, delta):
        y = C.conv2d(x, w, padding=padding, method="im2col")
        return (y, *C.conv2d_backprop(x, w, delta, padding=padding))

    return {"xla": by_autodiff("xla"), "im2col": by_autodiff("im2col"), "im2col+hand": by_hand,
            "direct": by_autodiff("direct")}


def torch_contender(torch, x, w, delta, padding):
    xt = torch.tensor(np.asarray(x).transpose(0, 3, 1, 2).copy(), requires_grad=True)
    wt = torch.tensor(np.asarray(w).transpose(3, 2, 0, 1).copy(), requires_grad=True)
    dt = torch.tensor(np.asarray(delta).transpose(0, 3, 1, 2).copy())
    pad = "same" if padding == "SAME" else 0

    def forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, padding=pad)

    def run():
        xt.grad = None
        wt.grad = None
        y = torch.nn.functional.conv2d(xt, wt, padding=pad)
        y.backward(dt)
        return y, xt.grad, wt.grad

    def as_nhwc():
        y, gx, gw = run()
        return (y.detach().numpy().transpose(0, 2, 3, 1), gx.numpy().transpose(0, 2, 3, 1),
                gw.numpy().transpose(2, 3, 1, 0))

    return run, as_nhwc, forward


def bench_layer(name, xs, ws, padding, repeats, torch):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=xs), jnp.float32)
    w = jnp.asarray(rng.normal(size=ws) / np.sqrt(np.prod(ws[:3])), jnp.float32)
    y_shape = jax.eval_shape(functools.partial(C.conv2d, padding=padding), x, w).shape
    delta = jnp.asarray(rng.normal(size=y_shape), jnp.float32)
    compiled, compile_s, fns = {}, {}, {}
    for label, fn in jax_contenders(padding).items():
        exe, lower_s, comp_s = compile_fn(fn, x, w, delta)
        compiled[label], compile_s[label] = exe, lower_s + comp_s
        fns[label] = functools.partial(exe, x, w, delta)
    run_torch, torch_nhwc, torch_forward = torch_contender(torch, x, w, delta, padding)
    fns["torch"] = run_torch
    for method in ("xla", "im2col"):
        exe, lower_s, comp_s = compile_fn(functools.partial(C.conv2d, padding=padding, method=method), x, w)
        compile_s[f"{method} fwd"] = lower_s + comp_s
        fns[f"{method} fwd"] = functools.partial(exe, x, w)
    fns["torch fwd"] = torch_forward
    # Same numbers first: every contender against xla (float32 sums in different orders).
    reference = [np.asarray(a) for a in fns["xla"]()]
    errors = {}
    for label in fns:
        if label.endswith("fwd"):
            y = fns[label]()
            y = y.numpy().transpose(0, 2, 3, 1) if label == "torch fwd" else np.asarray(y)
            errors[label] = float(np.max(np.abs(y - reference[0])) / np.max(np.abs(reference[0])))
            continue
        out = torch_nhwc() if label == "torch" else [np.asarray(a) for a in fns[label]()]
        errors[label] = max(float(np.max(np.abs(a - b)) / (1e-30 + np.max(np.abs(b)))) for a, b in zip(out, reference))
    timings = measure_interleaved(fns, repeats=repeats, warmup=1)
    print(f"\n{name}   (x {xs}, w {ws}, {padding})")
    print(f"  {'contender':<12} {'compile s':>9} {'median ms (min-max)':>26} {'vs xla':>7} {'rel err':>8}")
    for label, t in timings.items():
        comp = f"{compile_s[label]:.2f}" if label in compile_s else "-"
        spread = f"{t.median * 1e3:.1f} ({t.min * 1e3:.1f}-{t.max * 1e3:.1f})"
        base = timings["xla fwd" if label.endswith("fwd") else "xla"].median
        print(f"  {label:<12} {comp:>9} {spread:>26} {t.median / base:>6.2f}x {errors[label]:>8.1e}")
    return timings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--large-batch", type=int, default=32)
    args = parser.parse_args(argv)
    import torch  # the baseline; imported here so the module stays importable without it

    print(f"jax {jax.__version__}, torch {torch.__version__} (threads {torch.get_num_threads()}), "
          f"{platform.processor() or platform.machine()}, devices {jax.devices()}")
    print(f"repeats {args.repeats}, float32, forward + backward (y, dL/dx, dL/dw)")
    for name, xs, ws, padding in layers(args.large_batch):
        bench_layer(name, xs, ws, padding, args.repeats, torch)


if __name__ == "__main__":
    main()
