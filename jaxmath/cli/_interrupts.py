"""What ``jaxmath train`` keeps when a run is cut short: the checkpoint or the params, and the one line that
says where.

``fit`` (with ``checkpoint_dir``) saves the last completed epoch when Ctrl-C or SIGTERM reaches it and re-raises;
these helpers turn that into the command's message. With ``--save`` alone, training checkpoints into a private
directory beside the save (removed afterwards), so an interrupt still leaves the last completed epoch's params
where ``--save`` points, loadable with ``jaxmath.models.load``.
"""

from __future__ import annotations

import argparse


def fit_checkpoints() -> bool:
    import inspect

    from jaxmath import training

    return {"checkpoint_dir", "resume"} <= set(inspect.signature(training.fit).parameters)


def has_checkpoint(directory: str) -> bool:
    from jaxmath import checkpoint

    try:
        return checkpoint.latest_step(directory) is not None
    except (OSError, ValueError):
        return False


def interrupt_directory(args: argparse.Namespace):
    """A private checkpoint directory beside ``--save`` (same filesystem), used only if training is interrupted."""
    if args.save is None or not fit_checkpoints():
        return None
    import tempfile
    from pathlib import Path

    parent = Path(args.save).absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=parent, prefix=".jaxmath-interrupted-"))


def remove_tree(directory) -> None:
    import shutil

    shutil.rmtree(directory, ignore_errors=True)


def interrupted_message(model_name, args, model, checkpoint_dir, settings) -> str:
    """The one line printed on Ctrl-C or SIGTERM during training: which epoch was saved, where."""
    prefix = f"jaxmath train {model_name}: interrupted"
    if checkpoint_dir is None and args.save is not None:
        return prefix + "; nothing saved (this version's training.fit cannot checkpoint)"
    if checkpoint_dir is None:
        return prefix + "; nothing saved (pass --checkpoint DIR or --save DIR to keep completed epochs)"
    from jaxmath import checkpoint, models

    try:
        epoch = checkpoint.latest_step(checkpoint_dir)  # fit numbers its checkpoints by the epoch
        if epoch is None:
            return prefix + " before the first epoch completed; nothing saved"
        saved = None
        if args.save is not None:
            tree, _ = checkpoint.restore(checkpoint_dir, step=epoch)
            # What --save keeps at the end of a run: the best epoch's params when validating, else the last.
            params = tree["fit"]["best_params"] if getattr(args, "val", None) is not None else tree["state"].params
            metadata = {"settings": settings, "results": {"epochs_run": epoch, "stop_reason": "interrupted"}}
            saved = models.save(args.save, model, params, metadata=metadata)
        if args.checkpoint is None:
            return prefix + f"; the params of epoch {epoch} saved in {saved} (load with jaxmath.models.load)"
        also = f", its params in {saved}" if saved is not None else ""
        return (prefix + f"; epoch {epoch} saved in {checkpoint.step_directory(checkpoint_dir, epoch)}{also} "
                f"(continue with --checkpoint {args.checkpoint} --resume)")
    except (OSError, ValueError, KeyError) as err:
        return prefix + f"; saving the last epoch failed: {' '.join(str(err).split())}"


def save_after_interrupt(model_name, args, model, params, run) -> str:
    """Training finished but the evaluation was interrupted: the trained params are still saved."""
    prefix = f"jaxmath train {model_name}: interrupted after training"
    if args.save is None:
        return prefix + "; nothing saved (pass --save DIR to keep the params)"
    from jaxmath import models

    try:
        directory = models.save(args.save, model, params, metadata={"settings": run["settings"]})
    except OSError as err:
        return prefix + f"; saving the params failed: {err}"
    return prefix + f"; the params saved in {directory} (load with jaxmath.models.load)"
