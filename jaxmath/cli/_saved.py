"""What ``jaxmath attack`` and ``jaxmath dream`` share: reading a model saved by ``jaxmath train ... --save``,
and the MNIST test images they work on. Failures become one-line :class:`jaxmath.cli.CLIError`s."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from jaxmath.cli import CLIError
from jaxmath.cli import _guards

IMAGE_SHAPE = (28, 28)


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="a model saved by 'jaxmath train mlp|cnn --save DIR' (params.npz, config.json)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="data root holding mnist/ (default "
                        "$JAXMATH_DATA_DIR, else ~/.cache/jaxmath, downloaded there on first use)")
    parser.add_argument("--seed", type=int, default=0,
                        help=f"PRNG seed, 0..{_guards.SEED_MAX} (default 0)")


def check_model_dir(command: str, directory: str) -> None:
    """Refuse a --model that is not a saved model's directory, before anything loads."""
    path = Path(directory)
    if not path.is_dir():
        raise CLIError(f"{command}: error: --model {directory!r} is not a directory (save one with "
                       "'jaxmath train mlp --save DIR')")
    missing = [name for name in ("params.npz", "config.json") if not (path / name).is_file()]
    if missing:
        raise CLIError(f"{command}: error: --model {directory!r} has no {' or '.join(missing)}: not a directory "
                       "written by 'jaxmath train ... --save DIR'")


def check_seed(command: str, seed: int) -> None:
    problem = _guards.seed_problem(seed)
    if problem:
        raise CLIError(f"{command}: error: {problem}")


def check_positive(command: str, flag: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise CLIError(f"{command}: error: {flag} must be a finite number > 0, got {value:g}")


def load_model(command: str, directory: str) -> tuple[Any, Any, str]:
    """``(model, params, description)`` of a saved MNIST classifier; refused in one line if it is not one."""
    import jax
    import jax.numpy as jnp

    from jaxmath import models

    try:
        model, params, _ = models.load(directory)
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise CLIError(f"{command}: error: --model {directory!r}: " + " ".join(str(err).split())) from None
    x = jax.ShapeDtypeStruct((1, math.prod(IMAGE_SHAPE)), jnp.float32)
    try:
        logits = jax.eval_shape(model.apply, params, x)
    except (ValueError, TypeError):
        logits = None
    if logits is None or logits.shape != (1, 10):
        raise CLIError(f"{command}: error: --model {directory!r} is not an MNIST classifier (784 pixels in, 10 "
                       f"classes out); it is a {describe(model.config)}")
    return model, params, describe(model.config)


def describe(config: dict) -> str:
    """``mlp 784-16-16-10 sigmoid`` or ``lenet5 (modern)``."""
    if "sizes" in config:
        return f"{config['name']} {'-'.join(map(str, config['sizes']))} {config.get('activation', '')}".strip()
    return f"{config.get('name')} ({config.get('variant', '')})" if "variant" in config else str(config.get("name"))


def load_images(command: str, flag: str, split: str, data_dir: str | None):
    """``(x, labels)``: float32 ``(n, 28, 28)`` pixels in [0, 1] and int32 labels of an MNIST split."""
    import numpy as np

    from jaxmath.datasets import load_mnist

    try:
        images, labels = load_mnist(split, data_dir)
    except (OSError, ValueError) as err:
        raise CLIError(f"{command}: error: {flag} {split!r}: {err}") from None
    if len(labels) == 0:
        raise CLIError(f"{command}: error: {flag} {split!r} selects no examples")
    return images.astype(np.float32) / np.float32(255), labels.astype(np.int32)
