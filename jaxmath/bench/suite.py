"""The default benchmark suite of ``jaxmath bench``: the notes' workloads on synthetic MNIST-shaped data.

Cases (``size="full"``, MNIST-sized):

* ``mlp-784-16-16-10``: the notes' network (sigmoid, sum of squares, SGD), one train step at batch 128;
  loop/fused modes walk through the batches of a 60,000-image synthetic epoch.
* ``mlp-784-1024-1024-10``: a large ReLU MLP (softmax cross-entropy, Adam), one step at batch 1024.
* ``logreg``: one full-batch gradient step of 10-class logistic regression on 60,000 × 784.
* ``kmeans``: one Lloyd iteration (assign + update) on 60,000 × 784, k = 10.

Every case runs through the library's own code (``jaxmath.models.mlp``,
``jaxmath.training.make_train_step``, ``jaxmath.optim``, ``jaxmath.models.logistic_regression``,
``jaxmath.unsupervised.kmeans``) with ``precision`` passed to every matmul; ``dtype="bfloat16"``
runs the MLPs' matmuls in bfloat16 (``mlp.apply(compute_dtype=...)``) with float32 params and
optimizer state. ``size="small"``/``"tiny"`` shrink the data (notebooks, tests).
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath._validation import check_choice
from jaxmath.bench.records import Record, reference_label
from jaxmath.bench.runner import MODES, benchmark, distinct_devices, peak_matmul

SIZES = ("full", "small", "tiny")
DTYPES = ("float32", "bfloat16")
EPOCH_SAMPLES = 60_000


class Workload(NamedTuple):
    """What the runner times: ``fn(*args)`` (eager, jit) and ``body(carry, i, *consts)`` (loop, fused)."""

    fn: Callable
    args: tuple
    body: Callable
    carry: Any
    consts: tuple = ()


class Case(NamedTuple):
    """A suite entry: ``setup()`` builds the workload on the host; timing settings for it."""

    name: str
    setup: Callable[[], Workload]
    repeats: int
    eager_repeats: int
    steps: tuple[int, int]
    dtype: str
    note: str = ""


# name -> (samples in the dataset, batch, timing repeats, eager repeats, (N1, N2))
_SETTINGS = {
    "full": {
        "mlp-784-16-16-10": (EPOCH_SAMPLES, 128, 11, 3, (50, 250)),
        "mlp-784-1024-1024-10": (8 * 1024, 1024, 5, 1, (1, 4)),
        "logreg": (EPOCH_SAMPLES, EPOCH_SAMPLES, 3, 2, (1, 3)),
        "kmeans": (EPOCH_SAMPLES, EPOCH_SAMPLES, 3, 1, (1, 3)),
    },
    "small": {
        "mlp-784-16-16-10": (8192, 128, 5, 2, (10, 40)),
        "mlp-784-1024-1024-10": (1024, 256, 3, 1, (2, 4)),
        "logreg": (4096, 4096, 3, 1, (2, 6)),
        "kmeans": (4096, 4096, 3, 1, (2, 4)),
    },
    "tiny": {
        "mlp-784-16-16-10": (256, 32, 2, 1, (1, 3)),
        "mlp-784-1024-1024-10": (64, 32, 2, 1, (1, 2)),
        "logreg": (64, 64, 2, 1, (1, 2)),
        "kmeans": (64, 64, 2, 1, (1, 2)),
    },
}
CASES = tuple(_SETTINGS["full"])
_LARGE_SIZES = {"full": (784, 1024, 1024, 10), "small": (784, 1024, 1024, 10), "tiny": (784, 64, 64, 10)}


def synthetic_mnist(num: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped random data: uint8 images (num, 28, 28) and uint8 labels (num,) in 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(num,), dtype=np.uint8)
    return images, labels


def _batch_at(images, labels, i, batch):
    """Batch number ``i`` (wrapping around) of the on-device dataset, sliced inside the compiled step."""
    num_batches = images.shape[0] // batch
    start = (i % num_batches) * batch
    x = lax.dynamic_slice_in_dim(images, start, batch)
    y = lax.dynamic_slice_in_dim(labels, start, batch)
    return x, y


def _mlp_workload(sizes, *, samples, batch, activation, output, loss, optimizer, precision, compute_dtype):
    from jaxmath import training
    from jaxmath.models import mlp

    model = mlp.make(sizes, activation=activation, output=output, precision=precision,
                     compute_dtype=compute_dtype)
    loss_fn = training.make_classifier_loss(model, num_classes=10, loss=loss)
    # The bare step: the benchmark jits it itself (and must reuse its input state between repeats,
    # so the library's buffer donation is off).
    step = training.make_train_step(loss_fn, optimizer, jit=False)
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    images, labels = synthetic_mnist(samples)
    images, labels = jnp.asarray(images), jnp.asarray(labels)

    def one_step(state, batch):
        return step(state, batch)

    def body(state, i, images, labels):
        new_state, _ = step(state, _batch_at(images, labels, i, batch))
        return new_state

    return Workload(one_step, (state, (images[:batch], labels[:batch])), body, state, (images, labels))


def _logreg_workload(*, samples, precision, learning_rate=0.5):
    from jaxmath.models import logistic_regression as logreg

    images, labels = synthetic_mnist(samples)
    x = jnp.asarray(images.reshape(samples, -1), jnp.float32) / 255.0
    labels = jnp.asarray(labels, jnp.int32)
    params = logreg.init(jax.random.key(0), 784, num_classes=10)

    def objective(params, x, labels):
        return logreg.loss(params, x, labels, penalty=None, precision=precision)

    def step(params, x, labels):
        g = jax.grad(objective)(params, x, labels)
        return jax.tree_util.tree_map(lambda p, gp: p - learning_rate * gp, params, g)

    def body(params, i, x, labels):
        return step(params, x, labels)

    return Workload(step, (params, x, labels), body, params, (x, labels))


def _kmeans_workload(*, samples, precision, num_clusters=10):
    from jaxmath.unsupervised import kmeans

    images, _ = synthetic_mnist(samples)
    x = jnp.asarray(images.reshape(samples, -1), jnp.float32) / 255.0
    centroids = x[:num_clusters]

    def step(x, centroids):
        return kmeans.lloyd_step(centroids, x, precision=precision)[0]

    def body(centroids, i, x):
        return step(x, centroids)

    return Workload(step, (x, centroids), body, centroids, (x,))


def default_cases(
    size: str = "full",
    *,
    precision: str | None = None,
    dtype: str = "float32",
    names: Sequence[str] | None = None,
) -> list[Case]:
    """The suite's cases at ``size`` ("full", "small", "tiny"), optionally only ``names``."""
    check_choice(size, SIZES, name="size")
    check_choice(dtype, DTYPES, name="dtype")
    for name in names or ():
        check_choice(name, CASES, name="case")
    compute_dtype = jnp.bfloat16 if dtype == "bfloat16" else None
    settings = _SETTINGS[size]
    from jaxmath import optim

    builders = {
        "mlp-784-16-16-10": lambda s: _mlp_workload(
            (784, 16, 16, 10), samples=s[0], batch=s[1], activation="sigmoid", output="sigmoid",
            loss="sum_of_squares", optimizer=optim.sgd(learning_rate=1.0), precision=precision,
            compute_dtype=compute_dtype),
        "mlp-784-1024-1024-10": lambda s: _mlp_workload(
            _LARGE_SIZES[size], samples=s[0], batch=s[1], activation="relu", output="identity",
            loss="softmax_cross_entropy", optimizer=optim.adam(learning_rate=1e-3), precision=precision,
            compute_dtype=compute_dtype),
        "logreg": lambda s: _logreg_workload(samples=s[0], precision=precision),
        "kmeans": lambda s: _kmeans_workload(samples=s[0], precision=precision),
    }
    cases = []
    for name in names or CASES:
        s = settings[name]
        is_mlp = name.startswith("mlp")
        label = name if size == "full" or name != "mlp-784-1024-1024-10" else name.replace(
            "1024-1024", "-".join(str(v) for v in _LARGE_SIZES[size][1:3]))
        note = f"batch {s[1]}, {s[0]} samples" if is_mlp else f"{s[0]} x 784"
        cases.append(
            Case(label, functools.partial(builders[name], s), s[2], s[3], s[4],
                 dtype if is_mlp else "float32", note)
        )
    return cases


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="jaxmath bench", unit="run", file=sys.stderr, leave=False)


