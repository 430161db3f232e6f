"""What ``jaxmath train`` prints and writes: the results table (within 80 columns), ``--json``, ``--plot``,
``--save``, one ``wrote FILE`` line per file written."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from jaxmath.cli import CLIError, output_file_problem


def png_problem(flag: str, path: str) -> str | None:
    """Why ``path`` cannot be ``flag``'s PNG output (wrong suffix, missing folder, no matplotlib), or None."""
    if not path.lower().endswith(".png"):
        return f"{flag} must name a .png file, got {path!r}"
    problem = output_file_problem(flag, path)
    if problem:
        return problem
    if importlib.util.find_spec("matplotlib") is None:
        return f"{flag} needs matplotlib: pip install 'jaxmath[plot]'"
    return None


def output_problems(args: argparse.Namespace) -> str | None:
    """The first problem with ``--json``, ``--plot`` or ``--save``, checked before any work starts."""
    if args.json is not None:
        problem = output_file_problem("--json", args.json)
        if problem:
            return problem
    if args.plot is not None:
        problem = png_problem("--plot", args.plot)
        if problem:
            return problem
    if args.save is not None and Path(args.save).exists() and not Path(args.save).is_dir():
        return f"--save must name a directory, but {args.save!r} is a file"
    return None


def _device_name() -> str:
    import jax

    device = jax.devices()[0]
    return f"{jax.default_backend()} ({device.device_kind}, {len(jax.devices())} device(s))"


def build(model, params, run: dict, *, train, val, eval) -> dict:
    """The report: ``{"config": model.config, "settings": ..., "results": ..., "history": ...}``."""
    import jax

    from jaxmath import training
    from jaxmath.models import lenet5, mlp

    info, loss_fn = run["info"], run["loss_fn"]
    # A data-parallel run brings its own evaluation (every process's rows, the remainder padded and masked).
    evaluate = run.get("evaluate")
    results: dict[str, Any] = {}
    for name, data in (("train", train), ("val", val), ("eval", eval)):
        if data is None:
            continue
        if evaluate is None:
            metrics = jax.device_get(training.evaluate(params, *data, loss_fn=loss_fn))
            metrics["examples"] = len(data[1])
        else:
            metrics = evaluate(params, name, data)
        results[f"{name}_accuracy"] = float(metrics["accuracy"])
        results[f"{name}_loss"] = float(metrics["loss"])
        results[f"{name}_examples"] = int(metrics["examples"])
    times = [float(t) for t in info.history.get("epoch_time", [])]
    steady = times[1:] or times  # the first epoch includes compilation
    epoch_time = statistics.median(steady) if steady else math.nan
    batch_size = run["settings"]["batch_size"]
    # One device skips the n mod B rows its permutation leaves over; a mesh trains them in a padded batch.
    trained = run.get("trained_rows", (len(train[1]) // batch_size) * batch_size)
    results.update({
        "epochs_run": len(times),
        "best_epoch": int(info.best_epoch) if val is not None else None,
        "epoch_time_s": epoch_time,
        "first_epoch_time_s": times[0] if times else math.nan,
        "samples_per_s": trained / epoch_time if epoch_time > 0 else math.nan,
        "device": _device_name(),
        "mesh": run.get("mesh"),
        # The 1998 LeNet keeps C3's unconnected weights as zeros in a full kernel: count what the model trains.
        "params": (lenet5 if model.config["name"] == "lenet5" else mlp).count_params(params),
        "stop_reason": str(info.stop_reason),
    })
    history = {k: [float(x) for x in v] for k, v in info.history.items()}
    return {"config": model.config, "settings": run["settings"], "results": results, "history": history}


def format_table(report: dict) -> str:
    """A header of two lines and a two-column table, every line within 80 columns for default flags."""
    c, s, r = report["config"], report["settings"], report["results"]
    lines = [
        f"jaxmath train {s['model']}: {'-'.join(map(str, c['sizes']))} {c['activation']}, {r['params']:,} params",
        f"  loss {s['loss']}, {s['optimizer']} lr {s['learning_rate']:g}"
        f"{' cosine' if s.get('lr_schedule') == 'cosine' else ''}, batch {s['batch_size']}, "
        f"{r['epochs_run']} epoch(s)",
    ]
    rows = []
    for name in ("train", "val", "eval"):
        if f"{name}_accuracy" in r:
            where = s.get(name) or ("fresh points" if name == "eval" else "")
            detail = f"{r[f'{name}_examples']:,} examples" + (f": {where}" if where else "")
            rows.append((f"{name} accuracy", f"{r[f'{name}_accuracy']:.4f}  ({detail})"))
    rows += [(f"{name} loss", f"{r[f'{name}_loss']:.4f}") for name in ("train", "val", "eval")
             if f"{name}_loss" in r]
    rows += [
        ("epoch time", f"{r['epoch_time_s']:.3f} s  (median; first {r['first_epoch_time_s']:.2f} s incl. compile)"),
        ("samples/s", f"{r['samples_per_s']:,.0f}"),
        ("device", r["device"]),
    ]
    if r.get("mesh"):
        rows.append(("mesh", r["mesh"]))
    if s.get("compute_dtype", "float32") != "float32":
        rows.append(("compute dtype", f"{s['compute_dtype']} (params, optimizer state float32)"))
    if r.get("best_epoch") is not None:
        rows.append(("kept params", f"epoch {r['best_epoch']} (lowest val loss)"))
    if r["stop_reason"] != "epochs":
        rows.append(("stopped", r["stop_reason"]))
    width = max(len(name) for name, _ in rows)
    lines.append(f"  {'metric':<{width}}  value")
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def _json_safe(value):
    """Strict JSON: non-finite floats (a diverged run's loss) become null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_outputs(model_name: str, args: argparse.Namespace, model, params, report: dict) -> None:
    """``--json``, ``--plot``, ``--save``; prints one ``wrote PATH`` line per file."""
    from jaxmath import models

    written = []
    try:
        if args.json is not None:
            with open(args.json, "w") as handle:
                json.dump(_json_safe(report), handle, indent=2, allow_nan=False)
            written.append(args.json)
        if args.plot is not None:
            from jaxmath import plot

            plot.history(report["history"], args.plot, title=f"jaxmath train {model_name}")
            written.append(args.plot)
        if args.save is not None:
            metadata = _json_safe({"settings": report["settings"], "results": report["results"]})
            directory = models.save(args.save, model, params, metadata=metadata)
            written += [str(directory / "params.npz"), str(directory / "config.json")]
    except OSError as err:
        raise CLIError(f"jaxmath train {model_name}: error: could not write output: {err}") from None
    finally:
        for path in written:
            print(f"wrote {path}")


def exit_status(model_name: str, report: dict) -> int:
    """1 when training stopped on a non-finite loss (its last finite params were still written), else 0."""
    reason = report["results"]["stop_reason"]
    if reason.startswith("non-finite"):
        print(f"jaxmath train {model_name}: {reason}", file=sys.stderr)
        return 1
    return 0
