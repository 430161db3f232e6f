"""``jaxmath train``: train the notes' MNIST network (``mlp``) or the Batman-logo classifier (``logo``).

A thin shell: it checks the flags (before any data is loaded or anything compiles; a bad value raises
:class:`jaxmath.cli.CLIError`, one line, exit status 2), then calls the library: ``mlp.make`` for the model,
``jaxmath.training`` (``make_classifier_loss``, ``make_train_step``, ``fit``, ``evaluate``), ``jaxmath.optim``,
``jaxmath.datasets`` for the data and the overlap check, ``jaxmath.models.save`` for ``--save`` and
``jaxmath.plot`` for the pictures. The table and the JSON report live in ``jaxmath.cli._report``.
"""

from __future__ import annotations

import argparse
import math
import warnings
from typing import Any

from jaxmath.cli import CLIError
from jaxmath.cli import _report

LOSSES = ("sum_of_squares", "mse", "softmax_cross_entropy")  # the names in jaxmath.losses
# name -> (factory(optim, lr), default learning rate for the squared losses, for softmax_cross_entropy)
OPTIMIZERS: dict[str, tuple[Any, float, float]] = {
    "sgd": (lambda optim, lr: optim.sgd(learning_rate=lr), 1.0, 0.1),
    "momentum": (lambda optim, lr: optim.sgd(learning_rate=lr, momentum=0.9), 0.1, 0.01),
    "nesterov": (lambda optim, lr: optim.sgd(learning_rate=lr, momentum=0.9, nesterov=True), 0.1, 0.01),
    "adam": (lambda optim, lr: optim.adam(learning_rate=lr), 1e-3, 1e-3),
    "adamw": (lambda optim, lr: optim.adamw(learning_rate=lr), 1e-3, 1e-3),
    "adagrad": (lambda optim, lr: optim.adagrad(learning_rate=lr), 0.05, 0.05),
    "rmsprop": (lambda optim, lr: optim.rmsprop(learning_rate=lr), 1e-3, 1e-3),
    "adadelta": (lambda optim, lr: optim.adadelta(learning_rate=lr), 1.0, 1.0),
}


def _activations() -> tuple[str, ...]:
    from jaxmath.activations import NAMES

    return NAMES


