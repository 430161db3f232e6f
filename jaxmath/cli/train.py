"""``jaxmath train``: the notes' MNIST network (``mlp``), LeNet-5 (``cnn``) or the Batman-logo classifier
(``logo``).

A thin shell: it checks the flags (before any data is loaded or anything compiles; a bad value raises
:class:`jaxmath.cli.CLIError`, one line, exit status 2), then calls the library: ``mlp.make`` /
``lenet5.make`` for the model, ``jaxmath.training`` (``make_classifier_loss``, ``make_train_step``, ``fit``,
``evaluate``), ``jaxmath.optim``, ``jaxmath.datasets`` for the data and the overlap check,
``jaxmath.models.save`` for ``--save``, ``jaxmath.checkpoint`` (through ``fit``) for ``--checkpoint`` and
``jaxmath.plot`` for the pictures. ``mlp`` and ``cnn`` share one code path (:func:`_run_mnist`); the table
and the JSON report live in ``jaxmath.cli._report``, the seed and memory checks in ``jaxmath.cli._guards``,
``--devices`` / ``--distributed`` (data parallel on a mesh, ``jaxmath.devices.parallel_fit``) in
``jaxmath.cli._mesh``; ``--compute-dtype bfloat16`` is the models' ``compute_dtype``.

Nothing trained is lost: every output is probed writable before training; the params are saved before the
JSON and the plot are written; Ctrl-C or SIGTERM during training saves the last completed epoch (with
``--checkpoint`` or ``--save``), says where, and exits with status 130.
"""

from __future__ import annotations

import argparse
import math
import warnings
from typing import Any

from jaxmath.cli import CLIError, Interrupted, output_directory_problem
from jaxmath.cli import _guards, _interrupts, _mesh, _report

LOSSES = ("sum_of_squares", "mse", "softmax_cross_entropy")  # the names in jaxmath.losses
COMPUTE_DTYPES = ("float32", "bfloat16")  # --compute-dtype; the params stay float32 either way
CNN_MODELS = {"lenet5": "modern", "lenet5-1998": "1998"}  # --model -> lenet5.make(variant=...)
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
    _add_data(mlp)
    mlp.add_argument("--hidden", default="16,16", metavar="WIDTHS",
                     help="hidden layer widths, comma-separated (default 16,16)")
    mlp.add_argument("--activation", default="sigmoid", help=f"hidden activation: {activations} (default sigmoid)")
    mlp.add_argument("--loss", default="sum_of_squares",
                     help="a name of jaxmath.losses: sum_of_squares (the notes'), mse (its mean; both on sigmoid "
                          "outputs) or softmax_cross_entropy (on logits); default sum_of_squares")
    _add_training(mlp, optimizer="sgd", batch_size=32)
    _add_devices(mlp)
    _add_common(mlp)
    mlp.set_defaults(func=run_mlp)

    cnn = models.add_parser(
        "cnn", help="LeNet-5 on MNIST: the modern network or the 1998 one.",
        description="Train LeNet-5 (jaxmath.models.lenet5) on MNIST with softmax cross-entropy, with the same "
                    "flags and outputs as 'jaxmath train mlp'.")
    cnn.add_argument("--model", default="lenet5", choices=tuple(CNN_MODELS),
                     help="lenet5 (ReLU, max pooling, logits) or lenet5-1998 (the paper's: scaled tanh, trainable "
                          "subsampling, C3's partial connections, RBF outputs); default lenet5")
    _add_data(cnn)
    _add_training(cnn, optimizer="adam", batch_size=128)
    _add_devices(cnn)
    _add_common(cnn)
    cnn.set_defaults(func=run_cnn, loss="softmax_cross_entropy")

    logo = models.add_parser(
        "logo", help="Learn the Batman logo of seed 000 offline and write it as a PNG.",
        description="Train an MLP to classify points inside/outside the Batman curve and draw the logo.")
    logo.add_argument("--points", type=int, default=20_000, help="training points (default 20000)")
    logo.add_argument("--eval-points", type=int, default=5_000, help="fresh evaluation points (default 5000)")
    logo.add_argument("--hidden", default="64,64", metavar="WIDTHS", help="hidden layer widths (default 64,64)")
    logo.add_argument("--activation", default="tanh", help=f"hidden activation: {activations} (default tanh)")
    logo.add_argument("--optimizer", default="adam", help=f"one of {', '.join(OPTIMIZERS)} (default adam)")
    logo.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    _add_lr_schedule(logo)
    logo.add_argument("--epochs", type=int, default=60, help="epochs (default 60)")
    logo.add_argument("--batch-size", type=int, default=128, help="mini-batch size (default 128)")
    logo.add_argument("--out", default="batman_logo.png", help="PNG of the learned logo (default batman_logo.png)")
    logo.add_argument("--resolution", type=int, default=200, help="image rows; the image is 2R x R (default 200)")
    _add_common(logo)
    logo.set_defaults(func=run_logo, patience=None)


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", default="train", metavar="SPLIT",
                        help="training split, e.g. 'train', 'train[:8000]' (default train)")
    parser.add_argument("--eval", default="test", metavar="SPLIT",
                        help="evaluation split, reported once at the end (default test)")
    parser.add_argument("--val", default=None, metavar="SPLIT",
                        help="validation split, e.g. 'train[-5000:]': checked after every epoch, used by --patience; "
                             "the params of the epoch with the lowest validation loss are kept (default: none)")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="allow train, val and eval splits that share examples (the accuracy is then not a "
                             "held-out figure)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="data root holding mnist/ (default "
                        "$JAXMATH_DATA_DIR, else ~/.cache/jaxmath, downloaded there on first use)")


