"""Checkpoints of ``fit`` and ``fit_ensemble``: what is saved each epoch and how a run picks it up again.

A fit checkpoint is a ``jaxmath.checkpoint`` step numbered by the epoch, holding::

    {"state": TrainState, "epoch_start": TrainState, "fit": {epoch, history, best_params, best_loss, ...}}

``epoch_start`` is the state the saved epoch started from (``fit`` replays from it when the next epoch's first
step finds the saved params evaluating non-finite); with it and the bookkeeping, a resumed run continues bit
for bit as if it had never stopped.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jaxmath import _validation as V
from jaxmath import checkpoint


def check_args(checkpoint_dir: Any, checkpoint_every: int, resume: bool) -> None:
    """Host checks of fit's checkpoint arguments."""
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise TypeError(f"checkpoint_dir must be a path or None, got {checkpoint_dir!r}")
    V.check_integer(checkpoint_every, name="checkpoint_every", minimum=1)
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, got {resume!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")


def namedtuple_types(tree: Any) -> dict:
    """``{qualified name: class}`` of every NamedTuple in ``tree``: a user's own types in params or an
    optimizer state are rebuilt from the classes of the state the caller passes in, never imported by name."""
    found: dict = {}

    def walk(node):
        if isinstance(node, tuple) and hasattr(type(node), "_fields"):
            found[checkpoint._qualified_name(type(node))] = type(node)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (tuple, list)) else ()
        for child in children:
            walk(child)

    walk(tree)
    return found


def load(checkpoint_dir: Any, state: Any, *, kind: str, state_key: str) -> tuple[Any, dict] | None:
    """The newest complete fit checkpoint of ``checkpoint_dir``, or None when there is none.

    Refuses (ValueError, listing every differing path) a checkpoint made by the other trainer or whose
    state differs from ``state`` in structure, shape or dtype (another model or optimizer).
    """
    if checkpoint.latest_step(checkpoint_dir) is None:
        return None
    manifest = checkpoint.read_manifest(checkpoint_dir)
    saved_kind = manifest.get("metadata", {}).get("kind")
    if saved_kind != kind:
        raise ValueError(f"{checkpoint_dir} holds a {saved_kind!r} checkpoint, not a {kind!r} one")
    state_index = manifest["tree"]["keys"].index(state_key)
    lines = checkpoint.diff(manifest["tree"]["children"][state_index], checkpoint.describe(state), state_key)
    if lines:
        text = "\n".join(f"  {line}" for line in lines)
        raise ValueError(f"the checkpoint in {checkpoint_dir} does not match the state given to resume it:\n{text}")
    return checkpoint.restore(checkpoint_dir, step=manifest["step"], types=namedtuple_types(state))


def history_arrays(history: dict) -> dict:
    """History lists as float64 (or per-model) NumPy arrays, which the checkpoint stores exactly."""
    return {name: np.asarray(values, np.float64) for name, values in history.items()}


def history_lists(history: dict) -> dict:
    """The inverse of ``history_arrays``: lists of the saved per-epoch entries."""
    return {name: [v.item() if np.ndim(v) == 0 else v for v in np.asarray(values)] for name, values in history.items()}


def interrupted_note(checkpoint_dir: Any, epoch: int | None) -> str:
    """The note added to a KeyboardInterrupt that ``fit`` re-raises."""
    if epoch is None:
        return f"fit: interrupted before the first epoch completed; nothing saved in {checkpoint_dir}"
    return (f"fit: interrupted; epoch {epoch} is saved in {checkpoint.step_directory(checkpoint_dir, epoch)} "
            "(resume with resume=True)")
