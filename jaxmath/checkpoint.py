"""Checkpoints: pytrees of arrays saved atomically, one sub-directory per step, restored exactly.

Layout of ``directory``::

    step_00000012/
        arrays.npz       the leaves (``np.savez``, read back with ``allow_pickle=False``)
        manifest.json    tree structure (node kinds, NamedTuple names), dtypes, shapes, step, versions,
                         sha256 of arrays.npz, your metadata

A step is written into a temporary directory beside its target, every file and the directory are fsynced,
then ``os.replace`` renames it into place: a crash leaves either the old steps or the new one, never half of
one. ``restore`` skips (with a warning) a step without a manifest or whose arrays do not match their sha256,
and falls back to the newest complete step.

Leaves may be JAX arrays (gathered from any sharding with ``jax.device_get``), NumPy arrays, Python scalars
(restored as Python scalars) or typed PRNG keys (stored as key data plus the implementation name). bfloat16
and the other ml_dtypes types, which ``.npz`` cannot describe portably, are stored as unsigned-integer views
of the same width and the dtype name is kept in the manifest. Nodes may be dicts (string or integer keys),
lists, tuples, None and NamedTuples; without ``like=`` only jaxmath's own NamedTuples (``TrainState``, the
optimizer states) are rebuilt, looked up by qualified name inside the ``jaxmath`` package only.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath._files import fsync_directory, sha256_file

FORMAT_VERSION = 1
STEP_PATTERN = re.compile(r"^step_(\d{8,})$")
_TMP_PREFIX = ".tmp_step_"


def step_directory(directory: str | os.PathLike, step: int) -> Path:
    """The sub-directory that holds ``step``: ``directory / f"step_{step:08d}"``."""
    return Path(directory) / f"step_{int(step):08d}"


# ---------------------------------------------------------------- encoding the tree


def _is_namedtuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(type(node), "_fields")


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _encode(node: Any, path: str, arrays: dict | None) -> dict:
    """The manifest's description of ``node`` (recursively); leaves go into ``arrays`` when it is given."""
    if node is None:
        return {"kind": "none"}
    if _is_namedtuple(node):
        return {"kind": "namedtuple", "type": _qualified_name(type(node)), "fields": list(node._fields),
                "children": [_encode(v, f"{path}.{f}", arrays) for f, v in zip(node._fields, node)]}
    if isinstance(node, (tuple, list)):
        kind = "tuple" if isinstance(node, tuple) else "list"
        return {"kind": kind, "children": [_encode(v, f"{path}[{i}]", arrays) for i, v in enumerate(node)]}
    if isinstance(node, dict):
        keys = []
        for k in node:
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint: dict keys must be str or int, got {k!r} at {path or 'the root'}")
            keys.append(k)
        return {"kind": "dict", "keys": keys, "key_types": ["int" if isinstance(k, int) else "str" for k in keys],
                "children": [_encode(node[k], f"{path}[{k!r}]", arrays) for k in keys]}
    return _encode_leaf(node, path, arrays)


def _encode_leaf(leaf: Any, path: str, arrays: dict | None) -> dict:
    if isinstance(leaf, (bool, int, float)):
        container, value = "python", np.asarray(leaf)
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            value = np.asarray(leaf, np.int64)
    elif isinstance(leaf, jax.Array):
        container, value = "jax", leaf
    elif isinstance(leaf, (np.ndarray, np.generic)):
        container, value = "numpy", np.asarray(leaf)
    else:
        raise TypeError(
            f"checkpoint: leaf at {path or 'the root'} must be an array or a number, got {type(leaf).__name__}"
        )
    spec = {"kind": "leaf", "container": container, "path": path, "shape": list(np.shape(value))}
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        spec["dtype"] = "key"
        spec["key_impl"] = str(jax.random.key_impl(value))
        value = jax.random.key_data(value)
    else:
        spec["dtype"] = str(np.dtype(value.dtype))
    if arrays is not None:
        # device_get gathers a sharded array onto the host whatever its sharding; np.array copies, so a
        # buffer donated later cannot change what was saved.
        host = np.array(jax.device_get(value))
        if host.dtype == object:
            raise TypeError(f"checkpoint: leaf at {path} has dtype object; an .npz holds those only as serialised "
                            "Python objects, which run code when loaded, so they are never written")
        if host.dtype.kind == "V":
            # bfloat16, float8...: .npz would record an opaque void type; an unsigned view of the same width
            # round-trips bit for bit, and the manifest keeps the real dtype.
            spec["stored_as"] = f"uint{8 * host.dtype.itemsize}"
            host = host.view(spec["stored_as"])
        name = f"a{len(arrays)}"
        arrays[name] = host
        spec["array"] = name
    return spec