def _peak_matmul_fn(dtype):
    # Low-precision matmuls accumulate in float32, as the models' compute_dtype path does.
    if jnp.dtype(dtype).itemsize < 4:
        return functools.partial(jnp.matmul, preferred_element_type=jnp.float32)
    return jnp.matmul


def _matmul_runner(device, size, dtype, precision):
    """A zero-argument compiled ``size``³ matmul on ``device`` (the CPU's peak, timed alongside each case)."""
    with jax.default_device(device), jax.default_matmul_precision(precision or "default"):
        key = jax.random.PRNGKey(0)
        a = jax.device_put(jax.random.normal(key, (size, size), dtype), device)
        b = jax.device_put(jax.random.normal(jax.random.fold_in(key, 1), (size, size), dtype), device)
        compiled = jax.jit(_peak_matmul_fn(dtype)).lower(a, b).compile()
    return functools.partial(compiled, a, b)


def run_suite(
    cases: Sequence[Case] | None = None,
    *,
    size: str = "full",
    devices: Sequence[jax.Device] | None = None,
    precision: str | None = None,
    dtype: str = "float32",
    modes: Sequence[str] = MODES,
    peak_size: int | None = None,
    progress: bool = True,
) -> list[Record]:
    """Run every case on every (distinct kind of) device; one peak-matmul record per device first.

    Args:
      cases: from ``default_cases`` (default: all of them at ``size``).
      size: "full" (MNIST-sized), "small" or "tiny".
      devices: default ``distinct_devices()``: each accelerator kind present plus the CPU.
      precision: matmul precision for every matmul ("default", "high", "highest"; None = JAX's default).
      dtype: "float32" or "bfloat16" (MLP matmuls in bfloat16, float32 params).
      modes: subset of ("eager", "jit", "loop", "fused").
      peak_size: side of the peak matmul (default 1024, 256 for "tiny").
      progress: show a progress bar on stderr.

    Returns:
      All records, in order: per device, the peak matmul then every case's modes. On devices with a
      datasheet peak (``jaxmath.bench.peaks``) "% of peak" uses it; on CPU it uses the same matmul
      timed round-robin with each case's compiled modes (``peak_source="matmul alongside"``).
    """
    check_choice(size, SIZES, name="size")
    if cases is None:
        cases = default_cases(size, precision=precision, dtype=dtype)
    devices = distinct_devices(devices)
    peak_size = peak_size or (256 if size == "tiny" else 1024)
    bar = _progress(len(devices) * (1 + len(cases) * len(modes)), progress)
    out: list[Record] = []
    peak_dtype = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
    try:
        for device in devices:
            def measure_peak(device=device):
                if bar is not None:
                    bar.set_postfix_str(f"{device.device_kind}: peak matmul")
                return peak_matmul(device, size=peak_size, dtype=peak_dtype, precision=precision, repeats=5)

            peak = measure_peak()
            if bar is not None:
                bar.update()
            reference = None
            if peak.peak_source == "measured matmul":
                # No datasheet peak (CPU): time the peak matmul round-robin with every case's compiled
                # modes, so the case and its peak see the same load.
                reference = (_matmul_runner(device, peak_size, peak_dtype, precision), 2.0 * peak_size**3)
            device_records: list[Record] = []
            for case in cases:
                with jax.default_device(device):
                    work = case.setup()

                def on_mode(mode, case=case, device=device):
                    if bar is not None:
                        bar.set_postfix_str(f"{device.device_kind}: {case.name} {mode}")

                recs = benchmark(
                    case.name, work.fn, work.args, body=work.body, carry=work.carry, consts=work.consts,
                    device=device, modes=modes, repeats=case.repeats, eager_repeats=case.eager_repeats,
                    steps=case.steps, precision=precision, dtype=case.dtype, note=case.note, on_mode=on_mode,
                    peak_flops_per_s=peak.peak_flops_per_s, peak_source=peak.peak_source, reference=reference,
                )
                device_records.extend(recs)
                if bar is not None:
                    bar.update(len(modes))
                del work
            out.append(peak)
            out.extend(device_records)
    finally:
        if bar is not None:
            bar.close()
    return out


