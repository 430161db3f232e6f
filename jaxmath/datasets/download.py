"""Fetch one file from a list of mirrors: verified by sha256, bounded in time, atomic in the cache.

- **Bounded**: one deadline per file, shared by all its mirrors, besides a silence timeout per read; a server
  that dribbles bytes is cut off, and the socket's timeout shrinks to the time left before every read.
- **Visible**: a download still running after a second shows a tqdm progress bar in bytes (tqdm is imported
  only then).
- **Atomic**: the verified bytes go to a ``.part`` file beside the target, fsynced, then ``os.replace``; a
  ``.part`` file orphaned by a killed process is removed by the next download (a live one holds a lock).
- **Clear**: a timeout, a read-only cache and a file in the way each give one exact line.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

# A fetcher returns the whole payload as bytes, or streams it: an iterable of byte chunks, or a file-like
# object with read(size) (and optionally a ``length``); streamed payloads obey the deadline chunk by chunk.
Fetcher = Callable[[str], Any]

DEADLINE_S = 120.0  # the most one file may take, over all its mirrors
SILENCE_S = 20.0  # the longest wait for the next bytes (or for a connection)
PROGRESS_AFTER_S = 1.0  # a download still running after this long gets a progress bar
CHUNK = 1 << 16


class DownloadError(OSError):
    """No mirror delivered a file whose sha256 matches the canonical checksum.

    ``failures`` lists ``(mirror, reason)`` pairs, one per mirror tried.
    """

    def __init__(self, filename: str, failures: Sequence[tuple[str, str]]):
        self.filename = filename
        self.failures = list(failures)
        lines = [f"could not download {filename}:"] + [f"  tried {m}: {r}" for m, r in self.failures]
        self.message = "\n".join(lines if self.failures else [f"could not download {filename}: no mirrors given"])
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def _short_reason(err: BaseException, limit: int = 70) -> str:
    """One short line for a failed fetch: the exception type and the first line of its message, cut at ``limit``."""
    text = " ".join(str(err).split()) or "no message"
    text = f"{type(err).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _open_url(url: str, *, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "jaxmath"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (fixed mirror list)


def _urlopen_bytes(url: str, *, timeout: float = SILENCE_S, deadline: float = DEADLINE_S) -> bytes:
    """The bytes at ``url``: at most ``timeout`` s of silence per read and ``deadline`` s in all."""
    clock = time.monotonic
    with _open_url(url, timeout=min(timeout, deadline)) as response:
        return _receive(response, name=url.rsplit("/", 1)[-1], deadline_at=clock() + deadline, deadline=deadline,
                        silence=timeout, clock=clock, progress=False)


def _timeout_message(got: int, total: int | None, deadline: float) -> str:
    of = f" of {total:,}" if total else ""
    return f"timed out: {got:,}{of} bytes received within the {deadline:g} s deadline for one file"


class _Silence(Exception):
    """A read waited ``seconds`` for bytes; ``deadline`` says whether the time left was the limit."""

    def __init__(self, seconds: float, deadline: bool):
        super().__init__(seconds, deadline)
        self.seconds, self.deadline = seconds, deadline


def _chunks(payload: Any, silence: float, deadline_at: float, clock: Callable[[], float]) -> Iterable[bytes]:
    """The chunks of a streamed payload; before each read of a socket, its timeout shrinks to the time left."""
    if not hasattr(payload, "read"):
        yield from payload
        return
    # read1 returns what has arrived (one socket read); read(n) would block until n bytes came.
    read = getattr(payload, "read1", payload.read)
    while True:
        # http.client drops its socket once the body is read: look it up before every read.
        sock = getattr(getattr(getattr(payload, "fp", None), "raw", None), "_sock", None)
        left = deadline_at - clock()
        limit = max(min(silence, left), 0.001)
        if sock is not None:
            try:
                sock.settimeout(limit)
            except OSError:
                pass
        try:
            chunk = read(CHUNK)
        except TimeoutError:
            raise _Silence(limit, left < silence) from None
        if not chunk:
            return
        yield chunk


def _receive(payload: Any, *, name: str, deadline_at: float, deadline: float, silence: float,
             clock: Callable[[], float], progress: bool) -> bytes:
    """Collect a fetcher's payload, cutting it off at ``deadline_at``; a tqdm bar (bytes) after a second."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    total = getattr(payload, "length", None)
    if hasattr(payload, "headers"):
        length = payload.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else total
    start, parts, got, bar = clock(), [], 0, None
    try:
        for chunk in _chunks(payload, silence, deadline_at, clock):
            parts.append(chunk)
            got += len(chunk)
            now = clock()
            if now > deadline_at:
                raise TimeoutError(_timeout_message(got, total, deadline))
            if bar is None and progress and now - start > PROGRESS_AFTER_S:
                from tqdm import tqdm  # only a slow download pays for importing it

                bar = tqdm(total=total, initial=got, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                           leave=False, dynamic_ncols=True)
            elif bar is not None:
                bar.update(len(chunk))
    except _Silence as err:
        if err.deadline:
            raise TimeoutError(_timeout_message(got, total, deadline)) from None
        raise TimeoutError(f"timed out: no bytes for {err.seconds:g} s after {got:,} bytes") from None
    finally:
        if bar is not None:
            bar.close()
    return b"".join(parts)