def describe(tree: Any) -> dict:
    """The manifest's description of ``tree`` (structure, kinds, shapes, dtypes) without any data.

    ``restore(..., like=tree)`` compares this description with the saved one.
    """
    return _encode(tree, "", None)


# ---------------------------------------------------------------- comparing descriptions


def _leaf_text(spec: dict) -> str:
    dtype = spec["dtype"] if spec["dtype"] != "key" else f"key<{spec.get('key_impl')}>"
    return f"{dtype}{spec['shape']}"


def _node_text(spec: dict) -> str:
    if spec["kind"] == "leaf":
        return f"array {_leaf_text(spec)}"
    if spec["kind"] == "namedtuple":
        return f"NamedTuple {spec['type']}"
    return {"none": "None", "dict": "dict", "list": "list", "tuple": "tuple"}[spec["kind"]]


def diff(saved: dict, expected: dict, path: str = "") -> list[str]:
    """Readable differences between two tree descriptions (``describe``), one line per difference."""
    where = path or "(root)"
    if saved["kind"] != expected["kind"] or saved.get("type") != expected.get("type"):
        return [f"{where}: saved {_node_text(saved)}, expected {_node_text(expected)}"]
    kind = saved["kind"]
    if kind == "leaf":
        if (saved["shape"], saved["dtype"], saved.get("key_impl")) != (
            expected["shape"], expected["dtype"], expected.get("key_impl")
        ):
            return [f"{where}: saved {_leaf_text(saved)}, expected {_leaf_text(expected)}"]
        return []
    if kind == "none":
        return []
    lines = []
    if kind == "dict":
        saved_keys, expected_keys = saved["keys"], expected["keys"]
        for k in saved_keys:
            if k not in expected_keys:
                lines.append(f"{path}[{k!r}]: only in the checkpoint")
        for k in expected_keys:
            if k not in saved_keys:
                lines.append(f"{path}[{k!r}]: missing from the checkpoint")
        for k in expected_keys:
            if k in saved_keys:
                lines += diff(saved["children"][saved_keys.index(k)],
                              expected["children"][expected_keys.index(k)], f"{path}[{k!r}]")
        return lines
    if kind == "namedtuple" and saved["fields"] != expected["fields"]:
        return [f"{where}: saved fields {saved['fields']}, expected {expected['fields']}"]
    if len(saved["children"]) != len(expected["children"]):
        return [f"{where}: saved {kind} of length {len(saved['children'])}, expected {len(expected['children'])}"]
    names = saved.get("fields") or range(len(saved["children"]))
    for name, a, b in zip(names, saved["children"], expected["children"]):
        lines += diff(a, b, f"{path}.{name}" if kind == "namedtuple" else f"{path}[{name}]")
    return lines


# ---------------------------------------------------------------- decoding


def _resolve(type_name: str, types: dict) -> type:
    """A NamedTuple class from its qualified name: given in ``types``, or defined inside jaxmath."""
    if type_name in types:
        return types[type_name]
    module_name, _, qualname = type_name.rpartition(".")
    # Only jaxmath's own modules are imported: a manifest must never make us import arbitrary code.
    if module_name == "jaxmath" or module_name.startswith("jaxmath."):
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            obj = None
        if isinstance(obj, type) and issubclass(obj, tuple) and hasattr(obj, "_fields"):
            return obj
    raise ValueError(
        f"checkpoint: cannot rebuild NamedTuple {type_name} (only jaxmath's own types are looked up): "
        "pass like=<a tree of the same structure> to restore"
    )


def _decode(spec: dict, arrays: Any, like: Any, types: dict, place: Callable) -> Any:
    kind = spec["kind"]
    if kind == "none":
        return None
    if kind == "leaf":
        return _decode_leaf(spec, arrays, place)
    if kind == "dict":
        keys = spec["keys"]
        return {k: _decode(c, arrays, None if like is None else like[k], types, place)
                for k, c in zip(keys, spec["children"])}
    kids = [_decode(c, arrays, None if like is None else like[i], types, place)
            for i, c in enumerate(spec["children"])]
    if kind == "list":
        return kids
    if kind == "tuple":
        return tuple(kids)
    cls = type(like) if like is not None else _resolve(spec["type"], types)
    return cls(*kids)


