"""``jaxmath train``'s device flags: ``--devices all|N`` (data parallel over this process's devices) and
``--distributed`` (JAX's multi-process runtime, ``jaxmath.devices.distributed``).

The flags are checked before any data is loaded. ``setup`` then starts ``jax.distributed`` when asked (before
anything else touches a JAX backend), builds the mesh and checks that the batch splits over it; ``load``
reads this process's contiguous rows of a split; ``train`` runs ``jaxmath.devices.parallel_fit.fit``.
"""

from __future__ import annotations

import argparse
import re
import warnings
from typing import Any, Callable

from jaxmath.cli import Interrupted

from jaxmath.devices.distributed import ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", default=None, metavar="all|N",
                        help="data parallel over all (or the first N) local devices: params replicated, each "
                             "batch split along its rows; the ragged last batch is padded and masked, not "
                             "dropped (default: one device, jaxmath.training.fit)")
    parser.add_argument("--distributed", action="store_true",
                        help="multi-process data parallel on JAX's runtime (jax.distributed.initialize): run "
                             "the same command once per process; each loads its share of the rows; process 0 "
                             "prints and writes the outputs")
    parser.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                        help=f"process 0's coordinator address (default ${ENV_COORDINATOR}; on Cloud TPU, SLURM "
                             "or Open MPI JAX finds it itself)")
    parser.add_argument("--num-processes", type=int, default=None, metavar="N",
                        help=f"how many processes take part (default ${ENV_NUM_PROCESSES})")
    parser.add_argument("--process-id", type=int, default=None, metavar="I",
                        help=f"this process's index, 0..N-1 (default ${ENV_PROCESS_ID})")


def uses_mesh(args: argparse.Namespace) -> bool:
    return getattr(args, "devices", None) is not None or getattr(args, "distributed", False)


def check_flags(args: argparse.Namespace, fail: Callable[[str], Exception]) -> None:
    """Refuse contradictory or malformed device flags (no JAX backend is touched)."""
    if args.devices is not None and args.devices != "all":
        if not re.fullmatch(r"[0-9]+", args.devices) or int(args.devices) < 1:
            raise fail(f"--devices must be 'all' or a positive integer, got {args.devices!r}")
    process_flags = [flag for flag, value in (("--coordinator", args.coordinator),
                                              ("--num-processes", args.num_processes),
                                              ("--process-id", args.process_id)) if value is not None]
    if process_flags and not args.distributed:
        raise fail(f"{process_flags[0]} needs --distributed")
    if args.distributed and args.devices not in (None, "all"):
        raise fail(f"--distributed uses every device of every process; drop --devices {args.devices}")
    if args.coordinator is not None and not re.fullmatch(r"[^\s:]+:[0-9]+", args.coordinator):
        raise fail(f"--coordinator must be HOST:PORT like 10.0.0.1:1234, got {args.coordinator!r}")
    if args.num_processes is not None and args.num_processes < 1:
        raise fail(f"--num-processes must be >= 1, got {args.num_processes}")
    if args.process_id is not None and args.num_processes is not None and \
            not 0 <= args.process_id < args.num_processes:
        raise fail(f"--process-id must be in [0, {args.num_processes}), got {args.process_id}")
    if uses_mesh(args) and (args.checkpoint is not None or args.resume):
        flag = "--distributed" if args.distributed else "--devices"
        raise fail(f"--checkpoint and --resume are not available with {flag} yet (use --save)")