def _fetch(fetch: Fetcher | None, url: str, *, deadline_at: float, deadline: float,
           clock: Callable[[], float], progress: bool) -> bytes:
    name = url.rsplit("/", 1)[-1]
    left = deadline_at - clock()
    if fetch is None:
        try:
            response = _open_url(url, timeout=max(min(SILENCE_S, left), 0.001))
        except (TimeoutError, urllib.error.URLError) as err:
            if not isinstance(getattr(err, "reason", err), TimeoutError):
                raise
            if left < SILENCE_S:
                raise TimeoutError(f"timed out: no response within the {deadline:g} s deadline for one file") \
                    from None
            raise TimeoutError(f"timed out: no response for {SILENCE_S:g} s") from None
        with response:
            return _receive(response, name=name, deadline_at=deadline_at, deadline=deadline, silence=SILENCE_S,
                            clock=clock, progress=progress)
    payload = fetch(url)
    try:
        return _receive(payload, name=name, deadline_at=deadline_at, deadline=deadline, silence=SILENCE_S,
                        clock=clock, progress=progress)
    finally:
        close = getattr(payload, "close", None)
        if close is not None:
            close()


def _remove_stale_parts(directory: Path, filename: str) -> None:
    """Delete ``.part`` files left by killed downloads of ``filename`` (a live one holds a lock on its own)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): leave them
        return
    for part in directory.glob(f".{filename}.*.part"):
        try:
            with open(part, "rb") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                part.unlink(missing_ok=True)
        except OSError:
            continue  # locked by a download in progress, or already gone


def _lock(handle: Any) -> None:
    try:
        import fcntl
    except ImportError:
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _cache_error(err: OSError, directory: Path) -> OSError:
    """One exact line for the ways the cache folder cannot take the file."""
    if isinstance(err, PermissionError):
        return PermissionError(f"cannot write to {directory}: permission denied; make it writable, or set "
                               "JAXMATH_DATA_DIR (or data_dir) to a folder you can write")
    if isinstance(err, (NotADirectoryError, FileExistsError)):
        return NotADirectoryError(f"cannot create {directory}: a file is in the way; remove it, or set "
                                  "JAXMATH_DATA_DIR (or data_dir) to another folder")
    return err


def fetch_file(
    filename: str,
    directory: str | os.PathLike,
    *,
    sha256: str,
    mirrors: Sequence[str],
    fetch: Fetcher | None = None,
    deadline: float = DEADLINE_S,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> Path:
    """Fetch ``filename`` from the first mirror that serves it with the right sha256, within ``deadline``.

    The bytes are written to a temporary ``.part`` file in ``directory`` and moved into
    place with ``os.replace`` only after the checksum matched, so the cache
    holds either the complete verified file or nothing; ``.part`` files left by killed downloads are removed.

    Args:
      filename: e.g. ``"t10k-images-idx3-ubyte.gz"``.
      directory: where the file goes (created only once a verified file is there to write).
      sha256: expected hex digest.
      mirrors: base URLs tried in turn (``http(s)://`` or ``file://``).
      fetch: ``url -> bytes``, or ``url ->`` an iterable of byte chunks or a file-like object (streamed, so
        the deadline and the progress bar apply); defaults to ``urllib``, at most :data:`SILENCE_S` s of
        silence per read.
      deadline: seconds the file may take in all, over every mirror: a dribbling server is cut off.
      progress: show a tqdm progress bar in bytes once a download has run for a second.
      clock: monotonic seconds (tests pass a fake clock).

    Returns:
      The path of the verified file.

    Raises:
      DownloadError: every mirror failed; the message lists each failure (a timeout reads "timed out: ...").
      PermissionError / NotADirectoryError: the cache folder cannot be written (one exact line).
    """
    expected = sha256
    directory = Path(directory)
    target = directory / filename
    if directory.is_dir():
        _remove_stale_parts(directory, filename)
    failures = []
    deadline_at = clock() + deadline
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        if clock() >= deadline_at:
            failures.append((base, f"not tried: the {deadline:g} s deadline for this file had passed"))
            continue
        try:
            payload = _fetch(fetch, url, deadline_at=deadline_at, deadline=deadline, clock=clock, progress=progress)
        except Exception as err:  # any network or file error: try the next mirror
            failures.append((base, str(err) if str(err).startswith("timed out:") else _short_reason(err)))
            continue
        got = hashlib.sha256(payload).hexdigest()
        if got != expected:
            failures.append((base, f"sha256 mismatch (got {got[:12]}..., expected {expected[:12]}...)"))
            continue
        # Created only now, with a verified file to put in it: a failed load leaves no empty folders.
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{filename}.", suffix=".part",
                                                 delete=False)
        except OSError as err:
            raise _cache_error(err, directory) from None
        try:
            with handle:
                _lock(handle)
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, target)
        except BaseException as err:
            Path(handle.name).unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise _cache_error(err, directory) from None
            raise
        return target
    raise DownloadError(filename, failures)
