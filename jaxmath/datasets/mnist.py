"""MNIST from the four standard IDX gzip files, with a verified, atomic download cache.

Files live in ``<root>/mnist/`` where ``root`` is the ``data_dir`` argument, else
``$JAXMATH_DATA_DIR``, else ``~/.cache/jaxmath``: the first use downloads them there; offline, copy the
four ``*-ubyte.gz`` files into ``<root>/mnist/`` yourself. A missing file is fetched from
several public mirrors in turn; its sha256 must match the canonical checksum and
it is written to a temporary file in the same directory, then moved into place
with ``os.replace``, so a failed or corrupted download never leaves a
half-written file in the cache (a ``.part`` file orphaned by a killed process is
removed by the next download). Each file has one overall deadline
(:data:`DEADLINE_S`, shared by its mirrors) besides the silence timeout of each
read, so a server that dribbles bytes is cut off; a download that lasts more
than a second shows a progress bar in bytes. Every file is parsed strictly:
wrong magic number, wrong count, wrong image size or truncated data raise an
error naming the file.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
import time
import zlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from jaxmath.datasets.download import DEADLINE_S, DownloadError, Fetcher, fetch_file
from jaxmath.datasets.download import _urlopen_bytes as _urlopen_bytes  # noqa: F401 (tests fetch with it)
from jaxmath.datasets.splits import parse_split, split_slice

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# name -> (images file, labels file, number of examples)
SPLITS: dict[str, tuple[str, str, int]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60_000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10_000),
}

SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)
IMAGE_SHAPE = (28, 28)

def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The cache root, absolute: ``data_dir``, else ``$JAXMATH_DATA_DIR``, else ``~/.cache/jaxmath``."""
    if data_dir is not None:
        return Path(data_dir).expanduser().absolute()
    env = os.environ.get("JAXMATH_DATA_DIR")
    if env:
        return Path(env).expanduser().absolute()
    return Path.home() / ".cache" / "jaxmath"