def setup(args: argparse.Namespace, fail: Callable[[str], Exception]) -> Any:
    """Start ``jax.distributed`` (with ``--distributed``), build the mesh, check ``--batch-size`` against it.

    Returns:
      the ``Mesh``: over every process's devices with ``--distributed``, else over this process's first
      ``--devices`` devices.
    """
    import jax

    from jaxmath.devices import distributed, parallel, parallel_fit

    if args.distributed:
        try:
            distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id)
        except (ValueError, RuntimeError) as err:
            raise fail(f"--distributed: could not start jax.distributed ({' '.join(str(err).split())[:200]}); "
                       f"give --coordinator HOST:PORT --num-processes N --process-id I or set "
                       f"{ENV_COORDINATOR}, {ENV_NUM_PROCESSES}, {ENV_PROCESS_ID}") from None
        mesh = distributed.global_mesh()
    else:
        # Random bits that do not depend on the sharding: the same key shuffles the same way on 1 or N devices.
        jax.config.update("jax_threefry_partitionable", True)
        local = jax.local_devices()
        count = len(local) if args.devices == "all" else int(args.devices)
        if count > len(local):
            raise fail(f"--devices {count}: this process has only {len(local)} {local[0].platform} device(s)")
        mesh = parallel.make_mesh(local[:count])
    devices = mesh.devices.size
    if args.batch_size % devices:
        lower = args.batch_size - args.batch_size % devices
        hint = f"e.g. {lower} or {lower + devices}" if lower else f"e.g. {devices}"
        raise fail(f"--batch-size {args.batch_size} must be divisible by the {devices} devices of the mesh "
                   f"({parallel_fit.mesh_description(mesh)}): {hint}")
    return mesh


def load(split: str, data_dir: Any) -> tuple[tuple[Any, Any], int]:
    """This process's contiguous rows of ``split`` and the split's global row count."""
    from jaxmath.datasets import load_mnist
    from jaxmath.devices import distributed

    x, labels = load_mnist(split, data_dir)
    rows = distributed.shard_rows(len(labels))
    return (x[rows], labels[rows]), len(labels)


def train(model_name, args, model, loss, num_classes, data, rows, mesh, *, make_optimizer, learning_rate, fail):
    """``jaxmath train``'s training for ``--devices`` / ``--distributed``: the masked loss,
    ``devices.parallel_fit.fit``; returns ``(params, run)`` as the one-device path does, plus the run's own
    ``evaluate`` (every process's rows) for the report.

    ``data`` holds this process's rows of each split, ``rows`` the splits' global row counts;
    ``make_optimizer(optim, rate)`` builds the optimizer of ``--optimizer``.
    """
    import jax

    from jaxmath import optim, training
    from jaxmath.devices import distributed, parallel_fit

    lr = rate = learning_rate
    if args.lr_schedule == "cosine":
        steps = args.epochs * distributed.num_batches(rows["--train"], args.batch_size)
        rate = optim.cosine_decay(init_value=lr, decay_steps=steps)
    loss_fn = distributed.make_masked_classifier_loss(model, num_classes=num_classes, loss=loss)
    step = training.make_train_step(loss_fn, make_optimizer(optim, rate))
    init_key, shuffle_key = jax.random.split(jax.random.key(args.seed))
    settings = {"model": model_name, "loss": loss, "optimizer": args.optimizer, "learning_rate": lr,
                "lr_schedule": args.lr_schedule, "epochs": args.epochs, "batch_size": args.batch_size,
                "patience": args.patience, "seed": args.seed, "compute_dtype": args.compute_dtype,
                "devices": int(mesh.devices.size), "processes": jax.process_count()}
    val = data.get("--val")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the CLI reports a non-finite stop itself
            state, info = parallel_fit.fit(
                step.init(model.init(init_key), key=shuffle_key), *data["--train"], train_step=step, mesh=mesh,
                num_epochs=args.epochs, batch_size=args.batch_size, key=shuffle_key, global_rows=rows["--train"],
                validation_data=val, validation_rows=rows.get("--val"), patience=args.patience,
                progress=not args.no_progress)
    except KeyboardInterrupt:
        raise Interrupted(f"jaxmath train {model_name}: interrupted; nothing saved (data-parallel runs write "
                          "no checkpoints yet)") from None
    except (ValueError, TypeError) as err:
        raise fail(err) from None
    params = info.best_params if val is not None else state.params

    def evaluate(params, name, split_data):
        metrics = distributed.evaluate(params, *split_data, loss_fn=loss_fn, mesh=mesh,
                                       global_rows=rows[f"--{name}"])
        return {"accuracy": metrics["accuracy"], "loss": metrics["loss"], "examples": metrics["count"]}

    return params, {"loss_fn": loss_fn, "info": info, "settings": settings, "evaluate": evaluate,
                    "trained_rows": rows["--train"], "mesh": parallel_fit.mesh_description(mesh)}


def is_main_process() -> bool:
    """Only process 0 prints the table and writes files."""
    import jax

    return jax.process_index() == 0
