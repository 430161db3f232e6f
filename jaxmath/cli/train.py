"""``jaxmath train``: train the notes' MNIST network (``mlp``) or the Batman-logo classifier (``logo``).

Both subcommands are thin shells around the library: ``jaxmath.models.mlp`` (init, apply),
``jaxmath.training`` (``make_classifier_loss``, ``fit`` with its progress bar, ``evaluate``),
``jaxmath.optim`` and ``jaxmath.datasets``. Every flag is checked before any data is loaded or any
compiled work starts; a bad value raises :class:`jaxmath.cli.CLIError` (one line, exit status 2).

Outputs: a results table on stdout (train/eval accuracy and loss, epoch time, samples/s, device);
``--json FILE`` the same as JSON plus the per-epoch history; ``--plot FILE.png`` the learning curves;
``--save DIR`` the trained params as ``params.npz`` (plain arrays, read back with allow_pickle=False) plus ``config.json``;
``logo --out FILE.png`` the logo as the trained network draws it.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jaxmath.cli import CLIError

LOSSES = {"mse": "sum_of_squares", "ce": "softmax_cross_entropy"}
ACTIVATIONS = ("sigmoid", "relu", "leaky_relu", "tanh", "identity")
# name -> (factory(learning_rate), default learning rate for loss "mse", for loss "ce")
OPTIMIZERS: dict[str, tuple[Callable[[Any, float], Any], float, float]] = {
    "sgd": (lambda optim, lr: optim.sgd(learning_rate=lr), 1.0, 0.1),
    "momentum": (lambda optim, lr: optim.sgd(learning_rate=lr, momentum=0.9), 0.1, 0.01),
    "nesterov": (lambda optim, lr: optim.sgd(learning_rate=lr, momentum=0.9, nesterov=True), 0.1, 0.01),
    "adam": (lambda optim, lr: optim.adam(learning_rate=lr), 1e-3, 1e-3),
    "adamw": (lambda optim, lr: optim.adamw(learning_rate=lr), 1e-3, 1e-3),
    "adagrad": (lambda optim, lr: optim.adagrad(learning_rate=lr), 0.05, 0.05),
    "rmsprop": (lambda optim, lr: optim.rmsprop(learning_rate=lr), 1e-3, 1e-3),
    "adadelta": (lambda optim, lr: optim.adadelta(learning_rate=lr), 1.0, 1.0),
}
LOGO_SCALE = (8.0, 4.0)  # the logo's box [-8, 8] x [-4, 4] mapped onto [-1, 1]^2 before the network


# ----------------------------------------------------------------------------- parser


def register(subparsers: Any, help_text: str) -> None:
    train = subparsers.add_parser("train", help=help_text, description=help_text)
    train.set_defaults(func=_missing_model)
    models = train.add_subparsers(dest="model", metavar="MODEL", parser_class=type(train))

    mlp = models.add_parser(
        "mlp",
        help="The notes' MNIST network (784-16-16-10 sigmoid by default).",
        description="Train an MLP on MNIST with jaxmath.training.fit and print a results table.",
    )
    mlp.add_argument("--dataset", default="mnist", help="data set (only 'mnist'; default mnist)")
    mlp.add_argument("--train", default="train", help="training split, e.g. 'train', 'test[:8000]' (default train)")
    mlp.add_argument("--eval", default="test", help="evaluation split, e.g. 'test', 'test[8000:]' (default test)")
    mlp.add_argument("--data-dir", default=None, help="MNIST cache root (default $JAXMATH_DATA_DIR or ~/.cache/jaxmath)")
    mlp.add_argument("--hidden", default="16,16", help="hidden layer widths, comma-separated (default 16,16)")
    mlp.add_argument("--activation", default="sigmoid", help=f"hidden activation: {', '.join(ACTIVATIONS)}")
    mlp.add_argument("--loss", default="mse", help="mse (the notes' sum of squares, sigmoid outputs) or ce "
                                                   "(softmax cross-entropy on logits); default mse")
    mlp.add_argument("--optimizer", default="sgd", help=f"one of {', '.join(OPTIMIZERS)} (default sgd)")
    mlp.add_argument("--lr", type=float, default=None, help="learning rate (default depends on optimizer and loss)")
    mlp.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    mlp.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    _add_common(mlp)
    mlp.set_defaults(func=run_mlp)

    logo = models.add_parser(
        "logo",
        help="Learn the Batman logo of seed 000 offline and write it as a PNG.",
        description="Train an MLP to classify points inside/outside the Batman curve and render the logo.",
    )
    logo.add_argument("--points", type=int, default=20_000, help="training points (default 20000)")
    logo.add_argument("--eval-points", type=int, default=5_000, help="evaluation points (default 5000)")
    logo.add_argument("--hidden", default="64,64", help="hidden layer widths (default 64,64)")
    logo.add_argument("--activation", default="tanh", help=f"hidden activation: {', '.join(ACTIVATIONS)}")
    logo.add_argument("--optimizer", default="adam", help=f"one of {', '.join(OPTIMIZERS)} (default adam)")
    logo.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    logo.add_argument("--epochs", type=int, default=60, help="epochs (default 60)")
    logo.add_argument("--batch-size", type=int, default=128, help="mini-batch size (default 128)")
    logo.add_argument("--out", default="batman_logo.png", help="PNG of the learned logo (default batman_logo.png)")
    logo.add_argument("--resolution", type=int, default=200, help="rendered pixels per unit of height / 8 "
                                                                  "(image is 2R x R; default 200)")
    _add_common(logo)
    logo.set_defaults(func=run_logo)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed for init and shuffling (default 0)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--plot", default=None, metavar="FILE.png", help="draw the learning curves (needs matplotlib)")
    parser.add_argument("--save", default=None, metavar="DIR", help="write params.npz and config.json into DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _missing_model(args: argparse.Namespace) -> int:
    raise CLIError("jaxmath train: error: choose what to train: 'jaxmath train mlp' or 'jaxmath train logo'")


# ----------------------------------------------------------------------------- flag checks


def _fail(model: str, message: str) -> CLIError:
    return CLIError(f"jaxmath train {model}: error: " + " ".join(str(message).split()))


def _parse_hidden(model: str, text: str) -> tuple[int, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        widths = ()
        bad = True
    else:
        bad = any(w < 1 for w in widths)
    if bad:
        raise _fail(model, f"--hidden must be comma-separated positive integers like 16,16, got {text!r}")
    return widths


def _check_common(model: str, args: argparse.Namespace) -> None:
    if args.activation not in ACTIVATIONS:
        raise _fail(model, f"--activation must be one of {', '.join(ACTIVATIONS)}, got {args.activation!r}")
    if args.optimizer not in OPTIMIZERS:
        raise _fail(model, f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {args.optimizer!r}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise _fail(model, f"--lr must be a finite number > 0, got {args.lr:g}")
    if args.epochs < 1:
        raise _fail(model, f"--epochs must be >= 1, got {args.epochs}")
    if args.batch_size < 1:
        raise _fail(model, f"--batch-size must be >= 1, got {args.batch_size}")
    if args.seed < 0:
        raise _fail(model, f"--seed must be >= 0, got {args.seed}")
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path is not None:
            _check_writable_file(model, flag, path)
    if args.save is not None and Path(args.save).exists() and not Path(args.save).is_dir():
        raise _fail(model, f"--save must name a directory, but {args.save!r} is a file")


def _check_writable_file(model: str, flag: str, path: str) -> None:
    from jaxmath.cli import output_file_problem

    problem = output_file_problem(flag, path)
    if problem:
        raise _fail(model, problem)


def _check_png(model: str, flag: str, path: str) -> None:
    if not path.lower().endswith(".png"):
        raise _fail(model, f"{flag} must name a .png file, got {path!r}")
    _check_writable_file(model, flag, path)
    try:
        import matplotlib  # noqa: F401  (only checked here; imported for real when drawing)
    except ImportError:
        raise _fail(model, f"{flag} needs matplotlib: pip install 'jaxmath[plot]'") from None


# ----------------------------------------------------------------------------- training


def _device_name() -> str:
    import jax

    device = jax.devices()[0]
    return f"{jax.default_backend()} ({device.device_kind}, {len(jax.devices())} device(s))"


def _train(model: str, args, sizes, loss, output, num_classes, train_data, eval_data):
    """Build params, loss and optimizer from the flags, run ``fit``, evaluate; return (params, report)."""
    import jax

    from jaxmath import optim, training
    from jaxmath.models import mlp

    factory, lr_mse, lr_ce = OPTIMIZERS[args.optimizer]
    lr = args.lr if args.lr is not None else (lr_mse if loss == "sum_of_squares" else lr_ce)
    optimizer = factory(optim, lr)
    scheme = "he" if args.activation in ("relu", "leaky_relu") else "glorot"
    init_key, shuffle_key = jax.random.split(jax.random.PRNGKey(args.seed))
    params = mlp.init(init_key, sizes, scheme=scheme)
    apply_fn = functools.partial(mlp.apply, activation=args.activation, output=output)
    loss_fn = training.make_classifier_loss(apply_fn, num_classes=num_classes, loss=loss)
    state = training.TrainState.create(params, optimizer, key=shuffle_key)
    try:
        with warnings.catch_warnings():
            # fit warns about a non-finite loss; the CLI reports it itself (table row, stderr, exit status 1).
            warnings.simplefilter("ignore", RuntimeWarning)
            result = training.fit(
                state, *train_data, loss_fn=loss_fn, optimizer=optimizer, epochs=args.epochs,
                batch_size=args.batch_size, num_classes=num_classes, validation_data=eval_data,
                progress=not args.no_progress,
            )
    except (ValueError, TypeError) as err:  # bad data caught by fit's checks before any training
        raise _fail(model, err) from None
    params = result.state.params
    final_train = jax.device_get(training.evaluate(params, *train_data, loss_fn=loss_fn))
    final_eval = jax.device_get(training.evaluate(params, *eval_data, loss_fn=loss_fn))
    times = [float(t) for t in result.history.get("epoch_time", [])]
    steady = times[1:] or times  # the first epoch includes compilation
    epoch_time = statistics.median(steady) if steady else math.nan
    trained = (len(train_data[1]) // args.batch_size) * args.batch_size
    config = {
        "model": model,
        "sizes": list(sizes),
        "activation": args.activation,
        "output": output,
        "loss": loss,
        "optimizer": args.optimizer,
        "learning_rate": lr,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "init_scheme": scheme,
    }
    results = {
        "train_accuracy": float(final_train["accuracy"]),
        "eval_accuracy": float(final_eval["accuracy"]),
        "train_loss": float(final_train["loss"]),
        "eval_loss": float(final_eval["loss"]),
        "train_examples": int(len(train_data[1])),
        "eval_examples": int(len(eval_data[1])),
        "epochs_run": len(times),
        "epoch_time_s": epoch_time,
        "first_epoch_time_s": times[0] if times else math.nan,
        "samples_per_s": trained / epoch_time if epoch_time > 0 else math.nan,
        "device": _device_name(),
        "params": mlp.count_params(params),
        "stop_reason": result.stop_reason,
    }
    history = {k: [float(x) for x in v] for k, v in result.history.items()}
    return params, {"config": config, "results": results, "history": history}


def _print_table(report: dict) -> None:
    c, r = report["config"], report["results"]
    print(
        f"jaxmath train {c['model']}: {'-'.join(map(str, c['sizes']))} {c['activation']} "
        f"({r['params']:,} params), loss {c['loss']}, {c['optimizer']} lr {c['learning_rate']:g}, "
        f"batch {c['batch_size']}, {r['epochs_run']} epoch(s)"
    )
    rows = [
        ("train accuracy", f"{r['train_accuracy']:.4f}  ({r['train_examples']:,} examples)"),
        ("eval accuracy", f"{r['eval_accuracy']:.4f}  ({r['eval_examples']:,} examples)"),
        ("train loss", f"{r['train_loss']:.4f}"),
        ("eval loss", f"{r['eval_loss']:.4f}"),
        ("epoch time", f"{r['epoch_time_s']:.3f} s  (train + eval, median over epochs after the first; "
                       f"first incl. compile {r['first_epoch_time_s']:.3f} s)"),
        ("samples/s", f"{r['samples_per_s']:,.0f}"),
        ("device", r["device"]),
    ]
    if r["stop_reason"] != "epochs":
        rows.append(("stopped", r["stop_reason"]))
    width = max(len(name) for name, _ in rows)
    print(f"  {'metric':<{width}}  value")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def _write_outputs(model: str, args, params, report: dict) -> None:
    try:
        if args.json is not None:
            with open(args.json, "w") as handle:
                json.dump(_json_safe(report), handle, indent=2, allow_nan=False)
        if args.plot is not None:
            plot_history(report["history"], args.plot, title=f"jaxmath train {model}")
        if args.save is not None:
            save_params(args.save, params, report)
    except OSError as err:
        raise _fail(model, f"could not write output: {err}") from None


def _json_safe(value):
    """Strict JSON: non-finite floats (a diverged run's loss) become null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_params(directory: str | os.PathLike, params, report: dict) -> None:
    """Write ``params.npz`` (``W0, b0, W1, b1, ...`` as plain float arrays) and ``config.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, (w, b) in enumerate(params):
        arrays[f"W{i}"], arrays[f"b{i}"] = np.asarray(w), np.asarray(b)
    np.savez(directory / "params.npz", **arrays)
    with open(directory / "config.json", "w") as handle:
        json.dump(_json_safe({"config": report["config"], "results": report["results"]}), handle, indent=2,
                  allow_nan=False)


def load_params(directory: str | os.PathLike) -> tuple[list, dict]:
    """Read back what ``--save`` wrote: ``(params as a list of (W, b) NumPy pairs, config dict)``."""
    directory = Path(directory)
    with np.load(directory / "params.npz", allow_pickle=False) as data:
        layers = len(data.files) // 2
        params = [(data[f"W{i}"], data[f"b{i}"]) for i in range(layers)]
    with open(directory / "config.json") as handle:
        config = json.load(handle)["config"]
    return params, config


def plot_history(history: dict, path: str, *, title: str = "") -> None:
    """Learning curves: loss and accuracy per epoch, train and eval, saved as a PNG."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for prefix, label in (("train", "train (mean over the epoch)"), ("val", "eval")):
            values = history.get(f"{prefix}_{metric}")
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


# ----------------------------------------------------------------------------- subcommands


def run_mlp(args: argparse.Namespace) -> int:
    model = "mlp"
    if args.dataset != "mnist":
        raise _fail(model, f"--dataset must be 'mnist', got {args.dataset!r}")
    if args.loss not in LOSSES:
        raise _fail(model, f"--loss must be mse or ce, got {args.loss!r}")
    hidden = _parse_hidden(model, args.hidden)
    _check_common(model, args)
    if args.plot is not None:
        _check_png(model, "--plot", args.plot)

    from jaxmath.datasets import load_mnist
    from jaxmath.datasets.mnist import SPLITS
    from jaxmath.datasets.splits import parse_split

    for flag, split in (("--train", args.train), ("--eval", args.eval)):
        try:
            parse_split(split, names=tuple(SPLITS))
        except (ValueError, TypeError) as err:
            raise _fail(model, f"{flag}: {err}") from None
    data = {}
    for flag, split in (("--train", args.train), ("--eval", args.eval)):
        try:
            data[flag] = load_mnist(split, args.data_dir)
        except (OSError, ValueError) as err:
            raise _fail(model, f"{flag} {split!r}: {err}") from None
        if len(data[flag][1]) == 0:
            raise _fail(model, f"{flag} {split!r} selects no examples")
    if args.batch_size > len(data["--train"][1]):
        raise _fail(model, f"--batch-size must be <= the {len(data['--train'][1])} training examples, "
                           f"got {args.batch_size}")

    loss = LOSSES[args.loss]
    output = "sigmoid" if loss == "sum_of_squares" else "identity"
    sizes = (28 * 28, *hidden, 10)
    params, report = _train(model, args, sizes, loss, output, 10, data["--train"], data["--eval"])
    report["config"].update({"dataset": "mnist", "train": args.train, "eval": args.eval})
    _print_table(report)
    _write_outputs(model, args, params, report)
    return _exit_status(model, report)


def _exit_status(model: str, report: dict) -> int:
    """1 when training stopped on a non-finite loss (its last finite params were still written), else 0."""
    reason = report["results"]["stop_reason"]
    if reason.startswith("non-finite"):
        print(f"jaxmath train {model}: {reason}", file=sys.stderr)
        return 1
    return 0


def run_logo(args: argparse.Namespace) -> int:
    model = "logo"
    hidden = _parse_hidden(model, args.hidden)
    _check_common(model, args)
    for flag, value in (("--points", args.points), ("--eval-points", args.eval_points),
                        ("--resolution", args.resolution)):
        if value < 1:
            raise _fail(model, f"{flag} must be >= 1, got {value}")
    if args.batch_size > args.points:
        raise _fail(model, f"--batch-size must be <= --points ({args.points}), got {args.batch_size}")
    _check_png(model, "--out", args.out)
    if args.plot is not None:
        _check_png(model, "--plot", args.plot)

    import jax

    from jaxmath.datasets import batman_logo

    train_key, eval_key = jax.random.split(jax.random.PRNGKey(args.seed + 1_000_003))
    scale = np.asarray(LOGO_SCALE, np.float32)
    points, labels = (np.asarray(a) for a in batman_logo(args.points, train_key))
    eval_points, eval_labels = (np.asarray(a) for a in batman_logo(args.eval_points, eval_key))
    sizes = (2, *hidden, 2)
    params, report = _train(model, args, sizes, "softmax_cross_entropy", "identity", 2,
                            (points / scale, labels), (eval_points / scale, eval_labels))
    report["config"].update({"points": args.points, "eval_points": args.eval_points, "input_scale": list(LOGO_SCALE)})
    _print_table(report)
    try:
        render_logo(params, args.out, activation=args.activation, resolution=args.resolution,
                    accuracy=report["results"]["eval_accuracy"])
    except OSError as err:
        raise _fail(model, f"could not write {args.out!r}: {err}") from None
    print(f"  logo written to {args.out}")
    report["results"]["logo_png"] = str(args.out)
    _write_outputs(model, args, params, report)
    return _exit_status(model, report)


def render_logo(params, path: str, *, activation: str, resolution: int = 200, accuracy: float | None = None) -> None:
    """Draw the class the network predicts on a grid over [-8, 8] x [-4, 4], with the true curve on top."""
    import jax.numpy as jnp
    from matplotlib.figure import Figure

    from jaxmath.datasets import batman_inside
    from jaxmath.models import mlp

    xs = np.linspace(-8, 8, 2 * resolution, dtype=np.float32)
    ys = np.linspace(-4, 4, resolution, dtype=np.float32)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    logits = mlp.apply(params, jnp.asarray(grid / np.asarray(LOGO_SCALE, np.float32)), activation=activation)
    predicted = np.asarray(jnp.argmax(logits, axis=-1)).reshape(resolution, 2 * resolution)
    truth = np.asarray(batman_inside(grid)).reshape(resolution, 2 * resolution)

    fig = Figure(figsize=(8, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.imshow(predicted, origin="lower", extent=(-8, 8, -4, 4), cmap="cividis_r", interpolation="nearest")
    ax.contour(xs, ys, truth.astype(np.float32), levels=[0.5], colors="red", linewidths=0.8)
    subtitle = f", eval accuracy {accuracy:.2%}" if accuracy is not None else ""
    ax.set_title(f"Batman logo learned by an MLP (red: the true curve{subtitle})")
    ax.set_aspect("equal")
    fig.savefig(path, dpi=100)