def download(
    filename: str,
    directory: str | os.PathLike,
    *,
    sha256: str | None = None,
    mirrors: Sequence[str] = MIRRORS,
    fetch: Fetcher | None = None,
    deadline: float = DEADLINE_S,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> Path:
    """``jaxmath.datasets.download.fetch_file`` with the canonical MNIST checksum and mirrors as defaults.

    Raises:
      ValueError: no canonical checksum for ``filename`` and no ``sha256`` given.
      DownloadError: every mirror failed (each line says why; a timeout reads "timed out: ...").
    """
    expected = sha256 if sha256 is not None else SHA256.get(filename)
    if expected is None:
        raise ValueError(f"no canonical sha256 known for {filename!r}; pass sha256=")
    return fetch_file(filename, directory, sha256=expected, mirrors=mirrors, fetch=fetch, deadline=deadline,
                      progress=progress, clock=clock)


def _read_gzip(path: Path) -> bytes:
    try:
        raw = open(path, "rb")
    except PermissionError:
        raise PermissionError(f"{path}: permission denied: the file cannot be read; fix its permissions") from None
    except IsADirectoryError:
        raise IsADirectoryError(_directory_in_the_way(path)) from None
    with raw:
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as handle:
                return handle.read()
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise ValueError(f"{path}: not a complete gzip file ({err}); delete it so it is downloaded again") \
                from None
        except OSError as err:  # the disk failed while reading: the file may well be fine
            raise OSError(f"{path}: could not be read: {err}") from None


def _directory_in_the_way(path: Path) -> str:
    return f"{path} is a directory, not the MNIST file: remove or rename it so the file can be put there"


def parse_idx(path: str | os.PathLike, *, magic: int, count: int | None = None) -> np.ndarray:
    """Parse one gzipped IDX file of unsigned bytes, checking every header field.

    IDX layout: a big-endian int32 magic number (``0x0803`` for images,
    ``0x0801`` for labels: type byte ``0x08`` = uint8, then the number of
    dimensions), one big-endian int32 per dimension, then the data.

    Args:
      path: the ``.gz`` file.
      magic: expected magic number (:data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`).
      count: expected number of examples (first dimension), or None to accept any.

    Returns:
      uint8 array of the shape the header declares: (n, 28, 28) or (n,).

    Raises:
      ValueError: naming ``path`` on a bad magic number, count, image size, or a
        data section shorter or longer than the header declares.
    """
    path = Path(path)
    raw = _read_gzip(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    (got_magic,) = struct.unpack(">i", raw[:4])
    if got_magic != magic:
        raise ValueError(f"{path}: bad IDX magic number 0x{got_magic:08x}, expected 0x{magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}i", raw[4:header])
    if count is not None and dims[0] != count:
        raise ValueError(f"{path}: header declares {dims[0]} examples, expected {count}")
    if ndim == 3 and tuple(dims[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{path}: header declares images of {dims[1]}x{dims[2]}, expected 28x28")
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise ValueError(
            f"{path}: data section has {len(raw) - header} bytes, the header {tuple(dims)} declares {size}"
            + (" (truncated file)" if len(raw) - header < size else "")
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _missing_message(missing: list[Path], failures: Sequence[tuple[str, str]]) -> str:
    """A few short lines: which files, the absolute folder, one line per mirror tried, what to do offline."""
    directory = missing[0].parent
    lines = [f"MNIST files missing: {', '.join(p.name for p in missing)}", f"  looked in {directory}"]
    lines += [f"  tried {mirror}: {reason}" for mirror, reason in failures]
    lines.append("  offline: copy the files there, or set JAXMATH_DATA_DIR to a folder that holds mnist/")
    return "\n".join(lines)


def ensure_files(
    filenames: Sequence[str],
    directory: Path,
    *,
    mirrors: Sequence[str] = MIRRORS,
    fetch: Fetcher | None = None,
) -> list[Path]:
    """Paths of ``filenames`` in ``directory``, downloading the missing ones.

    Raises:
      FileNotFoundError: a file is missing and no mirror delivered it. Once one file fails on every mirror
        the others are not tried (offline, each try would wait for the same timeouts again).
      IsADirectoryError: a directory sits where a file belongs.
      PermissionError: the cache folder cannot be written.
    """
    paths = [directory / name for name in filenames]
    for path in paths:
        if path.is_dir():
            raise IsADirectoryError(_directory_in_the_way(path))
        if path.is_file():
            continue
        try:
            download(path.name, directory, mirrors=mirrors, fetch=fetch)
        except DownloadError as err:
            still_missing = [p for p in paths if not p.is_file()]
            raise FileNotFoundError(_missing_message(still_missing, err.failures)) from None
    return paths


@functools.lru_cache(maxsize=4)
def _load_full(images_path: str, labels_path: str, count: int, _stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    images = parse_idx(images_path, magic=IMAGES_MAGIC, count=count)
    labels = parse_idx(labels_path, magic=LABELS_MAGIC, count=count)
    if labels.max(initial=0) > 9:
        raise ValueError(f"{labels_path}: labels must lie in [0, 10), found {int(labels.max())}")
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_mnist(
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] = MIRRORS,
    fetch: Fetcher | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images and labels of a split such as ``"test"``, ``"test[:8000]"`` or ``"train[90%:]"``.

    Args:
      split: ``"train"`` (60,000 examples) or ``"test"`` (10,000), optionally
        sliced: ``"test[100:200]"``, ``"train[:90%]"``, ``"train[-10%:]"``.
      data_dir: cache root; files are read from (and downloaded to)
        ``<data_dir>/mnist/``. Defaults to ``$JAXMATH_DATA_DIR``, else
        ``~/.cache/jaxmath``.
      mirrors: base URLs tried in turn for missing files.
      fetch: ``url -> bytes`` used for downloads (tests pass a fake one).

    Returns:
      ``(images, labels)``: images uint8 (n, 28, 28) with values 0..255,
      labels uint8 (n,) with values 0..9. Fresh, writable NumPy arrays.

    Raises:
      ValueError: a malformed split string, or a corrupt file (named).
      FileNotFoundError: files missing and not downloadable; says which files to put where.
    """
    parsed = parse_split(split, names=tuple(SPLITS))
    images_name, labels_name, count = SPLITS[parsed.name]
    directory = data_root(data_dir) / "mnist"
    images_path, labels_path = ensure_files((images_name, labels_name), directory, mirrors=mirrors, fetch=fetch)
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in (images_path, labels_path))
    images, labels = _load_full(str(images_path), str(labels_path), count, stamp)
    selection = split_slice(parsed, count)
    return images[selection].copy(), labels[selection].copy()
