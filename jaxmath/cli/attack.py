"""``jaxmath attack``: clean and robust accuracy of a saved model under FGSM or PGD, for a list of ε.

A thin shell over ``jaxmath.adversarial``: the whole curve is one ``robust_accuracy`` call (the attack over all
ε in one compiled program), success recomputed from the logits of the attacked images. ``--plot`` draws a few test
digits beside their attacked versions (``jaxmath.plot.adversarial_examples``). Every flag and output path is
checked before the model or the data are loaded.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from jaxmath.cli import CLIError, output_file_problem
from jaxmath.cli import _report, _saved

COMMAND = "jaxmath attack"
METHODS = ("fgsm", "pgd")
LOSSES = ("cross_entropy", "cw_margin")  # the names of jaxmath.adversarial's losses
NORMS = ("linf", "l2")
PGD_DEFAULTS = {"steps": 40, "step_size": 0.01, "restarts": 1, "norm": "linf"}
PLOTTED = 6  # test digits in the --plot grid


def register(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "attack", help=help_text,
        description="Attack a model saved by 'jaxmath train mlp|cnn --save DIR' with FGSM or PGD and print its "
                    "clean and robust accuracy for each --eps (jaxmath.adversarial.robust_accuracy).")
    _saved.add_model_flags(parser)
    parser.add_argument("--method", default="pgd", help="fgsm or pgd (default pgd)")
    parser.add_argument("--eps", default="0.1,0.2,0.3", metavar="LIST",
                        help="attack radii, comma-separated, each > 0 (pixels are in [0, 1]; default 0.1,0.2,0.3)")
    parser.add_argument("--loss", default="cross_entropy",
                        help="objective the attack ascends: cross_entropy or cw_margin (default cross_entropy)")
    pgd = parser.add_argument_group("PGD only")
    pgd.add_argument("--steps", type=int, default=None, help="gradient steps (default 40)")
    pgd.add_argument("--step-size", type=float, default=None, help="step size α (default 0.01)")
    pgd.add_argument("--restarts", type=int, default=None,
                     help="random restarts; the strongest example per input is kept (default 1)")
    pgd.add_argument("--norm", default=None, help="linf or l2 ball (default linf)")
    parser.add_argument("--eval", default="test", metavar="SPLIT", help="images to attack (default test)")
    parser.add_argument("--samples", type=int, default=None, metavar="N",
                        help="attack only the first N images of --eval (default all)")
    parser.add_argument("--batch-size", type=int, default=1000, help="images per attacked batch (default 1000)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--plot", default=None, metavar="FILE.png",
                        help=f"draw {PLOTTED} images, clean and attacked at each eps, with the predicted labels")
    parser.set_defaults(func=run)


def _fail(message: str) -> CLIError:
    return CLIError(f"{COMMAND}: error: {message}")


def parse_eps(text: str) -> list[float]:
    """``"0.1,0.2"`` -> ``[0.1, 0.2]``; refused in one line unless every entry is a finite number > 0."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise _fail(f"--eps must be comma-separated numbers like 0.1,0.2,0.3, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise _fail(f"--eps values must be finite and > 0, got {part.strip()!r} in {text!r}")
        values.append(value)
    return values


def _check(args: argparse.Namespace) -> list[float]:
    if args.method not in METHODS:
        raise _fail(f"--method must be one of {', '.join(METHODS)}, got {args.method!r}")
    if args.loss not in LOSSES:
        raise _fail(f"--loss must be one of {', '.join(LOSSES)}, got {args.loss!r}")
    eps = parse_eps(args.eps)
    if args.method == "fgsm":
        given = [f"--{name.replace('_', '-')}" for name in PGD_DEFAULTS if getattr(args, name) is not None]
        if given:
            raise _fail(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to --method pgd only "
                        "(FGSM is one step of size eps in the L∞ ball)")
    for name, default in PGD_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.norm not in NORMS:
        raise _fail(f"--norm must be one of {', '.join(NORMS)}, got {args.norm!r}")
    for flag, value in (("--steps", args.steps), ("--restarts", args.restarts), ("--batch-size", args.batch_size),
                        ("--samples", args.samples)):
        if value is not None and value < 1:
            raise _fail(f"{flag} must be >= 1, got {value}")
    _saved.check_positive(COMMAND, "--step-size", args.step_size)
    _saved.check_seed(COMMAND, args.seed)
    problem = output_file_problem("--json", args.json) if args.json is not None else None
    if problem is None and args.plot is not None:
        problem = _report.png_problem("--plot", args.plot)
    if problem:
        raise _fail(problem)
    _saved.check_model_dir(COMMAND, args.model)
    return eps


