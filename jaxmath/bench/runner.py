"""Benchmark one function on one device in every mode and turn the timings into records."""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from jaxmath._validation import check_choice
from jaxmath.bench import cost as _cost
from jaxmath.bench import peaks as _peaks
from jaxmath.bench import timing as _timing
from jaxmath.bench.records import Record

MODES = ("eager", "jit", "loop", "fused")


def _prepare(modes, fn, args, body, carry, consts, steps, clock):
    """Compile what each mode runs; return zero-argument runners and compile times per mode."""
    runners: dict[str, Any] = {}
    compile_s: dict[str, float] = {}
    if "jit" in modes:
        compiled, _, compile_s["jit"] = _timing.compile_fn(fn, *args, clock=clock)
        runners["jit"] = functools.partial(compiled, *args)
        runners["_compiled"] = compiled
    n1, n2 = _timing._check_steps(steps)
    if "loop" in modes:
        step, compile_s["loop"] = _timing.compile_loop_body(body, carry, consts, clock=clock)
        for n in (n1, n2):
            runners[f"loop@{n}"] = functools.partial(_timing.python_loop(step, n, consts), carry)
    if "fused" in modes:
        for n in (n1, n2):
            compiled, _, compile_s["fused"] = _timing.compile_fn(_timing.fused(body, n), carry, *consts, clock=clock)
            runners[f"fused@{n}"] = functools.partial(compiled, carry, *consts)
    return runners, compile_s


def device_label(device: jax.Device) -> str:
    return f"{device.platform}:{device.id}"


def distinct_devices(devices: Sequence[jax.Device] | None = None) -> list[jax.Device]:
    """One device per (platform, kind): every accelerator kind present plus the CPU.

    Eight identical chips time the same; a machine with a GPU also gets its CPU
    row, so the table compares devices side by side.
    """
    if devices is None:
        devices = list(jax.devices())
        if jax.default_backend() != "cpu":
            try:
                devices += jax.devices("cpu")
            except RuntimeError:
                pass
    seen, out = set(), []
    for d in devices:
        key = (d.platform, d.device_kind)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


@contextlib.contextmanager
def placed(device: jax.Device | None, precision: str | None):
    """Run on ``device`` (new arrays land there) with ``precision`` as the default matmul precision."""
    with contextlib.ExitStack() as stack:
        if device is not None:
            stack.enter_context(jax.default_device(device))
        if precision is not None:
            stack.enter_context(jax.default_matmul_precision(precision))
        yield


