"""Fooling images, noise confidence and the adversarial patch on trained networks saved by ``jaxmath train``.

For each model directory given (``--model DIR``, repeatable):

  noise   how sure the net is on ``--num-noise`` uniform-noise images: the fraction with max softmax ≥ 0.5,
          0.9, 0.99, the median, a 10-bin histogram and the predicted-class counts (the chapter's histogram)
  fool    fooling images from noise, one per class (target = 0..9), gradient ascent until 99% confidence:
          steps to 99% per class, without penalty, with the L2 penalty ‖x − x⁰‖² and with total variation
  patch   a universal square patch per target class, fitted on the training digits over random positions
          (``fit_patch``), and its targeted success on the 10,000 test digits (other classes, random
          positions) against a uniform-noise patch of the same size; ``--patch-sizes 8,12,16``; with
          ``--max-rotation 22.5 --scale-range 0.8,1.2`` the patch is also turned and scaled at random, in the
          fit and in the success rate (Brown et al.'s expectation over transformation); ``--cross`` also fits
          positions-only patches and measures each kind of patch both ways

Train the networks first, e.g.:

    jaxmath train mlp --hidden 256 --loss softmax_cross_entropy --epochs 10 --save /tmp/B-mlp
    jaxmath train cnn --model lenet5 --lr 2e-3 --lr-schedule cosine --epochs 10 --save /tmp/B-lenet
    python benchmarks/bench_fooling.py --model /tmp/B-mlp --model /tmp/B-lenet --json fooling.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import adversarial, models
from jaxmath.datasets import load_mnist


def noise_stats(model, params, *, num_images, seed):
    t = time.perf_counter()
    out = adversarial.noise_confidence(model.apply, params, jax.random.key(seed), num_images=num_images,
                                       shape=(28, 28))
    conf = np.asarray(out.confidence, np.float64)
    return {
        "num_images": num_images,
        "fraction_ge_0.5": float(np.mean(conf >= 0.5)),
        "fraction_ge_0.9": float(np.mean(conf >= 0.9)),
        "fraction_ge_0.99": float(np.mean(conf >= 0.99)),
        "median": float(np.median(conf)),
        "histogram_0.1_to_1": np.histogram(conf, bins=np.linspace(0.1, 1.0, 10))[0].tolist(),
        "predicted_counts": np.bincount(np.asarray(out.predicted), minlength=10).tolist(),
        "seconds": time.perf_counter() - t,
    }


def fooling_stats(model, params, *, max_steps, learning_rate, seed):
    rows = {}
    for name, penalty, weight in (("none", None, 0.0), ("l2", "l2", 1e-3), ("tv", "tv", 1e-2)):
        t = time.perf_counter()
        x, info = adversarial.fooling_image(model.apply, params, jax.random.key(seed), target=jnp.arange(10),
                                            shape=(28, 28), max_steps=max_steps, learning_rate=learning_rate,
                                            penalty=penalty, penalty_weight=weight, confidence=0.99)
        x0 = np.asarray(jax.random.uniform(jax.random.key(seed), (10, 28, 28), x.dtype))
        rows[name] = {
            "penalty_weight": weight,
            "converged": bool(info.converged),
            "num_steps": int(info.num_steps),
            "steps_to_99_per_class": np.asarray(info.steps_to_confidence).tolist(),
            "final_confidence_min": float(np.min(np.asarray(info.confidence))),
            "rms_change_from_noise": float(np.sqrt(np.mean((np.asarray(x) - x0) ** 2))),
            "seconds": time.perf_counter() - t,
        }
    return rows


def patch_stats(model, params, x_train, x_test, labels_test, *, sizes, max_steps, batch_size, learning_rate, seed,
                transform, cross):
    positions_only = {"max_rotation_degrees": 0.0, "scale_range": (1.0, 1.0)}

    def fit(size, target, how):
        return adversarial.fit_patch(model.apply, params, x_train, jax.random.key(seed + target), target=target,
                                     patch_size=size, max_steps=max_steps, batch_size=batch_size,
                                     learning_rate=learning_rate, **how)[0]

    def rate(patch, target, how):
        return adversarial.patch_success_rate(model.apply, params, x_test, labels_test, patch,
                                              jax.random.key(1000 + target), target=target, **how)

    rows = {}
    for size in sizes:
        fitted, noise, seconds, crossed = [], [], [], {}
        for target in range(10):
            t = time.perf_counter()
            patch = jax.block_until_ready(fit(size, target, transform))
            seconds.append(time.perf_counter() - t)
            fitted.append(rate(patch, target, transform))
            noise.append(rate(jax.random.uniform(jax.random.key(2000 + target), (size, size)), target, transform))
            print(f"  patch {size}x{size} target {target}: success {fitted[-1]:.3f}  noise patch {noise[-1]:.3f}  "
                  f"fit {seconds[-1]:.1f} s", flush=True)
            if cross:  # the same patch on positions only, and a positions-only patch under the transformations
                crossed.setdefault("fitted_transformed_measured_positions_only", []).append(
                    rate(patch, target, positions_only))
                plain = fit(size, target, positions_only)
                crossed.setdefault("fitted_positions_only_measured_positions_only", []).append(
                    rate(plain, target, positions_only))
                crossed.setdefault("fitted_positions_only_measured_transformed", []).append(
                    rate(plain, target, transform))
        rows[str(size)] = {"success_per_target": fitted, "noise_patch_success_per_target": noise,
                           "mean_success": float(np.mean(fitted)), "mean_noise_patch_success": float(np.mean(noise)),
                           "fit_seconds_median": float(np.median(seconds)),
                           **{f"mean_{name}": float(np.mean(v)) for name, v in crossed.items()}}
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="directory written by jaxmath train --save")
    parser.add_argument("--num-noise", type=int, default=10000)
    parser.add_argument("--fool-steps", type=int, default=2000)
    parser.add_argument("--fool-lr", type=float, default=1.0)
    parser.add_argument("--patch-sizes", default="8")
    parser.add_argument("--patch-steps", type=int, default=500)
    parser.add_argument("--patch-batch", type=int, default=64)
    parser.add_argument("--patch-lr", type=float, default=0.05)
    parser.add_argument("--max-rotation", type=float, default=0.0, help="patch turned by up to this many degrees")
    parser.add_argument("--scale-range", default="1,1", help="patch side scaled by LOW,HIGH (uniform)")
    parser.add_argument("--cross", action="store_true",
                        help="with a rotation or scale: also fit positions-only patches and measure each both ways")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: noise, fool, patch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    sizes = [int(s) for s in args.patch_sizes.split(",")]
    low, high = (float(s) for s in args.scale_range.split(","))
    transform = {"max_rotation_degrees": args.max_rotation, "scale_range": (low, high)}
    x_train, _ = load_mnist("train")
    x_test, labels_test = load_mnist("test")
    report = {"machine": platform.platform(), "jax": jax.__version__, "args": vars(args), "models": {}}
    for directory in args.model:
        model, params, _ = models.load(directory)
        print(f"{directory}: {model.config['name']}", flush=True)
        row = {"config": model.config}
        if "noise" not in skip:
            row["noise"] = noise_stats(model, params, num_images=args.num_noise, seed=args.seed)
            print("  noise", json.dumps(row["noise"]), flush=True)
        if "fool" not in skip:
            row["fool"] = fooling_stats(model, params, max_steps=args.fool_steps, learning_rate=args.fool_lr,
                                        seed=args.seed + 1)
            print("  fool", json.dumps(row["fool"]), flush=True)
        if "patch" not in skip:
            row["patch"] = patch_stats(model, params, x_train, x_test, labels_test, sizes=sizes,
                                       max_steps=args.patch_steps, batch_size=args.patch_batch,
                                       learning_rate=args.patch_lr, seed=args.seed + 10, transform=transform,
                                       cross=args.cross)
            for size, r in row["patch"].items():
                print(f"  patch {size}: mean success {r['mean_success']:.3f} "
                      f"vs noise {r['mean_noise_patch_success']:.3f}", flush=True)
        report["models"][directory] = row
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