def _decode_leaf(spec: dict, arrays: Any, place: Callable) -> Any:
    value = arrays[spec["array"]]
    if "stored_as" in spec:
        value = value.view(jnp.dtype(spec["dtype"]))
    if spec["dtype"] == "key":
        return jax.random.wrap_key_data(place(value, spec), impl=spec["key_impl"])
    if list(value.shape) != spec["shape"]:
        raise ValueError(f"checkpoint: {spec['path']} has shape {list(value.shape)}, manifest says {spec['shape']}")
    if spec["container"] == "python":
        return value.item()
    if spec["container"] == "numpy":
        return value
    return place(value, spec)


def _placer(sharding: Any) -> Callable:
    if sharding is None:
        return lambda value, spec: jnp.asarray(value)
    if isinstance(sharding, jax.sharding.Sharding):
        return lambda value, spec: jax.device_put(value, sharding)
    if callable(sharding):
        def place(value, spec):
            target = sharding(spec["path"], tuple(value.shape))
            return jnp.asarray(value) if target is None else jax.device_put(value, target)
        return place
    raise TypeError(
        f"sharding must be a jax.sharding.Sharding or a callable (path, shape) -> Sharding, got {sharding!r}"
    )


# ---------------------------------------------------------------- files


def _versions() -> dict:
    from jaxmath import __version__ as jaxmath_version

    return {"jaxmath": jaxmath_version, "jax": jax.__version__, "numpy": np.__version__}