def peak_matmul(
    device: jax.Device | None = None,
    *,
    size: int = 1024,
    dtype: Any = jnp.float32,
    precision: str | None = None,
    repeats: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> Record:
    """Measure a ``size``×``size``×``size`` matmul: the achievable FLOP/s (the CPU 'peak').

    FLOPs are 2·size³ (the count XLA's cost analysis reports for a matmul).
    """
    with placed(device, precision):
        key = jax.random.PRNGKey(0)
        a = jax.random.normal(key, (size, size), dtype)
        b = jax.random.normal(jax.random.fold_in(key, 1), (size, size), dtype)
        if device is not None:
            a, b = jax.device_put((a, b), device)
        # Low-precision matmuls accumulate in float32, as the models' compute_dtype path does.
        matmul = jnp.matmul
        if jnp.dtype(dtype).itemsize < 4:
            matmul = functools.partial(jnp.matmul, preferred_element_type=jnp.float32)
        res = _timing.time_jit(matmul, a, b, repeats=repeats, warmup=2, clock=clock)
    flops = 2.0 * size**3
    device = device or jax.devices()[0]
    achieved = _cost.rate(flops, res.timing.median)
    table = _peaks.peak_flops(device.device_kind, dtype=jnp.dtype(dtype).name, precision=precision)
    return Record(
        case=f"matmul {size}x{size}x{size}",
        mode="peak",
        device=device_label(device),
        device_kind=device.device_kind,
        backend=device.platform,
        dtype=jnp.dtype(dtype).name,
        precision=precision or "default",
        median_s=res.timing.median,
        min_s=res.timing.min,
        max_s=res.timing.max,
        repeats=res.timing.repeats,
        compile_s=res.compile_s,
        flops=flops,
        flops_per_s=achieved,
        peak_flops_per_s=table if table is not None else achieved,
        peak_source="table" if table is not None else "measured matmul",
        percent_of_peak=None if table is None else 100.0 * achieved / table,
    )


def benchmark(
    case: str,
    fn: Callable,
    args: Sequence[Any],
    *,
    body: Callable | None = None,
    carry: Any = None,
    consts: Sequence[Any] = (),
    device: jax.Device | None = None,
    modes: Sequence[str] = MODES,
    repeats: int = 5,
    eager_repeats: int | None = None,
    steps: Sequence[int] = (4, 16),
    precision: str | None = None,
    dtype: str = "float32",
    peak_flops_per_s: float | None = None,
    peak_source: str = "",
    reference: tuple[Callable[[], Any], float] | None = None,
    note: str = "",
    clock: Callable[[], float] = time.perf_counter,
    on_mode: Callable[[str], None] | None = None,
) -> list[Record]:
    """Time ``fn(*args)`` (eager, jit) and ``body(carry, i)`` (loop, fused) on one device.

    Args:
      case: the case's name in the records.
      fn: one step as a function of ``args`` (e.g. ``train_step(state, batch)``).
      args: its arguments; moved to ``device``.
      body: ``body(carry, i, *consts) -> carry``, the same step for the loop/fused modes
        (None skips those modes).
      carry: the initial carry for ``body``.
      consts: read-only arguments of ``body`` (e.g. the dataset it slices batches from).
      device: where to run (default: JAX's default device).
      modes: any of "eager", "jit", "loop", "fused".
      repeats: timed repeats for jit/loop/fused; ``eager_repeats`` for eager (default: ``repeats``).
      steps: the two step counts ``(N1, N2)`` of the loop/fused slopes.
      precision: the default matmul precision while tracing and running ("default", "high",
        "highest"; None keeps JAX's setting).
      dtype: the compute dtype, recorded.
      peak_flops_per_s: the device's peak (default: the known-peak table for this device).
      reference: ``(run, flops)``: a zero-argument compiled matmul and its FLOPs, timed round-robin
        with the compiled modes; its FLOP/s becomes the peak (``peak_source="matmul alongside"``).
        How the CPU peak is measured "in the same run", robust to other load on the machine.
      on_mode: called with each mode's name before it runs (progress display).

    Returns:
      One ``Record`` per mode, with per-step times, FLOP/s from the compiled cost analysis,
      % of peak, and speedups (jit and loop vs eager, fused vs loop).
    """
    for mode in modes:
        check_choice(mode, MODES, name="mode")
    if body is None:
        modes = [m for m in modes if m in ("eager", "jit")]
    device = device or jax.devices()[0]
    if peak_flops_per_s is None:
        peak_flops_per_s = _peaks.peak_flops(device.device_kind, dtype=dtype, precision=precision)
        peak_source = "table" if peak_flops_per_s is not None else ""
    args = jax.device_put(tuple(args), device)
    if carry is not None:
        carry = jax.device_put(carry, device)
    consts = jax.device_put(tuple(consts), device)
    precision_name = precision or jax.config.jax_default_matmul_precision or "default"

    base = dict(
        case=case,
        device=device_label(device),
        device_kind=device.device_kind,
        backend=device.platform,
        dtype=dtype,
        precision=str(precision_name),
        peak_flops_per_s=peak_flops_per_s,
        peak_source=peak_source,
        note=note,
    )
    flops = bytes_accessed = None
    results: dict[str, Record] = {}
    with placed(device, precision):
        if "eager" in modes:
            if on_mode is not None:
                on_mode("eager")
            # The first op-by-op call compiles one small executable per primitive and shape;
            # the second still meets a few new ones: two warm-up calls.
            t = _timing.time_eager(fn, *args, repeats=eager_repeats or repeats, warmup=2, clock=clock)
            results["eager"] = Record(mode="eager", median_s=t.median, min_s=t.min, max_s=t.max,
                                      repeats=t.repeats, **base)
        compiled_modes = [m for m in modes if m != "eager"]
        if compiled_modes:
            if on_mode is not None:
                on_mode(", ".join(compiled_modes))
            runners, compile_s = _prepare(compiled_modes, fn, args, body, carry, consts, steps, clock)
            if "jit" in compiled_modes:
                flops, bytes_accessed = _cost.cost_of(runners.pop("_compiled"))
            if reference is not None:
                runners["_reference"] = reference[0]
            # Round-robin repeats: a burst of other load on the machine hits every mode alike.
            timings = _timing.measure_interleaved(runners, repeats=repeats, warmup=1, clock=clock)
            if reference is not None:
                peak_flops_per_s = _cost.rate(reference[1], timings["_reference"].median)
                peak_source = "matmul alongside"
                base.update(peak_flops_per_s=peak_flops_per_s, peak_source=peak_source)
                for rec in results.values():
                    rec.peak_flops_per_s, rec.peak_source = peak_flops_per_s, peak_source
            for mode in compiled_modes:
                if mode == "jit":
                    t = timings["jit"]
                    rec = Record(mode=mode, median_s=t.median, min_s=t.min, max_s=t.max, repeats=t.repeats,
                                 compile_s=compile_s["jit"], **base)
                else:
                    n1, n2 = steps
                    s = _timing.slope((n1, n2), timings[f"{mode}@{n1}"], timings[f"{mode}@{n2}"], compile_s[mode])
                    rec = Record(mode=mode, median_s=s.per_step, min_s=s.per_step_min, max_s=s.per_step_max,
                                 repeats=repeats, compile_s=s.compile_s, **base)
                    if s.from_total:
                        rec.note = (rec.note + "; " if rec.note else "") + f"slope below noise: t(N2)/N2, N2={n2}"
                results[mode] = rec

    if flops is None and "jit" not in results:
        with placed(device, precision):
            flops, bytes_accessed = _cost.compiled_cost(fn, *args)
    for rec in results.values():
        rec.flops, rec.bytes_accessed = flops, bytes_accessed
        rec.flops_per_s = _cost.rate(flops, rec.median_s)
        rec.bytes_per_s = _cost.rate(bytes_accessed, rec.median_s)
        frac = _cost.fraction_of_peak(rec.flops_per_s, peak_flops_per_s)
        rec.percent_of_peak = None if frac is None else 100.0 * frac
    for mode, baseline in (("jit", "eager"), ("loop", "eager"), ("fused", "loop")):
        if mode in results and baseline in results:
            a, b = results[baseline].median_s, results[mode].median_s
            if a and b and b > 0:
                results[mode].speedup, results[mode].baseline = a / b, baseline
    return [results[m] for m in modes if m in results]
