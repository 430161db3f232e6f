"""Save a ``Model`` with its params to a directory, and load both back.

A saved model is two plain files, readable without jaxmath, that run no code when loaded (``allow_pickle=False``):

- ``params.npz``: one array per leaf of the params pytree, in ``jax.tree_util`` leaf order, named
  ``"000 [0][0]"`` (the leaf's index, then its path in the tree as ``jax.tree_util.keystr`` writes it);
- ``config.json``: ``{"model": model.config, "metadata": ..., "params_sha256": ...}``.

Saving is atomic and the two files are one unit. Both are written in full to temporary files in the
directory and fsynced before either is moved into place with ``os.replace``, so a failed write (a full
disk, a read-only folder, an interrupt) leaves the previous save as it was. ``config.json`` records the
sha256 of the ``params.npz`` it belongs to, so the one window left (a kill between the two renames) is
detected by ``load`` instead of returning one run's params under another run's config.

Loading rebuilds the ``Model`` with ``jaxmath.models.from_config`` and takes the params' structure from
``jax.eval_shape(model.init, key)``, so no tree definition has to be stored: each array is checked against the
shape the model expects and cast to the dtype it expects.

    save("run/", model, params, metadata={"eval_accuracy": 0.95})
    model, params, metadata = load("run/")
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxmath._files import fsync_directory, sha256_file
from jaxmath.models.model import Model, from_config

__all__ = ["save", "load", "PARAMS_FILE", "CONFIG_FILE", "write_atomic"]

PARAMS_FILE = "params.npz"
CONFIG_FILE = "config.json"


def _leaf_names(params: Any) -> list[str]:
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    return [f"{i:03d} {jax.tree_util.keystr(path)}" for i, path in enumerate(paths)]


def _host_array(leaf: Any) -> np.ndarray:
    array = np.asarray(jax.device_get(leaf))
    # bfloat16 and other ml_dtypes types are not NumPy-native: np.load(allow_pickle=False) refuses them.
    # float32 holds them exactly; load casts back to the dtype the model's init gives.
    if array.dtype.kind == "V" or array.dtype.name == "bfloat16":
        array = array.astype(np.float32)
    return array


def save(directory: str | os.PathLike, model: Model, params: Any, *, metadata: dict | None = None) -> Path:
    """Write ``params.npz`` and ``config.json`` into ``directory`` (created if missing).

    Args:
      directory: where the two files go; existing files of the same names are replaced.
      model: the ``Model`` the params belong to; its ``config`` is written (it must be JSON-serialisable).
      params: the params pytree (arrays on any device; brought to the host).
      metadata: optional JSON-serialisable dict stored beside the config (training settings, results).

    Returns:
      The directory as a ``Path``.
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a jaxmath.models.Model (e.g. mlp.make(...)), got {type(model).__name__}")
    json.dumps({"model": model.config, "metadata": metadata}, allow_nan=False)  # fails before any file is touched
    leaves = jax.tree_util.tree_leaves(params)
    arrays = dict(zip(_leaf_names(params), (_host_array(leaf) for leaf in leaves)))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    params_tmp = _temp_file(directory, PARAMS_FILE, lambda handle: np.savez(handle, **arrays))
    try:
        digest = sha256_file(params_tmp)
        text = json.dumps({"model": model.config, "metadata": metadata, "params_sha256": digest},
                          indent=2, allow_nan=False)
        config_tmp = _temp_file(directory, CONFIG_FILE, lambda handle: handle.write((text + "\n").encode()))
    except BaseException:
        params_tmp.unlink(missing_ok=True)
        raise
    # Both files are complete on disk: only now does either replace the previous save.
    # The params rename is the commit point: a kill before the config's rename leaves that config's
    # complete temporary file, which ``load`` recognises by its params_sha256.
    os.replace(params_tmp, directory / PARAMS_FILE)
    os.replace(config_tmp, directory / CONFIG_FILE)
    fsync_directory(directory)
    for stale in _temp_files(directory):  # left by saves that were killed
        stale.unlink(missing_ok=True)
    return directory


def _temp_files(directory: Path) -> list[Path]:
    return [p for name in (PARAMS_FILE, CONFIG_FILE) for p in directory.glob(f".{name}.*.tmp")]


def _temp_file(directory: Path, name: str, write) -> Path:
    """``write(handle)`` into a fsynced hidden temporary file beside ``directory / name``; its path."""
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return Path(handle.name)


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a fsynced temporary file and ``os.replace``: all of it or nothing."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    os.replace(_temp_file(parent, path.name, lambda handle: handle.write(data)), path)
    fsync_directory(parent)
    return path


def load(directory: str | os.PathLike) -> tuple[Model, Any, dict | None]:
    """Read back what :func:`save` wrote: ``(model, params, metadata)``.

    Args:
      directory: a directory holding ``params.npz`` and ``config.json``.

    Returns:
      ``model`` rebuilt from its config, ``params`` as the pytree ``model.init`` builds (jax arrays of the
      model's dtypes), and the saved ``metadata`` (None when none was saved).

    Raises:
      FileNotFoundError: a file is missing. ValueError: the arrays do not match the model's params, or
      ``params.npz`` is not the file ``config.json`` was saved with.
    """
    directory = Path(directory)
    for name in (CONFIG_FILE, PARAMS_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name} not found: not a directory written by jaxmath.models.save")
    saved = json.loads((directory / CONFIG_FILE).read_text())
    digest = saved.get("params_sha256")  # absent in saves made before it was recorded
    if digest is not None and sha256_file(directory / PARAMS_FILE) != digest:
        saved = _committed_config(directory, sha256_file(directory / PARAMS_FILE))
    if saved is None:
        raise ValueError(f"{directory / PARAMS_FILE} is not the params file {directory / CONFIG_FILE} was "
                         "written with (sha256 differs): the two files come from different saves")
    model = from_config(saved["model"])
    expected = jax.eval_shape(model.init, jax.random.key(0))
    names = _leaf_names(expected)
    with np.load(directory / PARAMS_FILE, allow_pickle=False) as data:
        if sorted(data.files) != sorted(names):
            raise ValueError(f"{directory / PARAMS_FILE} holds arrays {sorted(data.files)}, "
                             f"the model's params need {names}")
        arrays = [data[name] for name in names]
    leaves = []
    for name, array, want in zip(names, arrays, jax.tree_util.tree_leaves(expected)):
        if array.shape != want.shape:
            raise ValueError(f"{directory / PARAMS_FILE}: array {name!r} has shape {array.shape}, "
                             f"the model expects {want.shape}")
        leaves.append(jax.numpy.asarray(array, dtype=want.dtype))
    params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(expected), leaves)
    return model, params, saved.get("metadata")


def _committed_config(directory: Path, params_digest: str) -> dict | None:
    """The config whose save was killed between its two renames: its complete temporary file, or None."""
    for candidate in directory.glob(f".{CONFIG_FILE}.*.tmp"):
        try:
            saved = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(saved, dict) and saved.get("params_sha256") == params_digest:
            return saved
    return None