def _attack_options(args: argparse.Namespace) -> dict:
    if args.method == "fgsm":
        return {"loss": args.loss}
    return {"loss": args.loss, "num_steps": args.steps, "step_size": args.step_size, "norm": args.norm,
            "num_restarts": args.restarts}


def _describe_attack(args: argparse.Namespace) -> str:
    if args.method == "fgsm":
        return f"fgsm (linf, {args.loss})"
    return (f"pgd ({args.norm}, {args.loss}, {args.steps} steps of {args.step_size:g}, "
            f"{args.restarts} restart{'s' if args.restarts > 1 else ''})")


def format_table(result: dict) -> str:
    """The header and one row per ε, within 80 columns."""
    s, r = result["settings"], result["results"]
    n = r["examples"]
    lines = [f"{COMMAND}: {s['attack']}",
             f"  model {s['network']}, {n:,} examples: {s['eval']}",
             f"  {'eps':<8}  {'accuracy':<8}  correct"]
    rows = [("clean", r["clean_accuracy"])] + list(zip((f"{e:g}" for e in r["eps"]), r["accuracy"]))
    lines += [f"  {name:<8}  {acc:<8.4f}  {round(acc * n):,}" for name, acc in rows]
    lines.append(f"  attack time {r['attack_time_s']:.2f} s for the whole curve (one compile, included)")
    return "\n".join(lines)


def _plot(args, model, params, x, labels, eps, key) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxmath import adversarial, plot

    x, labels = jnp.asarray(x[:PLOTTED]), jnp.asarray(labels[:PLOTTED])
    options = _attack_options(args)
    attacked = []
    for e in eps:  # eps is traced in the attacks: one compile for all of them
        if args.method == "fgsm":
            attacked.append(adversarial.fgsm(model.apply, params, x, labels, eps=e, **options))
        else:
            attacked.append(adversarial.pgd(model.apply, params, x, labels, key, eps=e, **options))
    x_adv = jnp.stack(attacked)
    predict = jax.jit(lambda images: jnp.argmax(model.apply(params, images), axis=-1))
    predicted_adv = np.stack([np.asarray(predict(a)) for a in x_adv])
    plot.adversarial_examples(np.asarray(x), np.asarray(x_adv), args.plot, eps=eps, labels=np.asarray(labels),
                              predicted=np.asarray(predict(x)), predicted_adv=predicted_adv,
                              title=f"{COMMAND}: {_describe_attack(args)}")


def run(args: argparse.Namespace) -> int:
    eps = _check(args)
    model, params, network = _saved.load_model(COMMAND, args.model)
    x, labels = _saved.load_images(COMMAND, "--eval", args.eval, args.data_dir)
    if args.samples is not None:
        if args.samples > len(labels):
            raise _fail(f"--samples must be <= the {len(labels):,} images of --eval {args.eval!r}, "
                        f"got {args.samples:,}")
        x, labels = x[:args.samples], labels[:args.samples]
    x = x.reshape(len(x), -1)  # both saved MNIST networks read (n, 784)

    import jax

    from jaxmath import adversarial

    key = jax.random.key(args.seed)
    start = time.perf_counter()
    try:
        curve = adversarial.robust_accuracy(model.apply, params, x, labels, key, eps=eps, attack=args.method,
                                            batch_size=min(args.batch_size, len(labels)), **_attack_options(args))
    except (ValueError, TypeError) as err:
        raise _fail(" ".join(str(err).split())) from None
    elapsed = time.perf_counter() - start
    settings = {"model": args.model, "network": network, "method": args.method, "attack": _describe_attack(args),
                "eval": args.eval + (f" (first {args.samples:,})" if args.samples is not None else ""),
                "seed": args.seed, **_attack_options(args)}
    result = {"config": model.config, "settings": settings,
              "results": {"examples": int(len(labels)), "clean_accuracy": float(curve.clean_accuracy),
                          "eps": [float(e) for e in curve.eps], "accuracy": [float(a) for a in curve.accuracy],
                          "attack_time_s": elapsed}}
    print(format_table(result))
    written = []
    try:
        if args.json is not None:
            with open(args.json, "w") as handle:
                json.dump(result, handle, indent=2, allow_nan=False)
            written.append(args.json)
        if args.plot is not None:
            _plot(args, model, params, x, labels, eps, key)
            written.append(args.plot)
    except OSError as err:
        raise _fail(f"could not write output: {err}") from None
    finally:
        for path in written:
            print(f"wrote {path}")
    return 0