def register(subparsers: Any, help_text: str) -> None:
    train = subparsers.add_parser("train", help=help_text, description=help_text)
    train.set_defaults(func=_missing_model)
    models = train.add_subparsers(dest="model", metavar="MODEL", parser_class=type(train))
    activations = ", ".join(_activations())

    mlp = models.add_parser(
        "mlp", help="The notes' MNIST network (784-16-16-10 sigmoid by default).",
        description="Train an MLP on MNIST with jaxmath.training.fit and print a results table. "
                    "Train, validation and eval splits must not overlap (--allow-overlap to allow it).")
    mlp.add_argument("--train", default="train", metavar="SPLIT", help="training split, e.g. 'train', 'train[:8000]' (default train)")
    mlp.add_argument("--eval", default="test", metavar="SPLIT", help="evaluation split, reported once at the end (default test)")
    mlp.add_argument("--val", default=None, metavar="SPLIT",
                     help="validation split, e.g. 'train[-5000:]': checked after every epoch, used by --patience; "
                          "the params of the epoch with the lowest validation loss are kept (default: none)")
    mlp.add_argument("--allow-overlap", action="store_true",
                     help="allow train, val and eval splits that share examples (the accuracy is then not a "
                          "held-out figure)")
    mlp.add_argument("--data-dir", default=None, metavar="DIR", help="data root holding mnist/ (default $JAXMATH_DATA_DIR, "
                                                      "else ~/.cache/jaxmath, downloaded there on first use)")
    mlp.add_argument("--hidden", default="16,16", metavar="WIDTHS", help="hidden layer widths, comma-separated (default 16,16)")
    mlp.add_argument("--activation", default="sigmoid", help=f"hidden activation: {activations} (default sigmoid)")
    mlp.add_argument("--loss", default="sum_of_squares",
                     help="a name of jaxmath.losses: sum_of_squares (the notes'), mse (its mean; both on sigmoid "
                          "outputs) or softmax_cross_entropy (on logits); default sum_of_squares")
    mlp.add_argument("--optimizer", default="sgd", help=f"one of {', '.join(OPTIMIZERS)} (default sgd)")
    mlp.add_argument("--lr", type=float, default=None, help="learning rate (default depends on optimizer and loss)")
    mlp.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    mlp.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    mlp.add_argument("--patience", type=int, default=None, help="stop after this many epochs without a lower "
                                                                "validation loss (needs --val)")
    _add_common(mlp)
    mlp.set_defaults(func=run_mlp)

    logo = models.add_parser(
        "logo", help="Learn the Batman logo of seed 000 offline and write it as a PNG.",
        description="Train an MLP to classify points inside/outside the Batman curve and draw the logo.")
    logo.add_argument("--points", type=int, default=20_000, help="training points (default 20000)")
    logo.add_argument("--eval-points", type=int, default=5_000, help="fresh evaluation points (default 5000)")
    logo.add_argument("--hidden", default="64,64", metavar="WIDTHS", help="hidden layer widths (default 64,64)")
    logo.add_argument("--activation", default="tanh", help=f"hidden activation: {activations} (default tanh)")
    logo.add_argument("--optimizer", default="adam", help=f"one of {', '.join(OPTIMIZERS)} (default adam)")
    logo.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    logo.add_argument("--epochs", type=int, default=60, help="epochs (default 60)")
    logo.add_argument("--batch-size", type=int, default=128, help="mini-batch size (default 128)")
    logo.add_argument("--out", default="batman_logo.png", help="PNG of the learned logo (default batman_logo.png)")
    logo.add_argument("--resolution", type=int, default=200, help="image rows; the image is 2R x R (default 200)")
    _add_common(logo)
    logo.set_defaults(func=run_logo, patience=None)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed for init and shuffling (default 0)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--plot", default=None, metavar="FILE.png", help="draw the learning curves (needs matplotlib)")
    parser.add_argument("--save", default=None, metavar="DIR", help="write params.npz and config.json into DIR "
                                                                    "(read back with jaxmath.models.load)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _missing_model(args: argparse.Namespace) -> int:
    raise CLIError("jaxmath train: error: choose what to train: 'jaxmath train mlp' or 'jaxmath train logo'")


def _fail(model: str, message: Any) -> CLIError:
    return CLIError(f"jaxmath train {model}: error: " + " ".join(str(message).split()))


def _parse_hidden(model: str, text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        widths = ()
    if not widths or any(w < 1 for w in widths):
        raise _fail(model, f"--hidden must be comma-separated positive integers like 16,16, got {text!r}")
    return widths


def _check_common(model: str, args: argparse.Namespace) -> None:
    if args.activation not in _activations():
        raise _fail(model, f"--activation must be one of {', '.join(_activations())}, got {args.activation!r}")
    if args.optimizer not in OPTIMIZERS:
        raise _fail(model, f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {args.optimizer!r}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise _fail(model, f"--lr must be a finite number > 0, got {args.lr:g}")
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--patience", args.patience)):
        if value is not None and value < 1:
            raise _fail(model, f"{flag} must be >= 1, got {value}")
    if args.seed < 0:
        raise _fail(model, f"--seed must be >= 0, got {args.seed}")
    problem = _report.output_problems(args)
    if problem:
        raise _fail(model, problem)


def _check_splits(args: argparse.Namespace) -> dict[str, str]:
    """The splits by flag, parsed, and refused when they share examples without --allow-overlap."""
    from jaxmath.datasets import overlap, parse_split
    from jaxmath.datasets.mnist import SPLITS

    splits = {"--train": args.train, "--eval": args.eval}
    if args.val is not None:
        splits["--val"] = args.val
    for flag, split in splits.items():
        try:
            parse_split(split, names=tuple(SPLITS))
        except (ValueError, TypeError) as err:
            raise _fail("mlp", f"{flag}: {err}") from None
    if args.patience is not None and args.val is None:
        raise _fail("mlp", "--patience needs a validation split: add --val, e.g. --val 'train[-5000:]'")
    lengths = {name: count for name, (_, _, count) in SPLITS.items()}
    pairs = [("--train", "--eval"), ("--val", "--eval"), ("--train", "--val")]
    for a, b in pairs:
        if a in splits and b in splits and not args.allow_overlap:
            shared = overlap(splits[a], splits[b], lengths)
            if shared:
                raise _fail("mlp", f"{a} {splits[a]!r} and {b} {splits[b]!r} share {shared:,} examples; "
                                   "choose disjoint splits (e.g. --train 'train[:55000]' --val 'train[55000:]') "
                                   "or pass --allow-overlap")
    return splits


def _train(model_name, args, sizes, loss, output, num_classes, train, val):
    """Build model, loss, step and state from the flags and run ``training.fit``; return (model, params, run)."""
    import jax

    from jaxmath import optim, training
    from jaxmath.models import mlp

    factory, lr_squared, lr_ce = OPTIMIZERS[args.optimizer]
    lr = args.lr if args.lr is not None else (lr_ce if loss == "softmax_cross_entropy" else lr_squared)
    model = mlp.make(sizes, activation=args.activation, output=output)
    loss_fn = training.make_classifier_loss(model.apply, num_classes=num_classes, loss=loss)
    step = training.make_train_step(loss_fn, factory(optim, lr))
    init_key, shuffle_key = jax.random.split(jax.random.key(args.seed))
    try:
        with warnings.catch_warnings():
            # fit warns about a non-finite loss; the CLI reports it itself (table row, stderr, exit status 1).
            warnings.simplefilter("ignore", RuntimeWarning)
            state, info = _fit(training, step, model.init(init_key), shuffle_key, train, val, args)
    except (ValueError, TypeError) as err:  # bad data caught by fit's checks before any training
        raise _fail(model_name, err) from None
    params = info.best_params if val is not None else state.params
    settings = {"model": model_name, "loss": loss, "optimizer": args.optimizer, "learning_rate": lr,
                "epochs": args.epochs, "batch_size": args.batch_size, "patience": args.patience, "seed": args.seed}
    return model, params, {"loss_fn": loss_fn, "info": info, "settings": settings}


def _fit(training, step, params, key, train, val, args):
    """``training.fit`` with the optimizer given once, in the step; returns ``(state, info)``."""
    return training.fit(step.init(params, key=key), *train, train_step=step, num_epochs=args.epochs,
                        batch_size=args.batch_size, validation_data=val, patience=args.patience,
                        progress=not args.no_progress)


def run_mlp(args: argparse.Namespace) -> int:
    model_name = "mlp"
    if args.loss not in LOSSES:
        raise _fail(model_name, f"--loss must be one of {', '.join(LOSSES)} (names in jaxmath.losses), "
                                f"got {args.loss!r}")
    hidden = _parse_hidden(model_name, args.hidden)
    _check_common(model_name, args)
    splits = _check_splits(args)

    from jaxmath.datasets import load_mnist

    data = {}
    for flag, split in splits.items():
        try:
            data[flag] = load_mnist(split, args.data_dir)
        except (OSError, ValueError) as err:
            # The missing-files message has several short lines: keep them as they are.
            raise CLIError(f"jaxmath train {model_name}: error: {flag} {split!r}: {err}") from None
        if len(data[flag][1]) == 0:
            raise _fail(model_name, f"{flag} {split!r} selects no examples")
    if args.batch_size > len(data["--train"][1]):
        raise _fail(model_name, f"--batch-size must be <= the {len(data['--train'][1])} training examples, "
                                f"got {args.batch_size}")
    output = "identity" if args.loss == "softmax_cross_entropy" else "sigmoid"
    model, params, run = _train(model_name, args, (28 * 28, *hidden, 10), args.loss, output, 10,
                                data["--train"], data.get("--val"))
    run["settings"].update({"train": args.train, "val": args.val, "eval": args.eval})
    report = _report.build(model, params, run, train=data["--train"], val=data.get("--val"), eval=data["--eval"])
    print(_report.format_table(report))
    _report.write_outputs(model_name, args, model, params, report)
    return _report.exit_status(model_name, report)


def run_logo(args: argparse.Namespace) -> int:
    model_name = "logo"
    hidden = _parse_hidden(model_name, args.hidden)
    _check_common(model_name, args)
    for flag, value in (("--points", args.points), ("--eval-points", args.eval_points),
                        ("--resolution", args.resolution)):
        if value < 1:
            raise _fail(model_name, f"{flag} must be >= 1, got {value}")
    if args.batch_size > args.points:
        raise _fail(model_name, f"--batch-size must be <= --points ({args.points}), got {args.batch_size}")
    problem = _report.png_problem("--out", args.out)
    if problem:
        raise _fail(model_name, problem)

    import jax
    import numpy as np

    from jaxmath.datasets import batman

    train_key, eval_key = jax.random.split(jax.random.key(args.seed + 1_000_003))
    scale = np.asarray(batman.INPUT_SCALE, np.float32)
    points, labels = (np.asarray(a) for a in batman.batman_logo(args.points, train_key))
    eval_points, eval_labels = (np.asarray(a) for a in batman.batman_logo(args.eval_points, eval_key))
    train, evaluation = (points / scale, labels), (eval_points / scale, eval_labels)
    model, params, run = _train(model_name, args, (2, *hidden, 2), "softmax_cross_entropy", "identity", 2,
                                train, None)
    run["settings"].update({"points": args.points, "eval_points": args.eval_points,
                            "input_scale": list(batman.INPUT_SCALE)})
    report = _report.build(model, params, run, train=train, val=None, eval=evaluation)
    print(_report.format_table(report))
    from jaxmath import plot

    try:
        plot.logo(model.apply, params, args.out, resolution=args.resolution,
                  accuracy=report["results"]["eval_accuracy"])
    except OSError as err:
        raise _fail(model_name, f"could not write {args.out!r}: {err}") from None
    print(f"wrote {args.out}")
    _report.write_outputs(model_name, args, model, params, report)
    return _report.exit_status(model_name, report)