def _add_lr_schedule(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                        help="constant: --lr throughout; cosine: from --lr down to 0 over all the steps "
                             "(optim.cosine_decay) (default constant)")


def _add_training(parser: argparse.ArgumentParser, *, optimizer: str, batch_size: int) -> None:
    parser.add_argument("--optimizer", default=optimizer, help=f"one of {', '.join(OPTIMIZERS)} (default {optimizer})")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default depends on optimizer and loss)")
    _add_lr_schedule(parser)
    parser.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help=f"mini-batch size (default {batch_size})")
    parser.add_argument("--patience", type=int, default=None, help="stop after this many epochs without a lower "
                                                                   "validation loss (needs --val)")


def _add_devices(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compute-dtype", choices=COMPUTE_DTYPES, default="float32",
                        help="dtype of the matmul and convolution inputs; params and optimizer state stay float32 "
                             "(bfloat16: mixed precision, no loss scaling needed; default float32)")
    _mesh.add_flags(parser)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help=f"PRNG seed for init and shuffling, 0..{_guards.SEED_MAX} "
                                                            "(default 0)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--plot", default=None, metavar="FILE.png", help="draw the learning curves (needs matplotlib)")
    parser.add_argument("--save", default=None, metavar="DIR", help="write params.npz and config.json into DIR, "
                        "atomically (read back with jaxmath.models.load)")
    parser.add_argument("--checkpoint", default=None, metavar="DIR",
                        help="save the training state (params, optimizer state, step, key) into DIR after every "
                             "epoch and on Ctrl-C (jaxmath.checkpoint)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --checkpoint DIR (same flags)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _missing_model(args: argparse.Namespace) -> int:
    raise CLIError("jaxmath train: error: choose what to train: 'jaxmath train mlp', 'jaxmath train cnn' or "
                   "'jaxmath train logo'")


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


def _check_activation(model: str, args: argparse.Namespace) -> None:
    if args.activation not in _activations():
        raise _fail(model, f"--activation must be one of {', '.join(_activations())}, got {args.activation!r}")


def _check_common(model: str, args: argparse.Namespace) -> None:
    if args.optimizer not in OPTIMIZERS:
        raise _fail(model, f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {args.optimizer!r}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise _fail(model, f"--lr must be a finite number > 0, got {args.lr:g}")
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--patience", args.patience)):
        if value is not None and value < 1:
            raise _fail(model, f"{flag} must be >= 1, got {value}")
    problem = _guards.seed_problem(args.seed)
    if problem:
        raise _fail(model, problem)
    if args.resume and args.checkpoint is None:
        raise _fail(model, "--resume needs --checkpoint DIR (the directory the interrupted run wrote)")
    if args.checkpoint is not None and not _interrupts.fit_checkpoints():
        raise _fail(model, "--checkpoint needs jaxmath.training.fit(checkpoint_dir=...), which this version lacks")
    if args.resume and not _interrupts.has_checkpoint(args.checkpoint):
        raise _fail(model, f"--resume: no checkpoint in {args.checkpoint!r} to resume from")
    # Every output, before any data is loaded: a typo, a read-only folder or a full disk never costs a run.
    problem = _report.output_problems(args)
    for flag in ("--save", "--checkpoint"):
        if problem is None and getattr(args, flag[2:]) is not None:
            problem = output_directory_problem(flag, getattr(args, flag[2:]))
    if problem:
        raise _fail(model, problem)


def _check_splits(model: str, args: argparse.Namespace) -> dict[str, str]:
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
            raise _fail(model, f"{flag}: {err}") from None
    if args.patience is not None and args.val is None:
        raise _fail(model, "--patience needs a validation split: add --val, e.g. --val 'train[-5000:]'")
    lengths = {name: count for name, (_, _, count) in SPLITS.items()}
    pairs = [("--train", "--eval"), ("--val", "--eval"), ("--train", "--val")]
    for a, b in pairs:
        if a in splits and b in splits and not args.allow_overlap:
            shared = overlap(splits[a], splits[b], lengths)
            if shared:
                raise _fail(model, f"{a} {splits[a]!r} and {b} {splits[b]!r} share {shared:,} examples; "
                                   "choose disjoint splits (e.g. --train 'train[:55000]' --val 'train[55000:]') "
                                   "or pass --allow-overlap")
    return splits


def _learning_rate(args: argparse.Namespace, loss: str) -> float:
    _, lr_squared, lr_ce = OPTIMIZERS[args.optimizer]
    return args.lr if args.lr is not None else (lr_ce if loss == "softmax_cross_entropy" else lr_squared)


def _check_memory(model_name, args, model, loss, example_shape) -> None:
    """Refuse, in one line, a network whose params, optimizer state and activations cannot fit."""
    from jaxmath import optim

    factory = OPTIMIZERS[args.optimizer][0]
    problem = _guards.memory_problem(model, factory(optim, _learning_rate(args, loss)), batch_size=args.batch_size,
                                     example_shape=example_shape)
    if problem:
        raise _fail(model_name, problem)


def _train(model_name, args, model, loss, num_classes, train, val):
    """Build loss, step and state from the flags and run ``training.fit``; return ``(params, run)``.

    Ctrl-C or SIGTERM inside ``fit`` becomes :class:`Interrupted`, after the last completed epoch is saved.
    """
    import jax

    from jaxmath import optim, training

    lr = _learning_rate(args, loss)
    rate = lr
    if args.lr_schedule == "cosine":
        rate = optim.cosine_decay(init_value=lr, decay_steps=args.epochs * (len(train[0]) // args.batch_size))
    loss_fn = training.make_classifier_loss(model, num_classes=num_classes, loss=loss)
    step = training.make_train_step(loss_fn, OPTIMIZERS[args.optimizer][0](optim, rate))
    init_key, shuffle_key = jax.random.split(jax.random.key(args.seed))
    settings = {"model": model_name, "loss": loss, "optimizer": args.optimizer, "learning_rate": lr,
                "lr_schedule": args.lr_schedule, "epochs": args.epochs, "batch_size": args.batch_size,
                "patience": args.patience, "seed": args.seed,
                "compute_dtype": getattr(args, "compute_dtype", "float32")}
    checkpoint_dir = args.checkpoint if args.checkpoint is not None else _interrupts.interrupt_directory(args)
    try:
        with warnings.catch_warnings():
            # fit warns about a non-finite loss; the CLI reports it itself (table row, stderr, exit status 1).
            warnings.simplefilter("ignore", RuntimeWarning)
            kwargs = {}
            if checkpoint_dir is not None:
                # With --save alone the checkpoint directory is a private one, removed afterwards: fit writes
                # it only on an interrupt and after the last epoch.
                every = 1 if args.checkpoint is not None else args.epochs + 1
                kwargs = {"checkpoint_dir": str(checkpoint_dir), "checkpoint_every": every, "resume": args.resume}
            state, info = training.fit(
                step.init(model.init(init_key), key=shuffle_key), *train, train_step=step, num_epochs=args.epochs,
                batch_size=args.batch_size, validation_data=val, patience=args.patience,
                progress=not args.no_progress, **kwargs)
    except KeyboardInterrupt:
        message = _interrupts.interrupted_message(model_name, args, model, checkpoint_dir, settings)
        raise Interrupted(message) from None
    except (ValueError, TypeError) as err:  # bad data or a checkpoint of another network, before any training
        raise _fail(model_name, err) from None
    finally:
        if checkpoint_dir is not None and args.checkpoint is None:
            _interrupts.remove_tree(checkpoint_dir)
    params = info.best_params if val is not None else state.params
    return params, {"loss_fn": loss_fn, "info": info, "settings": settings}


def _table_report(report: dict) -> dict:
    """The table names a network by its sizes and activation; a CNN by its name and variant."""
    config = report["config"]
    if "sizes" in config:
        return report
    return {**report, "config": {"sizes": [config["name"]], "activation": f"({config.get('variant', '')})"}}


def _finish(model_name, args, model, params, report) -> int:
    """Print the table, then write the params (--save) before the JSON and the plot, so a failing report
    never loses them. With several processes only process 0 prints and writes."""
    if _mesh.uses_mesh(args):
        from jaxmath.devices import parallel_fit

        if not _mesh.is_main_process():
            return 0 if not report["results"]["stop_reason"].startswith("non-finite") else 1
        params = parallel_fit.host_copy(params)
    print(_report.format_table(_table_report(report)))
    save_args = argparse.Namespace(**{**vars(args), "json": None, "plot": None})
    _report.write_outputs(model_name, save_args, model, params, report)
    _report.write_outputs(model_name, argparse.Namespace(**{**vars(args), "save": None}), model, params, report)
    return _report.exit_status(model_name, report)


def _run_mnist(args: argparse.Namespace, model_name: str, make_model, *, loss: str) -> int:
    """``train mlp`` and ``train cnn``: checks, memory estimate, data, ``fit``, report, outputs."""
    _check_common(model_name, args)
    fail = lambda message: _fail(model_name, message)  # noqa: E731
    _mesh.check_flags(args, fail)
    splits = _check_splits(model_name, args)
    model = make_model()
    # jax.distributed must start before anything touches a JAX backend (the memory check does).
    mesh = _mesh.setup(args, fail) if _mesh.uses_mesh(args) else None
    _check_memory(model_name, args, model, loss, (28 * 28,))

    from jaxmath.datasets import load_mnist

    data, rows = {}, {}
    for flag, split in splits.items():
        try:
            if mesh is None:
                data[flag] = load_mnist(split, args.data_dir)
                rows[flag] = len(data[flag][1])
            else:  # this process's rows
                data[flag], rows[flag] = _mesh.load(split, args.data_dir)
        except (OSError, ValueError) as err:
            # The missing-files message has several short lines: keep them as they are.
            raise CLIError(f"jaxmath train {model_name}: error: {flag} {split!r}: {err}") from None
        if rows[flag] == 0:
            raise _fail(model_name, f"{flag} {split!r} selects no examples")
    if args.batch_size > rows["--train"]:
        raise _fail(model_name, f"--batch-size must be <= the {rows['--train']} training examples, "
                                f"got {args.batch_size}")
    if mesh is None:
        params, run = _train(model_name, args, model, loss, 10, data["--train"], data.get("--val"))
    else:
        optimizer = OPTIMIZERS[args.optimizer][0]
        params, run = _mesh.train(model_name, args, model, loss, 10, data, rows, mesh,
                                  make_optimizer=optimizer, learning_rate=_learning_rate(args, loss),
                                  fail=fail)
    run["settings"].update({"train": args.train, "val": args.val, "eval": args.eval})
    if model_name == "cnn":
        run["settings"]["network"] = args.model
    try:
        report = _report.build(model, params, run, train=data["--train"], val=data.get("--val"),
                               eval=data["--eval"])
    except KeyboardInterrupt:
        raise Interrupted(_interrupts.save_after_interrupt(model_name, args, model, params, run)) from None
    return _finish(model_name, args, model, params, report)


def _compute_dtype(args: argparse.Namespace) -> str | None:
    """``--compute-dtype`` for the model factories: None (plain float32) or "bfloat16"."""
    return None if args.compute_dtype == "float32" else args.compute_dtype


def run_mlp(args: argparse.Namespace) -> int:
    model_name = "mlp"
    if args.loss not in LOSSES:
        raise _fail(model_name, f"--loss must be one of {', '.join(LOSSES)} (names in jaxmath.losses), "
                                f"got {args.loss!r}")
    hidden = _parse_hidden(model_name, args.hidden)
    _check_activation(model_name, args)
    output = "identity" if args.loss == "softmax_cross_entropy" else "sigmoid"

    def make_model():
        from jaxmath.models import mlp

        return mlp.make((28 * 28, *hidden, 10), activation=args.activation, output=output,
                        compute_dtype=_compute_dtype(args))

    return _run_mnist(args, model_name, make_model, loss=args.loss)


def run_cnn(args: argparse.Namespace) -> int:
    def make_model():
        from jaxmath.models import lenet5

        return lenet5.make(variant=CNN_MODELS[args.model], compute_dtype=_compute_dtype(args))

    return _run_mnist(args, "cnn", make_model, loss="softmax_cross_entropy")


def run_logo(args: argparse.Namespace) -> int:
    model_name = "logo"
    hidden = _parse_hidden(model_name, args.hidden)
    _check_activation(model_name, args)
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
    from jaxmath.models import mlp

    model = mlp.make((2, *hidden, 2), activation=args.activation, output="identity")
    _check_memory(model_name, args, model, "softmax_cross_entropy", (2,))
    train_key, eval_key = jax.random.split(jax.random.key(args.seed + 1_000_003))
    scale = np.asarray(batman.INPUT_SCALE, np.float32)
    points, labels = (np.asarray(a) for a in batman.batman_logo(args.points, train_key))
    eval_points, eval_labels = (np.asarray(a) for a in batman.batman_logo(args.eval_points, eval_key))
    train, evaluation = (points / scale, labels), (eval_points / scale, eval_labels)
    params, run = _train(model_name, args, model, "softmax_cross_entropy", 2, train, None)
    run["settings"].update({"points": args.points, "eval_points": args.eval_points,
                            "input_scale": list(batman.INPUT_SCALE)})
    report = _report.build(model, params, run, train=train, val=None, eval=evaluation)
    save_args = argparse.Namespace(**{**vars(args), "json": None, "plot": None})
    print(_report.format_table(report))
    _report.write_outputs(model_name, save_args, model, params, report)  # the params first
    from jaxmath import plot

    try:
        plot.logo(model.apply, params, args.out, resolution=args.resolution,
                  accuracy=report["results"]["eval_accuracy"])
    except OSError as err:
        raise _fail(model_name, f"could not write {args.out!r}: {err}") from None
    print(f"wrote {args.out}")
    _report.write_outputs(model_name, argparse.Namespace(**{**vars(args), "save": None}), model, params, report)
    return _report.exit_status(model_name, report)
