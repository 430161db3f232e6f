"""Timing JAX code correctly: eager, jit and fused (``lax.scan``) modes.

Three traps make naive JAX timings wrong, and each mode here avoids them:

* **Asynchronous dispatch.** A jitted call returns before the device has finished;
  every timed call is followed by ``jax.block_until_ready`` on its output.
* **Compile time inside the first call.** ``time_jit`` lowers and compiles
  through ``jax.jit(f).lower(*args).compile()`` and reports that time apart,
  then times only the compiled executable (after warm-up calls).
* **Fixed costs.** One call of a scan over N steps pays dispatch, transfers and
  loop setup once. ``time_fused`` (and ``time_loop``, a Python loop of jitted
  steps) time two step counts N1 < N2 and report the slope
  ``(t(N2) - t(N1)) / (N2 - N1)``, the per-step cost with the fixed cost dropped.

Every function takes ``clock`` (default ``time.perf_counter``) so tests can
drive the arithmetic with a fake clock.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath._validation import check_integer

Clock = Callable[[], float]


class Timing(NamedTuple):
    """Wall-clock seconds of repeated calls: median, min, max over ``repeats``."""

    median: float
    min: float
    max: float
    repeats: int
    times: tuple[float, ...]

    @classmethod
    def from_times(cls, times: Sequence[float]) -> "Timing":
        times = tuple(float(t) for t in times)
        return cls(statistics.median(times), min(times), max(times), len(times), times)


class JitTiming(NamedTuple):
    """Steady-state timing of a compiled function plus the one-off costs.

    ``lower_s`` is tracing + lowering to StableHLO; ``compile_s`` is XLA's
    compilation; ``compiled`` is the executable (for ``cost_analysis``).
    """

    timing: Timing
    lower_s: float
    compile_s: float
    compiled: Any


class SlopeTiming(NamedTuple):
    """Per-step cost of a loop measured at two step counts.

    ``per_step`` is the slope of the medians, ``per_step_min``/``per_step_max`` the
    smallest and largest slope over paired repeats, ``fixed`` the intercept (the
    cost paid once per call), ``compile_s`` the compile time of the longer loop.
    ``from_total`` is True when the slope was not positive (the step costs less than
    the timing noise) and ``per_step`` fell back to ``t(N2) / N2``, an upper bound.
    """

    per_step: float
    per_step_min: float
    per_step_max: float
    fixed: float
    steps: tuple[int, int]
    timings: tuple[Timing, Timing]
    compile_s: float
    from_total: bool = False


def block(tree: Any) -> Any:
    """Wait until every array in ``tree`` is computed (JAX dispatch is asynchronous)."""
    return jax.block_until_ready(tree)


def _check_repeats(repeats: int, warmup: int) -> None:
    check_integer(repeats, name="repeats", minimum=1)
    check_integer(warmup, name="warmup", minimum=0)


def measure(fn: Callable, *args: Any, repeats: int = 5, warmup: int = 1, clock: Clock = time.perf_counter) -> Timing:
    """Time ``fn(*args)`` ``repeats`` times after ``warmup`` untimed calls, blocking on every output."""
    _check_repeats(repeats, warmup)
    for _ in range(warmup):
        block(fn(*args))
    times = []
    for _ in range(repeats):
        start = clock()
        block(fn(*args))
        times.append(clock() - start)
    return Timing.from_times(times)


def measure_interleaved(
    fns: Mapping[str, Callable[[], Any]],
    *,
    repeats: int = 5,
    warmup: int = 1,
    pause: float = 0.0,
    clock: Clock = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Timing]:
    """Time several zero-argument callables round-robin: repeat r runs each of them once, in order.

    On a machine shared with other work, load comes in bursts; interleaving makes a burst hit
    every callable alike, so the ratios between them stay meaningful.

    ``pause`` seconds are slept (untimed) before every timed call. Interleaving NumPy with XLA needs it:
    OpenBLAS's worker threads keep spinning for a while after a call and would slow whatever runs next.
    """
    _check_repeats(repeats, warmup)
    if not (isinstance(pause, (int, float)) and math.isfinite(pause) and pause >= 0):
        raise ValueError(f"pause must be a finite number of seconds >= 0, got {pause!r}")
    for _ in range(warmup):
        for f in fns.values():
            block(f())
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, f in fns.items():
            if pause:
                sleep(pause)
            start = clock()
            block(f())
            times[name].append(clock() - start)
    return {name: Timing.from_times(ts) for name, ts in times.items()}


def time_eager(fn: Callable, *args: Any, repeats: int = 3, warmup: int = 1, clock: Clock = time.perf_counter) -> Timing:
    """Time ``fn(*args)`` op by op: every ``jax.jit`` inside is disabled (``jax.disable_jit``).

    This is what the same code costs without XLA fusing it: each primitive is
    dispatched separately from Python.
    """
    with jax.disable_jit():
        return measure(fn, *args, repeats=repeats, warmup=warmup, clock=clock)


def compile_fn(fn: Callable, *args: Any, clock: Clock = time.perf_counter) -> tuple[Any, float, float]:
    """``jax.jit(fn).lower(*args).compile()`` timed: returns ``(compiled, lower_s, compile_s)``."""
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    start = clock()
    lowered = jitted.lower(*args)
    lowered_at = clock()
    compiled = lowered.compile()
    done = clock()
    return compiled, lowered_at - start, done - lowered_at


def time_jit(
    fn: Callable, *args: Any, repeats: int = 10, warmup: int = 2, clock: Clock = time.perf_counter
) -> JitTiming:
    """Compile ``fn`` for ``args`` (timed apart), then time the compiled executable.

    Args:
      fn: a function of arrays/pytrees (wrap static arguments with ``functools.partial``),
        or an already ``jax.jit``-ed function.
      *args: example arguments; their shapes, dtypes and devices decide the compilation.
      repeats: timed calls (median, min and max are reported).
      warmup: untimed calls first.

    Returns:
      ``JitTiming(timing, lower_s, compile_s, compiled)``.
    """
    _check_repeats(repeats, warmup)
    compiled, lower_s, compile_s = compile_fn(fn, *args, clock=clock)
    timing = measure(compiled, *args, repeats=repeats, warmup=warmup, clock=clock)
    return JitTiming(timing, lower_s, compile_s, compiled)


def fused(body: Callable[..., Any], num_steps: int) -> Callable[..., Any]:
    """``(carry, *consts) -> carry``: ``carry = body(carry, i, *consts)`` for ``i < num_steps`` in one ``lax.scan``.

    ``consts`` (e.g. the dataset the steps slice batches from) are arguments, not
    captured constants, so they are neither baked into the program nor copied per step.
    """

    def run(carry, *consts):
        def scan_body(c, i):
            return body(c, i, *consts), None

        carry, _ = lax.scan(scan_body, carry, jnp.arange(num_steps, dtype=jnp.int32))
        return carry

    return run


def slope(steps: tuple[int, int], t_short: Timing, t_long: Timing, compile_s: float = 0.0) -> SlopeTiming:
    """Per-step cost ``(t(N2) - t(N1)) / (N2 - N1)`` and fixed cost ``t(N1) - N1 * per_step``.

    A slope that is not positive (noise larger than the steps' cost) falls back to
    ``t(N2) / N2`` with ``from_total=True``.
    """
    n1, n2 = steps
    dn = n2 - n1
    per_step = (t_long.median - t_short.median) / dn
    pairs = [(b - a) / dn for a, b in zip(t_short.times, t_long.times)]
    if per_step <= 0:
        totals = [t / n2 for t in t_long.times]
        return SlopeTiming(t_long.median / n2, min(totals), max(totals), 0.0, (n1, n2), (t_short, t_long),
                           compile_s, True)
    fixed = t_short.median - n1 * per_step
    return SlopeTiming(per_step, min(pairs), max(pairs), fixed, (n1, n2), (t_short, t_long), compile_s)


def _check_steps(steps: Sequence[int]) -> tuple[int, int]:
    if len(steps) != 2:
        raise ValueError(f"steps must be two step counts (N1, N2), got steps={tuple(steps)!r}")
    n1, n2 = steps
    check_integer(n1, name="steps[0]", minimum=1)
    check_integer(n2, name="steps[1]", minimum=1)
    if n2 <= n1:
        raise ValueError(f"steps must satisfy N1 < N2, got steps={(n1, n2)!r}")
    return int(n1), int(n2)


def time_fused(
    body: Callable[..., Any],
    carry: Any,
    *,
    consts: Sequence[Any] = (),
    steps: Sequence[int] = (4, 16),
    repeats: int = 5,
    warmup: int = 1,
    clock: Clock = time.perf_counter,
) -> SlopeTiming:
    """Per-step time of ``body`` run N times inside one compiled ``lax.scan``.

    Args:
      body: ``body(carry, i, *consts) -> carry``, one step (``i`` is the int32 step index, e.g. to
        pick a batch of ``consts`` with ``lax.dynamic_slice``).
      carry: the initial carry (a pytree of arrays, e.g. a train state).
      consts: arguments every step reads but does not change (e.g. the dataset).
      steps: ``(N1, N2)`` with ``1 <= N1 < N2``; each is compiled separately (compile time apart).
      repeats, warmup: per step count.

    Returns:
      ``SlopeTiming``: per-step seconds as the slope between the two step counts.
    """
    steps = _check_steps(steps)
    _check_repeats(repeats, warmup)
    timings, compile_s = [], 0.0
    for n in steps:
        compiled, _, c_s = compile_fn(fused(body, n), carry, *consts, clock=clock)
        compile_s = c_s
        timings.append(measure(compiled, carry, *consts, repeats=repeats, warmup=warmup, clock=clock))
    return slope(steps, timings[0], timings[1], compile_s)


def time_loop(
    body: Callable[..., Any],
    carry: Any,
    *,
    consts: Sequence[Any] = (),
    steps: Sequence[int] = (4, 16),
    repeats: int = 5,
    warmup: int = 1,
    clock: Clock = time.perf_counter,
) -> SlopeTiming:
    """Per-step time of a Python loop of jitted ``body(carry, i, *consts)`` calls (blocked once, at the end).

    The usual hand-written training loop; compare with ``time_fused`` to see what
    moving the loop into the compiled program saves. Arguments as in ``time_fused``.
    """
    steps = _check_steps(steps)
    _check_repeats(repeats, warmup)
    compiled, compile_s = compile_loop_body(body, carry, consts, clock=clock)
    timings = [measure(python_loop(compiled, n, consts), carry, repeats=repeats, warmup=warmup, clock=clock)
               for n in steps]
    return slope(steps, timings[0], timings[1], compile_s)


def compile_loop_body(body: Callable[..., Any], carry: Any, consts: Sequence[Any] = (), *,
                      clock: Clock = time.perf_counter) -> tuple[Any, float]:
    """``body(carry, i, *consts)`` compiled (for ``python_loop``) and its compile time."""
    compiled, _, compile_s = compile_fn(body, carry, jnp.asarray(0, jnp.int32), *consts, clock=clock)
    return compiled, compile_s


def python_loop(compiled_body: Callable[..., Any], num_steps: int, consts: Sequence[Any] = ()) -> Callable[[Any], Any]:
    """``carry -> carry``: a Python loop of ``num_steps`` calls of a compiled step (dispatched asynchronously)."""
    indices = [jnp.asarray(i, jnp.int32) for i in range(num_steps)]

    def loop(c):
        for i in indices:
            c = compiled_body(c, i, *consts)
        return c

    return loop
