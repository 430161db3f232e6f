"""jaxmath.datasets: MNIST parsing and download cache, split slicing, Batman logo, Marvel table, costumes."""

import functools
import gzip
import hashlib
import http.server
import os
import re
import struct
import threading
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxmath.datasets import (
    DownloadError,
    batman_inside,
    batman_logo,
    costume_prices,
    marvel_heroes,
    load_mnist,
    parse_idx,
    split_slice,
)
from jaxmath.datasets import download as download_module
from jaxmath.datasets import mnist as mnist_module

SHARED = Path(os.environ.get("JAXMATH_DATA_DIR", "")) / "mnist"
# Canonical checksums, written out here independently of the library's table.
CANONICAL = {
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
needs_shared = pytest.mark.skipif(not (SHARED / "t10k-images-idx3-ubyte.gz").is_file(), reason="shared MNIST missing")


def idx_bytes(magic, dims, data):
    """An IDX file built by hand: big-endian magic, dims, then the raw bytes."""
    return struct.pack(">i", magic) + struct.pack(f">{len(dims)}i", *dims) + bytes(data)


def write_gz(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(payload)
    return path


# ---------------------------------------------------------------- the real shared split


@needs_shared
def test_shared_files_match_canonical_checksums():
    for name, digest in CANONICAL.items():
        assert hashlib.sha256((SHARED / name).read_bytes()).hexdigest() == digest


@needs_shared
def test_load_shared_test_split_shapes_dtypes_and_values():
    images, labels = load_mnist("test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.dtype == np.uint8
    # Independent decode with the standard library: gzip + fixed 16/8-byte headers.
    raw_images = gzip.decompress((SHARED / "t10k-images-idx3-ubyte.gz").read_bytes())
    raw_labels = gzip.decompress((SHARED / "t10k-labels-idx1-ubyte.gz").read_bytes())
    np.testing.assert_array_equal(images.reshape(-1), np.frombuffer(raw_images[16:], np.uint8))
    np.testing.assert_array_equal(labels, np.frombuffer(raw_labels[8:], np.uint8))
    # Well-known facts about the MNIST test split: first labels 7, 2, 1, 0, 4 and 1,135 ones.
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert int((labels == 1).sum()) == 1135


@needs_shared
def test_load_shared_slices_and_fresh_arrays():
    full_images, full_labels = load_mnist("test")
    for split, sl in [("test[:8000]", slice(None, 8000)), ("test[8000:]", slice(8000, None)),
                      ("test[100:200]", slice(100, 200)), ("test[90%:]", slice(9000, None)),
                      ("test[-10%:]", slice(-1000, None))]:
        images, labels = load_mnist(split)
        np.testing.assert_array_equal(images, full_images[sl])
        np.testing.assert_array_equal(labels, full_labels[sl])
    images, _ = load_mnist("test[:2]")
    images[0, 0, 0] = 255  # writable copy: the cached arrays stay untouched
    assert load_mnist("test[:2]")[0][0, 0, 0] == full_images[0, 0, 0]


@needs_shared
def test_data_dir_argument_wins_over_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXMATH_DATA_DIR", str(tmp_path / "empty"))
    images, labels = load_mnist("test[:3]", data_dir=SHARED.parent)
    assert images.shape == (3, 28, 28) and labels.tolist() == [7, 2, 1]


# ---------------------------------------------------------------- split parsing vs NumPy slicing


@pytest.mark.parametrize(
    "split, expected",
    [
        ("test", slice(None, None)),
        ("test[:8000]", slice(None, 8000)),
        ("test[100:200]", slice(100, 200)),
        ("test[-5:]", slice(-5, None)),
        ("train[90%:]", slice(90, None)),
        ("train[:90%]", slice(None, 90)),
        ("train[-10%:]", slice(-10, None)),
        ("train[10%:-10%]", slice(10, -10)),
        ("train[:]", slice(None, None)),
    ],
)
def test_split_slice_matches_numpy_slicing(split, expected):
    data = np.arange(100)
    np.testing.assert_array_equal(data[split_slice(split, 100)], data[expected])


def test_split_percent_rounds_and_partitions():
    for n in [1, 7, 10, 99, 60_000]:
        data = np.arange(n)
        head, tail = data[split_slice("train[:90%]", n)], data[split_slice("train[90%:]", n)]
        np.testing.assert_array_equal(np.concatenate([head, tail]), data)
    assert split_slice("x[:50%]", 5) == slice(None, 3)  # 2.5 rounds to 3
    assert split_slice("x[:33%]", 10) == slice(None, 3)


@pytest.mark.parametrize("bad", ["test[", "test[1:2:3]", "test[a:]", "test[1.5:]", "test[:150%]", "tst", "", "[1:2]"])
def test_bad_split_strings_raise_naming_split(bad):
    with pytest.raises(ValueError, match="split="):
        load_mnist(bad)


# ---------------------------------------------------------------- corrupt files


def write_mnist_pair(root, n=4, *, images=None, labels=None, image_magic=0x803, label_magic=0x801,
                     image_dims=None, label_dims=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8) if images is None else images
    labels = rng.integers(0, 10, size=(n,), dtype=np.uint8) if labels is None else labels
    directory = root / "mnist"
    image_path = write_gz(directory / "t10k-images-idx3-ubyte.gz",
                          idx_bytes(image_magic, image_dims or (n, 28, 28), images.tobytes()))
    label_path = write_gz(directory / "t10k-labels-idx1-ubyte.gz",
                          idx_bytes(label_magic, label_dims or (n,), labels.tobytes()))
    return image_path, label_path, images, labels


def test_parse_idx_reads_hand_built_file(tmp_path):
    image_path, label_path, images, labels = write_mnist_pair(tmp_path, n=3)
    got = parse_idx(image_path, magic=0x803, count=3)
    assert got.shape == (3, 28, 28) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(parse_idx(label_path, magic=0x801), labels)


def test_bad_magic_names_file(tmp_path):
    image_path, _, _, _ = write_mnist_pair(tmp_path, image_magic=0x801 | 0x1000)
    with pytest.raises(ValueError, match="magic") as info:
        parse_idx(image_path, magic=0x803)
    assert str(image_path) in str(info.value)


def test_wrong_count_in_load_names_file(tmp_path):
    # A self-consistent file of 4 images where the test split must hold 10,000.
    image_path, _, _, _ = write_mnist_pair(tmp_path, n=4)
    with pytest.raises(ValueError, match="10000") as info:
        load_mnist("test", data_dir=tmp_path, mirrors=())
    assert str(image_path) in str(info.value)


def test_header_count_disagreeing_with_data_names_file(tmp_path):
    image_path, _, _, _ = write_mnist_pair(tmp_path, n=4, image_dims=(5, 28, 28))
    with pytest.raises(ValueError, match="truncated") as info:
        parse_idx(image_path, magic=0x803)
    assert str(image_path) in str(info.value)


def test_wrong_image_size_names_file(tmp_path):
    image_path, _, _, _ = write_mnist_pair(tmp_path, n=4, image_dims=(4, 28, 27))
    with pytest.raises(ValueError, match="28x27") as info:
        parse_idx(image_path, magic=0x803)
    assert str(image_path) in str(info.value)


def test_truncated_gzip_names_file(tmp_path):
    image_path, _, _, _ = write_mnist_pair(tmp_path, n=4)
    raw = image_path.read_bytes()
    image_path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError) as info:
        parse_idx(image_path, magic=0x803)
    assert str(image_path) in str(info.value)


def test_truncated_header_names_file(tmp_path):
    path = write_gz(tmp_path / "short.gz", struct.pack(">i", 0x803) + b"\x00\x00")
    with pytest.raises(ValueError, match="header") as info:
        parse_idx(path, magic=0x803)
    assert str(path) in str(info.value)


def test_out_of_range_labels_name_file(tmp_path):
    write_mnist_pair(tmp_path, n=4, labels=np.array([0, 1, 12, 3], np.uint8))
    monkey_count = {"test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 4)}
    old = dict(mnist_module.SPLITS)
    mnist_module.SPLITS.update(monkey_count)
    try:
        with pytest.raises(ValueError, match="labels-idx1") as info:
            load_mnist("test", data_dir=tmp_path, mirrors=())
        assert "12" in str(info.value)
    finally:
        mnist_module.SPLITS.update(old)


# ---------------------------------------------------------------- downloads (loopback only)


@pytest.fixture
def fake_mnist_payloads():
    """Small gzipped IDX payloads plus their sha256, standing in for the canonical files."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1], np.uint8)
    payloads = {
        "t10k-images-idx3-ubyte.gz": gzip.compress(idx_bytes(0x803, (4, 28, 28), images.tobytes())),
        "t10k-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(0x801, (4,), labels.tobytes())),
    }
    return payloads, images, labels


@pytest.fixture
def patched_checksums(fake_mnist_payloads, monkeypatch):
    payloads, _, _ = fake_mnist_payloads
    monkeypatch.setitem(mnist_module.SPLITS, "test", ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 4))
    for name, payload in payloads.items():
        monkeypatch.setitem(mnist_module.SHA256, name, hashlib.sha256(payload).hexdigest())
    return payloads


@pytest.fixture
def http_mirror(tmp_path):
    """A static HTTP server on 127.0.0.1 serving tmp_path/served."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def cache_listing(root):
    directory = root / "mnist"
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def test_download_from_http_mirror_caches_verified_files(tmp_path, http_mirror, patched_checksums,
                                                         fake_mnist_payloads):
    served, url = http_mirror
    _, images, labels = fake_mnist_payloads
    for name, payload in patched_checksums.items():
        (served / name).write_bytes(payload)
    cache = tmp_path / "cache"
    got_images, got_labels = load_mnist("test", data_dir=cache, mirrors=(url,))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert cache_listing(cache) == sorted(patched_checksums)  # no temp files left behind
    for name, payload in patched_checksums.items():
        assert (cache / "mnist" / name).read_bytes() == payload


def test_first_mirror_failing_falls_back_to_second(tmp_path, http_mirror, patched_checksums):
    served, url = http_mirror
    for name, payload in patched_checksums.items():
        (served / name).write_bytes(payload)
    requested = []

    def fetch(address):
        requested.append(address)
        return mnist_module._urlopen_bytes(address, timeout=10)

    dead = url + "does-not-exist/"  # 404 from the same loopback server
    images, _ = load_mnist("test[:2]", data_dir=tmp_path / "cache", mirrors=(dead, url), fetch=fetch)
    assert images.shape == (2, 28, 28)
    assert [a.startswith(dead) for a in requested] == [True, False, True, False]


def test_file_url_mirror_works(tmp_path, patched_checksums):
    served = tmp_path / "served"
    served.mkdir()
    for name, payload in patched_checksums.items():
        (served / name).write_bytes(payload)
    images, labels = load_mnist("test", data_dir=tmp_path / "cache", mirrors=(served.as_uri() + "/",))
    assert images.shape == (4, 28, 28) and labels.tolist() == [3, 1, 4, 1]


def test_corrupted_download_raises_sha_mismatch_and_leaves_nothing(tmp_path, patched_checksums):
    def corrupt_fetch(url):
        payload = patched_checksums[url.rsplit("/", 1)[1]]
        return payload[:-3] + b"xyz"

    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="sha256 mismatch") as info:
        load_mnist("test", data_dir=cache, mirrors=("http://127.0.0.1:9/a/",), fetch=corrupt_fetch)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value) and str(cache / "mnist") in str(info.value)
    assert cache_listing(cache) == []


def test_download_failing_midway_leaves_nothing(tmp_path, patched_checksums, monkeypatch):
    # The write itself fails (disk full): the temp file is removed and nothing reaches the cache.
    def fail_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(mnist_module.os, "replace", fail_replace)
    name = "t10k-images-idx3-ubyte.gz"
    with pytest.raises(OSError, match="disk full"):
        mnist_module.download(name, tmp_path / "mnist", fetch=lambda url: patched_checksums[name])
    assert list((tmp_path / "mnist").iterdir()) == []


def test_download_error_lists_every_mirror(tmp_path):
    def refuse(url):
        raise ConnectionError(f"refused {url}")

    with pytest.raises(DownloadError) as info:
        mnist_module.download("t10k-labels-idx1-ubyte.gz", tmp_path, mirrors=("http://a/", "http://b/"),
                              fetch=refuse)
    lines = str(info.value).splitlines()
    assert lines[1:] == ["  tried http://a/: ConnectionError: refused http://a/t10k-labels-idx1-ubyte.gz",
                         "  tried http://b/: ConnectionError: refused http://b/t10k-labels-idx1-ubyte.gz"]
    assert info.value.failures[0][0] == "http://a/"
    assert not any(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_failed_load_is_a_few_short_lines_and_creates_no_folders(tmp_path, monkeypatch):
    # A fake fetcher stands in for the network: each mirror fails with a long message, as urllib's do.
    def offline(url):
        raise OSError("[Errno -3] Temporary failure in name resolution " + "x" * 300)

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("test", data_dir="not/yet/there", fetch=offline)
    lines = str(info.value).splitlines()
    root = tmp_path / "not" / "yet" / "there" / "mnist"
    assert lines[0] == "MNIST files missing: t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"
    assert lines[1] == f"  looked in {root}"  # the absolute path, though data_dir was relative
    tried = [line for line in lines if line.startswith("  tried ")]
    assert [line.split()[1].rstrip(":") for line in tried] == list(mnist_module.MIRRORS)  # one line per mirror
    assert "JAXMATH_DATA_DIR" in lines[-1] and len(lines) == 2 + len(mnist_module.MIRRORS) + 1
    assert all(len(line) <= 140 for line in lines), max(lines, key=len)
    assert not (tmp_path / "not").exists()  # a failed load creates no empty folders


def test_offline_without_cache_says_which_files_where(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("train[:10]", data_dir=tmp_path, mirrors=())
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert str(tmp_path / "mnist") in message and "JAXMATH_DATA_DIR" in message


def test_default_root_is_env_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXMATH_DATA_DIR", str(tmp_path))
    assert mnist_module.data_root() == tmp_path
    monkeypatch.delenv("JAXMATH_DATA_DIR")
    assert mnist_module.data_root() == Path.home() / ".cache" / "jaxmath"


# ---------------------------------------------------------------- deadlines, progress, cache faults


class FakeClock:
    """Monotonic seconds that advance only when the fake network says so: no wall clock in these tests."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def dribble(clock, payload, *, seconds_per_chunk, chunk=1):
    """A fetcher streaming ``payload`` ``chunk`` bytes at a time, each taking ``seconds_per_chunk``."""
    def fetch(url):
        def chunks():
            for i in range(0, len(payload), chunk):
                clock.now += seconds_per_chunk
                yield payload[i:i + chunk]
        return chunks()
    return fetch


NAME = "t10k-labels-idx1-ubyte.gz"


def test_a_dribbling_server_is_cut_off_by_the_deadline_for_the_whole_file(tmp_path, patched_checksums):
    # One byte per simulated second never trips a per-read timeout; the per-file deadline cuts it at 5 s.
    clock = FakeClock()
    fetch = dribble(clock, patched_checksums[NAME], seconds_per_chunk=1.0)
    with pytest.raises(DownloadError) as info:
        mnist_module.download(NAME, tmp_path, mirrors=("http://a/", "http://b/"), fetch=fetch, deadline=5.0,
                              clock=clock, progress=False)
    assert info.value.failures == [
        ("http://a/", "timed out: 6 bytes received within the 5 s deadline for one file"),
        ("http://b/", "not tried: the 5 s deadline for this file had passed"),
    ]
    assert not any(tmp_path.iterdir())


def test_a_stream_within_the_deadline_is_joined_and_verified(tmp_path, patched_checksums):
    clock = FakeClock()
    payload = patched_checksums[NAME]
    fetch = dribble(clock, payload, seconds_per_chunk=0.01, chunk=7)
    path = mnist_module.download(NAME, tmp_path, fetch=fetch, deadline=len(payload), clock=clock, progress=False)
    assert path.read_bytes() == payload


def test_progress_bar_in_bytes_only_when_the_download_takes_over_a_second(tmp_path, patched_checksums, capsys):
    payload = patched_checksums[NAME]
    clock = FakeClock()
    mnist_module.download(NAME, tmp_path / "slow", fetch=dribble(clock, payload, seconds_per_chunk=0.5, chunk=10),
                          deadline=1e9, clock=clock)
    bar = capsys.readouterr().err
    # The bar appears once 1 s has passed (3 chunks of 10 bytes at 0.5 s each), counting bytes.
    assert f"{NAME}: 30.0B [" in bar and "B/s]" in bar, bar
    clock = FakeClock()
    mnist_module.download(NAME, tmp_path / "fast", fetch=dribble(clock, payload, seconds_per_chunk=0.0, chunk=10),
                          clock=clock)
    assert capsys.readouterr().err == ""


def test_a_silent_or_dribbling_http_server_times_out_with_one_exact_line(tmp_path):
    # A real loopback socket: headers, then one byte every 0.1 s (or nothing at all); deadline 0.5 s.
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                silent = b"/silent/" in conn.recv(4096)
                if silent:
                    stop.wait(5)
                    continue
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n")
                while not stop.is_set():
                    try:
                        conn.sendall(b"x")
                    except OSError:
                        break
                    stop.wait(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        with pytest.raises(DownloadError) as info:
            mnist_module.download(NAME, tmp_path, mirrors=(url,), sha256="0" * 64, deadline=0.5, progress=False)
        (_, dribbling), = info.value.failures
        with pytest.raises(DownloadError) as info:
            mnist_module.download(NAME, tmp_path, mirrors=(url + "silent/",), sha256="0" * 64, deadline=0.5,
                                  progress=False)
        (_, silent), = info.value.failures
    finally:
        stop.set()
        listener.close()
    assert re.fullmatch(r"timed out: \d+ of 1,000 bytes received within the 0.5 s deadline for one file",
                        dribbling), dribbling
    assert silent == "timed out: no response within the 0.5 s deadline for one file", silent


def test_permission_denied_on_the_cache_is_one_exact_line(tmp_path, patched_checksums, monkeypatch):
    # The OS call is mocked, so this holds when the tests run as root too.
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(download_module.tempfile, "NamedTemporaryFile", denied)
    with pytest.raises(PermissionError) as info:
        load_mnist("test", data_dir=tmp_path, fetch=lambda url: patched_checksums[url.rsplit("/", 1)[1]])
    assert str(info.value) == (f"cannot write to {tmp_path / 'mnist'}: permission denied; make it writable, "
                               "or set JAXMATH_DATA_DIR (or data_dir) to a folder you can write")


def test_an_unreadable_file_is_called_unreadable_not_incomplete(tmp_path, monkeypatch):
    write_mnist_pair(tmp_path, n=4)
    real_open = open

    def open_denied(path, *args, **kwargs):
        if str(path).endswith("t10k-images-idx3-ubyte.gz"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(mnist_module, "open", open_denied, raising=False)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    with pytest.raises(PermissionError) as info:
        parse_idx(path, magic=0x803)
    assert str(info.value) == f"{path}: permission denied: the file cannot be read; fix its permissions"
    assert "gzip" not in str(info.value)


def test_a_directory_in_the_way_is_named_as_such(tmp_path):
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").mkdir(parents=True)
    with pytest.raises(IsADirectoryError) as info:
        load_mnist("test", data_dir=tmp_path, mirrors=())
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    assert str(info.value) == (f"{path} is a directory, not the MNIST file: remove or rename it so the file "
                               "can be put there")


def test_stale_part_files_are_removed_by_the_next_download_but_not_a_live_one(tmp_path, patched_checksums):
    import fcntl

    stale = tmp_path / f".{NAME}.killed.part"
    live = tmp_path / f".{NAME}.running.part"
    other = tmp_path / ".t10k-images-idx3-ubyte.gz.killed.part"
    for part in (stale, live, other):
        part.write_bytes(b"half a download")
    with open(live, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # as a download in progress holds it
        mnist_module.download(NAME, tmp_path, fetch=lambda url: patched_checksums[NAME], progress=False)
        assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / NAME).read_bytes() == patched_checksums[NAME]


# ---------------------------------------------------------------- Batman logo


# Hand-computed from the piecewise equation: head top 2.25, ear 3|x| + 0.75 (2.55 at 0.6),
# shoulder at |x| = 2: 6√10/7 + 0.5 − (3√10/7)·√3 ≈ 0.863, tail at 0: −3, tail at 2: ≈ −2.366, wings |x| < 7.
BATMAN_POINTS = [
    ((0.0, 0.0), True), ((0.0, 2.0), True), ((0.0, 2.5), False), ((0.6, 2.5), True), ((-0.6, 2.6), False),
    ((2.0, 0.5), True), ((-2.0, 1.5), False), ((5.0, 0.0), True), ((-6.9, 0.0), True), ((7.5, 0.0), False),
    ((0.0, -2.9), True), ((0.0, -3.1), False), ((2.0, -2.2), True), ((-2.0, -2.5), False),
    ((5.0, 2.2), False), ((5.0, -2.0), True), ((5.0, -2.2), False),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batman_hand_picked_points(dtype):
    points = np.array([p for p, _ in BATMAN_POINTS], dtype)
    expected = np.array([inside for _, inside in BATMAN_POINTS])
    got = np.asarray(batman_inside(points))
    assert got.shape == (len(BATMAN_POINTS),) and got.dtype == bool
    np.testing.assert_array_equal(got, expected)


def test_batman_logo_shapes_dtypes_area_and_determinism():
    key = jax.random.PRNGKey(0)
    points, labels = batman_logo(20_000, key)
    assert points.shape == (20_000, 2) and points.dtype == np.float32
    assert labels.shape == (20_000,) and labels.dtype == np.int32
    assert set(np.unique(np.asarray(labels)).tolist()) == {0, 1}
    assert np.abs(np.asarray(points)[:, 0]).max() <= 8 and np.abs(np.asarray(points)[:, 1]).max() <= 4
    # The Batman curve encloses ≈ 48.42 square units of the 16 × 8 box.
    assert abs(float(np.mean(labels)) * 128 - 48.42) < 1.5
    np.testing.assert_array_equal(np.asarray(batman_logo(20_000, key)[0]), np.asarray(points))
    assert not np.array_equal(np.asarray(batman_logo(20_000, jax.random.PRNGKey(1))[0]), np.asarray(points))


def test_batman_logo_bad_n():
    with pytest.raises(ValueError, match="n"):
        batman_logo(0, jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match="n"):
        batman_logo(2.5, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"points.shape=\(3, 3\)"):
        batman_inside(np.zeros((3, 3), np.float32))


# ---------------------------------------------------------------- Marvel table, costume prices


def test_marvel_heroes_matches_notes_table():
    heroes = marvel_heroes()
    assert heroes.values.shape == (16, 6) and heroes.values.dtype == np.float32
    assert len(heroes.names) == 16 and len(heroes.attributes) == 6
    assert heroes.attributes == ("Intelligence", "Strength", "Speed", "Durability", "Energy projection",
                                 "Fighting skills")
    rows = dict(zip(heroes.names, heroes.values.tolist()))
    assert rows["Iron Man"] == [6, 6, 5, 6, 6, 4]
    assert rows["Wolverine"] == [2, 4, 2, 4, 1, 7]
    assert rows["Dr Strange"] == [4, 2, 7, 2, 6, 6]
    assert rows["Invisible Woman"] == [3, 2, 3, 6, 5, 3]
    assert rows["Daredevil"] == [3, 3, 2, 2, 4, 5]
    # Column sums of the slide's table, added up by hand.
    np.testing.assert_array_equal(heroes.values.sum(axis=0), [53, 68, 52, 72, 48, 71])
    assert heroes.names[0] == "Iron Man" and heroes.names[-1] == "Daredevil"


def test_costume_prices_are_the_legible_points():
    x, y = costume_prices()
    assert x.shape == (3,) and y.shape == (3,) and x.dtype == np.float32 and y.dtype == np.float32
    assert list(zip(x.tolist(), y.tolist())) == [(240, 6370), (480, 8697), (26, 2200)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batman_pieces_meet_at_the_junctions(dtype):
    from jaxmath.datasets import batman_bounds

    tol = 1e-5 if dtype == np.float32 else 1e-10
    eps = 1e-6 if dtype == np.float32 else 1e-9
    # Closed forms from the notes' equation: 6√10/7 at |x| = 3, 1 at |x| = 1, 3 at |x| = 0.75, 2.25 at 0.5;
    # lower curve −3√33/7 at |x| = 4, −3 at x = 0.
    for x0, expected in [(3.0, 6 * np.sqrt(10) / 7), (1.0, 1.0), (0.75, 3.0), (0.5, 2.25)]:
        upper = np.asarray(batman_bounds(np.array([x0, -x0], dtype))[0], np.float64)
        np.testing.assert_allclose(upper, expected, atol=tol)
        # Either side of the junction (the shoulder's circle has a vertical tangent there: error ~ √eps).
        sides = np.asarray(batman_bounds(np.array([x0 - eps, x0 + eps], dtype))[0], np.float64)
        np.testing.assert_allclose(sides, expected, atol=4 * np.sqrt(eps))
    lower = np.asarray(batman_bounds(np.array([4 - eps, 4.0, 4 + eps, 0.0], dtype))[1], np.float64)
    np.testing.assert_allclose(lower[:3], -3 * np.sqrt(33) / 7, atol=4 * np.sqrt(eps))
    np.testing.assert_allclose(lower[3], -3.0, atol=tol)


def test_batman_bfloat16_stays_finite():
    import jax.numpy as jnp
    from jaxmath.datasets import batman_bounds

    x = jnp.linspace(-8, 8, 161, dtype=jnp.bfloat16)
    upper, lower = batman_bounds(x)
    assert upper.dtype == jnp.bfloat16 and lower.dtype == jnp.bfloat16
    assert bool(jnp.isfinite(upper).all()) and bool(jnp.isfinite(lower).all())
    inside = np.asarray(batman_inside(jnp.asarray([[0.0, 0.0], [5.0, 0.0], [0.0, 3.0]], jnp.bfloat16)))
    np.testing.assert_array_equal(inside, [True, True, False])


# ----------------------------------------------------------------------------- overlap and the logo grid


@pytest.mark.parametrize(
    "a, b, shared",
    [
        ("train[:55000]", "train[55000:]", 0),  # adjacent slices share nothing
        ("train[:55000]", "train[-5000:]", 0),  # negative bounds resolved against 60,000
        ("train", "test", 0),  # different splits never overlap
        ("test", "test", 10_000),
        ("test[:8000]", "test[7000:]", 1000),
        ("train[-5000:]", "train[:90%]", 0),  # 90% of 60,000 is 54,000 < 55,000
        ("train[50%:]", "train[-10%:]", 6000),
        ("test[5:3]", "test", 0),  # an empty slice
    ],
)
def test_overlap_counts_shared_examples_by_hand(a, b, shared):
    from jaxmath.datasets import overlap

    lengths = {"train": 60_000, "test": 10_000}
    assert overlap(a, b, lengths) == shared == overlap(b, a, lengths)
    # Independently: intersect the index sets Python slicing selects.
    names = {"train": np.arange(60_000), "test": np.arange(10_000) + 60_000}
    pick = {s: names[s.split("[")[0]][split_slice(s, len(names[s.split("[")[0]]))] for s in (a, b)}
    assert len(np.intersect1d(pick[a], pick[b])) == shared


def test_logo_image_evaluates_the_network_on_the_grid_rows_up():
    from jaxmath.datasets import batman, logo_grid, logo_image

    xs, ys, points = logo_grid(4)
    assert xs.shape == (8,) and ys.shape == (4,) and points.shape == (32, 2) and points.dtype == np.float32
    np.testing.assert_array_equal(points[:8, 1], np.full(8, -4.0, np.float32))  # row 0 is y = -4
    np.testing.assert_array_equal(points[:8, 0], xs)

    # A "network" that answers inside exactly where batman_inside does, on the unscaled points.
    def oracle(params, x):
        inside = batman_inside(x * params)
        return jax.numpy.stack([~inside, inside], axis=-1).astype(np.float32)

    scale = np.asarray(batman.INPUT_SCALE, np.float32)
    predicted, truth = logo_image(oracle, scale, resolution=50)
    assert predicted.shape == truth.shape == (50, 100)
    np.testing.assert_array_equal(predicted, truth.astype(predicted.dtype))
    assert 0.3 < truth.mean() < 0.45  # about 38% of the box is inside
    assert not truth[0].any() and not truth[-1].any()  # y = ±4 lies outside the logo