def _remove_stale_temporaries(directory: Path) -> None:
    # A save killed half way leaves its temporary directory; its name carries the writer's pid.
    for entry in directory.glob(_TMP_PREFIX + "*"):
        match = re.search(r"_pid(\d+)_", entry.name)
        if match and _pid_alive(int(match.group(1))):
            continue
        shutil.rmtree(entry, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _all_steps(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    steps = [int(m.group(1)) for p in directory.iterdir() if (m := STEP_PATTERN.match(p.name)) and p.is_dir()]
    return sorted(steps, reverse=True)


def _read_manifest(path: Path) -> tuple[dict | None, str | None]:
    """(manifest, None) for a complete step, else (None, why it is not)."""
    manifest_file, arrays_file = path / "manifest.json", path / "arrays.npz"
    if not manifest_file.is_file():
        return None, "no manifest.json (a partial save)"
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError) as err:
        return None, f"unreadable manifest.json ({err})"
    if not arrays_file.is_file():
        return None, "no arrays.npz"
    if sha256_file(arrays_file) != manifest.get("sha256"):
        return None, "arrays.npz does not match the sha256 in manifest.json (corrupt)"
    return manifest, None


# ---------------------------------------------------------------- public API


def save(directory: str | os.PathLike, tree: Any, *, step: int, metadata: dict | None = None,
         keep: int | None = 3) -> Path:
    """Save ``tree`` as step ``step`` of ``directory`` atomically, keeping the newest ``keep`` steps.

    Args:
      directory: the checkpoint directory (created if missing).
      tree: a pytree of dicts (str/int keys), lists, tuples, None and NamedTuples whose leaves are JAX or
        NumPy arrays (any dtype, bfloat16 and typed PRNG keys included; sharded arrays are gathered) or
        Python numbers.
      step: int >= 0, the step number (``fit`` uses the epoch).
      metadata: a JSON-serialisable dict stored in the manifest and returned by ``restore``.
      keep: how many of the newest steps to keep (None: all); older ones are deleted after the save.

    Returns:
      The path of the step's sub-directory (``directory/step_00000012``).
    """
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be an integer >= 0, got step={step!r}")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise ValueError(f"keep must be an integer >= 1 or None, got keep={keep!r}")
    metadata = {} if metadata is None else metadata
    try:
        metadata_json = json.loads(json.dumps(metadata, allow_nan=True))
    except (TypeError, ValueError) as err:
        raise TypeError(f"metadata must be JSON-serialisable: {err}") from err
    arrays: dict = {}
    structure = _encode(tree, "", arrays)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(directory)
    target = step_directory(directory, step)
    tmp = directory / f"{_TMP_PREFIX}{int(step):08d}_pid{os.getpid()}_{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        arrays_file = tmp / "arrays.npz"
        with open(arrays_file, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        manifest = {
            "format": FORMAT_VERSION,
            "step": int(step),
            "versions": _versions(),
            "sha256": sha256_file(arrays_file),
            "tree": structure,
            "metadata": metadata_json,
        }
        with open(tmp / "manifest.json", "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        fsync_directory(tmp)
        if target.exists():
            # os.replace cannot replace a non-empty directory: move the old step aside first.
            old = directory / f"{_TMP_PREFIX}old_pid{os.getpid()}_{uuid.uuid4().hex[:8]}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        fsync_directory(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        for old_step in _all_steps(directory)[keep:]:
            shutil.rmtree(step_directory(directory, old_step), ignore_errors=True)
    return target


def latest_step(directory: str | os.PathLike) -> int | None:
    """The newest complete step of ``directory`` (manifest present, sha256 correct), or None."""
    for step in _all_steps(Path(directory)):
        if _read_manifest(step_directory(directory, step))[0] is not None:
            return step
    return None


def restore(directory: str | os.PathLike, *, step: int | None = None, like: Any = None,
            sharding: Any = None, types: dict | None = None) -> tuple[Any, dict]:
    """Load a saved tree: the newest complete step (or ``step``), checked against ``like`` when given.

    A partial or corrupt step (no manifest, arrays not matching their sha256) is skipped with a
    ``RuntimeWarning`` and the next newest complete step is used. An explicit ``step`` must be complete.

    Args:
      directory: the checkpoint directory.
      step: the step to load (None: the newest complete one).
      like: a tree of the expected structure, shapes and dtypes (arrays or ``jax.ShapeDtypeStruct`` are
        not needed: any tree ``save`` accepts). Any difference raises ``ValueError`` listing every
        differing path (also printed to stderr); the result then uses ``like``'s NamedTuple classes.
      sharding: where to put the JAX-array leaves: None (the default device), a ``jax.sharding.Sharding``
        for every one, or a callable ``(path, shape) -> Sharding | None``. Any device count works: the
        saved arrays are whole.
      types: extra ``{qualified name: NamedTuple class}`` to rebuild without ``like`` (jaxmath's own are
        found by name).

    Returns:
      ``(tree, metadata)``: the tree (JAX leaves as ``jax.Array``, NumPy leaves as NumPy arrays, Python
      numbers as Python numbers) and the metadata dict given to ``save``.
    """
    directory = Path(directory)
    if step is not None:
        path = step_directory(directory, step)
        if not path.is_dir():
            raise FileNotFoundError(f"checkpoint: no step {step} in {directory} (steps: {_all_steps(directory)})")
        manifest, why = _read_manifest(path)
        if manifest is None:
            raise ValueError(f"checkpoint: step {step} in {directory} is unusable: {why}")
    else:
        manifest = None
        for candidate in _all_steps(directory):
            path = step_directory(directory, candidate)
            manifest, why = _read_manifest(path)
            if manifest is not None:
                break
            warnings.warn(f"checkpoint: skipping {path}: {why}", RuntimeWarning, stacklevel=2)
        if manifest is None:
            raise FileNotFoundError(f"checkpoint: no complete step in {directory}")
    if like is not None:
        lines = diff(manifest["tree"], describe(like))
        if lines:
            text = "\n".join(f"  {line}" for line in lines)
            print(f"checkpoint {path} differs from like:\n{text}", file=sys.stderr)
            raise ValueError(f"checkpoint {path} does not match like ({len(lines)} differences):\n{text}")
    with np.load(path / "arrays.npz", allow_pickle=False) as arrays:
        tree = _decode(manifest["tree"], arrays, like, dict(types or {}), _placer(sharding))
    return tree, manifest.get("metadata", {})


def read_manifest(directory: str | os.PathLike, *, step: int | None = None) -> dict:
    """The manifest of ``step`` (None: the newest complete step) without loading any array."""
    step = latest_step(directory) if step is None else step
    if step is None:
        raise FileNotFoundError(f"checkpoint: no complete step in {directory}")
    manifest, why = _read_manifest(step_directory(directory, step))
    if manifest is None:
        raise ValueError(f"checkpoint: step {step} in {directory} is unusable: {why}")
    return manifest
