"""``jaxmath dream``: DeepDream on a model saved by ``jaxmath train mlp|cnn --save DIR``.

A thin shell over ``jaxmath.dream``: ``layer_objective`` (the layer name and channel are checked against the
saved network before anything runs) and ``deep_dream``; the picture (start image beside the dream) is
``jaxmath.plot.image_grid``.
"""

from __future__ import annotations

import argparse
from typing import Any

from jaxmath.cli import CLIError
from jaxmath.cli import _report, _saved

COMMAND = "jaxmath dream"
NOISE_LEVEL = 0.1  # --start noise: uniform pixels in [0, NOISE_LEVEL], a dim canvas like MNIST's black background


def register(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "dream", help=help_text,
        description="Dream an image towards what one layer (or one channel, or one class logit) of a saved "
                    "network responds to, by gradient ascent on the pixels over octaves (jaxmath.dream).")
    _saved.add_model_flags(parser)
    parser.add_argument("--layer", required=True,
                        help="layer to excite: c1 s2 c3 s4 c5 f6 out (LeNet-5) or layer_1 .. layer_L (MLP)")
    parser.add_argument("--channel", type=int, default=None, metavar="K",
                        help="one channel (feature map, unit, or class with --layer out) instead of the whole layer")
    parser.add_argument("--kind", default="mean", help="mean (the activation's mean) or l2 (½ Σ a²; default mean)")
    parser.add_argument("--out", default="dream.png", metavar="FILE.png",
                        help="the picture: start image and dream (default dream.png)")
    parser.add_argument("--start", default="noise", metavar="noise|test:INDEX",
                        help=f"start from dim uniform noise in [0, {NOISE_LEVEL:g}] or from test digit INDEX "
                             "(default noise)")
    parser.add_argument("--octaves", type=int, default=3, help="octaves (default 3)")
    parser.add_argument("--octave-scale", type=float, default=1.4, help="size ratio between octaves (default 1.4)")
    parser.add_argument("--steps", type=int, default=20, help="gradient steps per octave (default 20)")
    parser.add_argument("--step-size", type=float, default=0.02,
                        help="mean absolute pixel change per step (default 0.02)")
    parser.add_argument("--jitter", type=int, default=2, help="largest random roll in pixels (default 2)")
    parser.set_defaults(func=run)


def _fail(message: str) -> CLIError:
    return CLIError(f"{COMMAND}: error: {message}")


def _parse_start(text: str) -> int | None:
    """None for noise, else the test index."""
    if text == "noise":
        return None
    prefix, _, index = text.partition(":")
    if prefix == "test" and index.isdigit():
        return int(index)
    raise _fail(f"--start must be 'noise' or 'test:INDEX' (e.g. test:0), got {text!r}")


def _check(args: argparse.Namespace) -> int | None:
    start = _parse_start(args.start)
    for flag, value in (("--octaves", args.octaves), ("--steps", args.steps)):
        if value < 1:
            raise _fail(f"--{flag[2:]} must be >= 1, got {value}")
    if args.jitter < 0:
        raise _fail(f"--jitter must be >= 0, got {args.jitter}")
    _saved.check_positive(COMMAND, "--step-size", args.step_size)
    if not args.octave_scale > 1:
        raise _fail(f"--octave-scale must be > 1, got {args.octave_scale:g}")
    if args.kind not in ("mean", "l2"):
        raise _fail(f"--kind must be one of mean, l2, got {args.kind!r}")
    _saved.check_seed(COMMAND, args.seed)
    problem = _report.png_problem("--out", args.out)
    if problem:
        raise _fail(problem)
    _saved.check_model_dir(COMMAND, args.model)
    return start


def run(args: argparse.Namespace) -> int:
    start = _check(args)
    model, params, network = _saved.load_model(COMMAND, args.model)

    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxmath import dream, plot

    try:
        objective = dream.layer_objective(model, args.layer, channel=args.channel, kind=args.kind)
    except (ValueError, TypeError) as err:
        flag = "--channel" if str(err).startswith("channel") else "--layer"
        raise _fail(f"{flag}: {err}") from None
    noise_key, dream_key = jax.random.split(jax.random.key(args.seed))
    if start is None:
        x = jax.random.uniform(noise_key, (1, *_saved.IMAGE_SHAPE), jnp.float32, 0.0, NOISE_LEVEL)
        where = "noise"
    else:
        images, labels = _saved.load_images(COMMAND, "--start", "test", args.data_dir)
        if start >= len(labels):
            raise _fail(f"--start test:INDEX must be < {len(labels):,}, got {start:,}")
        x = jnp.asarray(images[start:start + 1])
        where = f"test digit {start} (a {int(labels[start])})"
    image, info = dream.deep_dream(objective, params, x, dream_key, num_octaves=args.octaves,
                                   octave_scale=args.octave_scale, steps_per_octave=args.steps,
                                   step_size=args.step_size, jitter=args.jitter)
    before, after = (float(v) for v in jnp.concatenate([objective(params, x), objective(params, image)]))
    predicted = np.asarray(jnp.argmax(model.apply(params, jnp.concatenate([x, image]).reshape(2, -1)), axis=-1))
    target = args.layer + (f"[{args.channel}]" if args.channel is not None else "")
    print(f"{COMMAND}: {network}, {args.kind} of {target}, from {where}")
    print(f"  {args.octaves} octave(s) x {args.steps} steps of {args.step_size:g}, jitter {args.jitter}")
    print(f"  objective  {before:.4g} -> {after:.4g}")
    print(f"  predicted  {int(predicted[0])} -> {int(predicted[1])}")
    try:
        plot.image_grid(np.concatenate([np.asarray(x), np.asarray(image)]), args.out,
                        titles=[f"start → {int(predicted[0])}", f"dream → {int(predicted[1])}"],
                        title=f"{args.kind} of {target}")
    except OSError as err:
        raise _fail(f"could not write output: {err}") from None
    print(f"wrote {args.out}")
    return 0