def summary(records: Sequence[Record]) -> list[str]:
    """The headline ratios of one run, one line each, per device."""
    lines = []
    by_dev: dict[str, dict[tuple[str, str], Record]] = {}
    for r in records:
        by_dev.setdefault(r.device_kind or r.device, {})[(r.case, r.mode)] = r
    for dev, recs in by_dev.items():
        small = {m: recs.get(("mlp-784-16-16-10", m)) for m in MODES}
        if small["jit"] and small["jit"].speedup:
            lines.append(f"{dev}: 784-16-16-10 step, jit vs eager: {small['jit'].speedup:.1f}x")
        if small["fused"] and small["fused"].speedup:
            lines.append(f"{dev}: 784-16-16-10, fused vs loop of jitted steps: {small['fused'].speedup:.2f}x")
        if small["fused"] and small["fused"].note.startswith("batch 128,"):
            per_epoch = small["fused"].median_s * (EPOCH_SAMPLES // 128)
            lines.append(f"{dev}: 784-16-16-10 fused epoch, {EPOCH_SAMPLES // 128} steps of 128 (from the slope): "
                         f"{per_epoch * 1e3:.1f} ms")
        large = {m: recs.get(("mlp-784-1024-1024-10", m)) for m in ("jit", "loop", "fused")}
        shown = [f"{m} {r.percent_of_peak:.0f}%" for m, r in large.items() if r and r.percent_of_peak is not None]
        if shown:
            source = next(r.peak_source for r in large.values() if r)
            lines.append(f"{dev}: 784-1024-1024-10 step, % of {reference_label(source)}: " + ", ".join(shown))
    return lines
