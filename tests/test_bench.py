"""jaxmath.bench: timing arithmetic on a fake clock, cost analysis, peaks, records round-trip, the runner.

No wall-clock assertions: timings come from scripted clocks, or only their structure is checked.
"""

import importlib.util
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import bench
from jaxmath.bench import cost, peaks, records, timing


class ScriptedClock:
    """Each call advances time by the next scripted increment (0 once the script runs out)."""

    def __init__(self, increments):
        self.increments = list(increments)
        self.now = 100.0
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.increments:
            self.now += self.increments.pop(0)
        return self.now


def _script_for_measure(durations):
    # measure(): for each repeat, clock() at start (no advance) and at end (advance by duration).
    out = []
    for d in durations:
        out += [0.0, d]
    return out


# ----------------------------------------------------------------------------- timing


def test_measure_reports_median_min_max_of_scripted_durations():
    durations = [0.3, 0.1, 0.2, 0.5, 0.4]
    clock = ScriptedClock(_script_for_measure(durations))
    t = timing.measure(lambda x: x + 1, jnp.ones(3, jnp.float32), repeats=5, warmup=2, clock=clock)
    assert t.repeats == 5 and len(t.times) == 5
    np.testing.assert_allclose(t.times, durations, rtol=0, atol=1e-12)
    assert t.median == pytest.approx(0.3) and t.min == pytest.approx(0.1) and t.max == pytest.approx(0.5)


def test_measure_interleaved_runs_round_robin():
    order = []
    fns = {"a": lambda: order.append("a") or jnp.zeros(()), "b": lambda: order.append("b") or jnp.ones(())}
    # repeat 1: a takes 1, b takes 10; repeat 2: a 2, b 20; repeat 3: a 3, b 30
    clock = ScriptedClock(_script_for_measure([1, 10, 2, 20, 3, 30]))
    t = timing.measure_interleaved(fns, repeats=3, warmup=1, clock=clock)
    assert order == ["a", "b"] * 4  # one warm-up round, then three timed rounds
    assert t["a"].times == (1, 2, 3) and t["b"].times == (10, 20, 30)
    assert t["a"].median == 2 and t["b"].median == 20


def test_measure_interleaved_pauses_untimed_before_every_timed_call():
    events = []
    fns = {"a": lambda: events.append("a") or jnp.zeros(()), "b": lambda: events.append("b") or jnp.ones(())}
    clock = ScriptedClock(_script_for_measure([1, 10, 2, 20]))
    t = timing.measure_interleaved(fns, repeats=2, warmup=1, pause=0.5, clock=clock, sleep=events.append)
    # The warm-up round runs without pauses; each timed call is preceded by one pause, outside its timing.
    assert events == ["a", "b", 0.5, "a", 0.5, "b", 0.5, "a", 0.5, "b"]
    assert t["a"].times == (1, 2) and t["b"].times == (10, 20)


@pytest.mark.parametrize("pause", [-0.1, float("nan"), float("inf"), "1"])
def test_measure_interleaved_rejects_bad_pause(pause):
    with pytest.raises(ValueError, match=r"pause must be .* got"):
        timing.measure_interleaved({"a": lambda: jnp.zeros(())}, pause=pause)


def test_time_jit_separates_lower_and_compile_time_and_traces_once():
    traces = []

    def f(x):
        traces.append(1)
        return jnp.sin(x) * 2

    # compile_fn: start, lowered (+0.25 s), compiled (+1.5 s); then 3 repeats of 0.01 s.
    clock = ScriptedClock([0.0, 0.25, 1.5] + _script_for_measure([0.01, 0.01, 0.01]))
    res = timing.time_jit(f, jnp.ones(4, jnp.float32), repeats=3, warmup=2, clock=clock)
    assert res.lower_s == pytest.approx(0.25) and res.compile_s == pytest.approx(1.5)
    assert res.timing.median == pytest.approx(0.01)
    assert len(traces) == 1  # traced once; warm-up and repeats reuse the executable
    np.testing.assert_allclose(res.compiled(jnp.ones(4, jnp.float32)), 2 * np.sin(np.ones(4, np.float32)), rtol=1e-6)


def test_time_eager_runs_op_by_op_under_disable_jit():
    traces = []

    @jax.jit
    def f(x):
        traces.append(1)
        return x * 3

    t = timing.time_eager(f, jnp.ones(2, jnp.float32), repeats=3, warmup=1)
    assert t.repeats == 3
    assert len(traces) == 4  # the Python body ran on every call: no compiled executable was reused


def test_slope_drops_the_fixed_cost():
    fixed, per = 0.7, 0.05
    n1, n2 = 4, 16
    short = timing.Timing.from_times([fixed + per * n1] * 3)
    long = timing.Timing.from_times([fixed + per * n2] * 3)
    s = timing.slope((n1, n2), short, long)
    assert s.per_step == pytest.approx(per) and s.fixed == pytest.approx(fixed)


def test_time_fused_slope_on_a_fake_clock():
    fixed, per, repeats = 0.2, 0.03, 3
    n1, n2 = 2, 6
    script = []
    for n in (n1, n2):
        script += [0.0, 0.1, 0.9]  # lower 0.1 s, compile 0.9 s
        # per-repeat noise that cancels in the paired slopes' median
        script += _script_for_measure([fixed + per * n + e for e in (0.0, 0.001, -0.001)])
    clock = ScriptedClock(script)
    body = lambda c, i: c + i.astype(c.dtype)  # noqa: E731
    s = timing.time_fused(body, jnp.zeros((), jnp.float32), steps=(n1, n2), repeats=repeats, warmup=1, clock=clock)
    assert s.steps == (n1, n2)
    assert s.per_step == pytest.approx(per)
    assert s.fixed == pytest.approx(fixed)
    assert s.compile_s == pytest.approx(0.9)
    assert s.per_step_min <= s.per_step <= s.per_step_max


def test_slope_below_noise_falls_back_to_total_over_steps():
    short = timing.Timing.from_times([0.5, 0.5])
    long = timing.Timing.from_times([0.4, 0.6])  # median equal: zero slope
    s = timing.slope((2, 10), short, long)
    assert s.from_total and s.per_step == pytest.approx(0.05) and s.fixed == 0.0
    assert s.per_step_min == pytest.approx(0.04) and s.per_step_max == pytest.approx(0.06)


def test_time_loop_slope_on_a_fake_clock():
    fixed, per = 0.01, 0.002
    n1, n2 = 3, 7
    script = [0.0, 0.0, 0.5]  # one compilation of the step
    for n in (n1, n2):
        script += _script_for_measure([fixed + per * n] * 2)
    clock = ScriptedClock(script)
    body = lambda c, i: c * 2.0  # noqa: E731
    s = timing.time_loop(body, jnp.ones((), jnp.float32), steps=(n1, n2), repeats=2, warmup=1, clock=clock)
    assert s.per_step == pytest.approx(per) and s.fixed == pytest.approx(fixed)
    assert s.compile_s == pytest.approx(0.5)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_fused_scan_equals_python_loop(dtype):
    def body(c, i):
        return c * 0.5 + jnp.sin(i.astype(c.dtype))

    c0 = jnp.asarray([1.0, -2.0], dtype)
    got = jax.jit(timing.fused(body, 5))(c0)
    want = np.asarray(c0, np.float64)
    for i in range(5):
        want = want * 0.5 + np.sin(i)
    assert got.shape == (2,) and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == jnp.float32 else 1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=(4, 4)), "N1 < N2"),
        (dict(steps=(0, 4)), "steps\\[0\\]"),
        (dict(steps=(1, 2, 3)), "two step counts"),
        (dict(repeats=0), "repeats"),
    ],
)
def test_time_fused_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        timing.time_fused(lambda c, i: c, jnp.zeros(()), **kwargs)


# ----------------------------------------------------------------------------- cost


@pytest.mark.parametrize("m, k, n", [(64, 32, 16), (128, 784, 10)])
def test_cost_analysis_of_a_matmul_is_2mkn(m, k, n):
    a = jnp.ones((m, k), jnp.float32)
    b = jnp.ones((k, n), jnp.float32)
    c = cost.compiled_cost(jnp.matmul, a, b)
    if c.flops is None:
        pytest.skip("this backend reports no cost analysis")
    assert c.flops == 2 * m * k * n
    # at least the two inputs and the output are read/written once
    assert c.bytes_accessed >= 4 * (m * k + k * n + m * n)


def test_cost_of_accepts_dict_list_and_none():
    assert cost.cost_of({"flops": 10.0, "bytes accessed": 20.0}) == cost.Cost(10.0, 20.0)
    assert cost.cost_of([{"flops": 10.0, "bytes accessed": 20.0}]) == cost.Cost(10.0, 20.0)
    assert cost.cost_of([{"flops": 1.0}, {"flops": 2.0}]) == cost.Cost(3.0, None)
    assert cost.cost_of(None) == cost.Cost(None, None)
    assert cost.cost_of({"flops": -1.0}) == cost.Cost(None, None)

    class NoCost:
        def cost_analysis(self):
            raise NotImplementedError

    assert cost.cost_of(NoCost()) == cost.Cost(None, None)


def test_rates_and_fraction_of_peak():
    assert cost.rate(2e9, 0.5) == 4e9
    assert cost.rate(None, 0.5) is None and cost.rate(1.0, 0.0) is None
    assert cost.fraction_of_peak(5e11, 1e12) == 0.5
    assert cost.fraction_of_peak(5e11, None) is None


# ----------------------------------------------------------------------------- peaks


@pytest.mark.parametrize(
    "kind, name",
    [
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
        ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
        ("NVIDIA H200", "NVIDIA H200"),
        ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 40GB"),
        ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB"),
        ("NVIDIA L4", "NVIDIA L4"),
        ("Tesla T4", "NVIDIA T4"),
        ("Tesla V100-SXM2-16GB", "NVIDIA V100"),
        ("TPU v2", "TPU v2 (per core)"),
        ("TPU v3", "TPU v3 (per core)"),
        ("TPU v4", "TPU v4"),
        ("TPU v5 lite", "TPU v5e"),
        ("TPU v5", "TPU v5p"),
        ("TPU v6 lite", "TPU v6e"),
    ],
)
def test_peak_lookup_by_device_kind(kind, name):
    assert peaks.lookup(kind).name == name


def test_peak_lookup_unknown_is_none():
    assert peaks.lookup("cpu") is None
    assert peaks.peak_flops("cpu") is None and peaks.peak_bandwidth("cpu") is None


def test_peak_flops_follow_dtype_and_precision():
    # H100 SXM datasheet (dense): fp32 67, tf32 494.7, bf16 989.4 TFLOP/s; 3.35 TB/s
    assert peaks.peak_flops("NVIDIA H100 80GB HBM3", dtype="float32", precision="default") == pytest.approx(494.7e12)
    assert peaks.peak_flops("NVIDIA H100 80GB HBM3", dtype="float32", precision="highest") == pytest.approx(67e12)
    assert peaks.peak_flops("NVIDIA H100 80GB HBM3", dtype="bfloat16") == pytest.approx(989.4e12)
    assert peaks.peak_bandwidth("NVIDIA H100 80GB HBM3") == pytest.approx(3.35e12)
    # No TF32 on a T4: float32 is the fp32 peak at every precision
    assert peaks.peak_flops("Tesla T4", precision="default") == pytest.approx(8.1e12)
    # TPU v4: 275 bf16 TFLOP/s; float32 at highest is 6 bf16 passes
    assert peaks.peak_flops("TPU v4", dtype="float32", precision="default") == pytest.approx(275e12)
    assert peaks.peak_flops("TPU v4", dtype="float32", precision="high") == pytest.approx(275e12 / 3)
    assert peaks.peak_flops("TPU v4", dtype="float32", precision="highest") == pytest.approx(275e12 / 6)
    with pytest.raises(ValueError, match="precision"):
        peaks.peak_flops("TPU v4", precision="fast")


# ----------------------------------------------------------------------------- records


def _some_records():
    return [
        records.Record(case="mlp", mode="eager", device="cpu:0", device_kind="cpu", backend="cpu",
                       median_s=0.01, min_s=0.009, max_s=0.02, repeats=3),
        records.Record(case="mlp", mode="jit", device="cpu:0", device_kind="cpu", backend="cpu",
                       median_s=1e-4, min_s=9e-5, max_s=2e-4, repeats=10, compile_s=0.3, flops=1.5e6,
                       bytes_accessed=2e5, flops_per_s=1.5e10, percent_of_peak=12.5, speedup=100.0,
                       baseline="eager", note="x, y"),
    ]


def test_records_json_round_trip(tmp_path):
    recs = _some_records()
    path = tmp_path / "r.json"
    records.write_json(recs, path, meta={"load": "1.0"})
    assert records.read_json(path) == recs


def test_records_csv_round_trip(tmp_path):
    recs = _some_records()
    path = tmp_path / "r.csv"
    records.write_csv(recs, path)
    back = records.read_csv(path)
    assert back == recs
    assert back[0].flops is None and back[1].repeats == 10 and isinstance(back[1].repeats, int)


def test_records_json_writes_nan_as_null(tmp_path):
    r = records.Record(case="c", mode="jit", median_s=math.nan)
    records.write_json([r], tmp_path / "r.json")
    assert records.read_json(tmp_path / "r.json")[0].median_s is None


def test_table_has_a_line_per_record_and_the_units():
    table = records.format_table(_some_records())
    lines = table.splitlines()
    assert lines[0] == "cpu:0 (cpu), float32, precision default"
    assert lines[1].split() == ["case", "mode", "time/step", "compile", "speedup", "FLOP/s", "%", "ref"]
    assert lines[3].split() == ["mlp", "eager", "10.00", "ms", "-", "-", "-", "-"]
    assert lines[4].split() == ["mlp", "jit", "100.0", "us", "300.00", "ms", "100.0x", "15.0", "G", "12%"]
    assert lines[5] == "" and lines[6].startswith("speedup: jit and loop vs eager")
    assert len(lines) == 7  # no eager row was timed once: no footnote for it
    md = records.format_markdown(_some_records())
    assert md.count("\n") == 3 and md.startswith("| case |") and "100.0x vs eager" in md and "15.0 GFLOP/s" in md


def _device_records(peak_source, peak_flops, eager_repeats):
    peak = records.Record(case="matmul 1024x1024x1024", mode="peak", device="gpu:0", device_kind="NVIDIA H100",
                          median_s=1e-3, flops_per_s=6e14, peak_flops_per_s=peak_flops, peak_source=peak_source,
                          percent_of_peak=60.0 if peak_source == "table" else None)
    eager = records.Record(case="mlp-784-1024-1024-10", mode="eager", device="gpu:0", device_kind="NVIDIA H100",
                           median_s=0.05, repeats=eager_repeats, peak_source=peak_source)
    jit = records.Record(case="mlp-784-1024-1024-10", mode="jit", device="gpu:0", device_kind="NVIDIA H100",
                         median_s=1e-4, repeats=5, flops_per_s=1.2e15, percent_of_peak=120.0, speedup=500.0,
                         baseline="eager", peak_source="matmul alongside" if peak_source != "table" else "table")
    return [peak, eager, jit]


def test_table_names_the_reference_of_the_percentages_and_marks_eager_timed_once():
    spec = records.format_table(_device_records("table", 1e15, 1)).splitlines()
    assert "spec peak" in spec[1] and "measured 600.0 TFLOP/s" in spec[1]
    assert "10.00 ms*" not in "\n".join(spec) and "50.00 ms*" in "\n".join(spec)
    assert spec[-1] == "* eager timed once (one call after warm-up): a rough figure."
    measured = records.format_table(_device_records("measured matmul", 6e14, 3)).splitlines()
    assert "matmul measured here" in measured[1] and "no spec peak" in measured[1]
    assert not any(line.startswith("*") for line in measured)
    md = records.format_markdown(_device_records("measured matmul", 6e14, 3))
    assert "120% of measured matmul" in md and "% of peak" not in md


def test_table_fits_80_columns_for_the_default_suite_names():
    from jaxmath.bench import runner

    recs = [records.Record(case=case, mode=mode, device="cpu:0", device_kind="cpu", median_s=0.0123, repeats=1,
                           compile_s=1.234, flops_per_s=1.234e11, percent_of_peak=123.0, speedup=1234.5)
            for case in suite.CASES for mode in runner.MODES]
    assert max(len(line) for line in records.format_table(recs).splitlines()) <= 80


# ----------------------------------------------------------------------------- runner


def test_benchmark_records_every_mode_with_flops_and_speedups():
    m, k, n = 8, 16, 4
    x = jnp.ones((m, k), jnp.float32)
    w = jnp.full((k, n), 0.1, jnp.float32)

    def step(w, x):
        return w - 0.01 * x.T @ (x @ w)

    def body(w, i):
        return step(w, x)

    recs = bench.benchmark("toy", step, (w, x), body=body, carry=w, repeats=2, eager_repeats=1,
                           steps=(1, 3), peak_flops_per_s=1e12, peak_source="given")
    assert [r.mode for r in recs] == ["eager", "jit", "loop", "fused"]
    dev = jax.devices()[0]
    for r in recs:
        assert r.case == "toy" and r.backend == dev.platform and r.device_kind == dev.device_kind
        assert r.dtype == "float32" and r.precision == "default"
        assert r.peak_flops_per_s == 1e12 and r.peak_source == "given"
        if r.flops is not None:
            assert r.flops_per_s == pytest.approx(r.flops / r.median_s)
            assert r.percent_of_peak == pytest.approx(100 * r.flops_per_s / 1e12)
    by = {r.mode: r for r in recs}
    if by["jit"].flops is not None:
        assert by["jit"].flops >= 2 * (2 * m * k * n)  # two matmuls of 2·m·k·n
    assert by["jit"].compile_s is not None and by["eager"].compile_s is None
    assert by["jit"].baseline == "eager"
    assert by["jit"].speedup == pytest.approx(by["eager"].median_s / by["jit"].median_s)
    assert by["fused"].baseline == "loop"
    assert by["fused"].speedup == pytest.approx(by["loop"].median_s / by["fused"].median_s)


def test_benchmark_records_the_precision_it_ran_at():
    x = jnp.ones((4, 4), jnp.float32)
    recs = bench.benchmark("mm", jnp.matmul, (x, x), modes=("jit",), repeats=1, precision="highest")
    assert [r.mode for r in recs] == ["jit"] and recs[0].precision == "highest"
    with pytest.raises(ValueError, match="mode"):
        bench.benchmark("mm", jnp.matmul, (x, x), modes=("turbo",))


def test_peak_matmul_counts_2n3_flops():
    r = bench.peak_matmul(size=64, repeats=2)
    assert r.mode == "peak" and r.flops == 2 * 64**3
    assert r.flops_per_s == pytest.approx(r.flops / r.median_s)
    if jax.default_backend() == "cpu":
        assert r.peak_source == "measured matmul" and r.peak_flops_per_s == r.flops_per_s


def test_distinct_devices_keeps_one_per_kind():
    devs = bench.distinct_devices(jax.devices() * 3)
    assert len(devs) == len({(d.platform, d.device_kind) for d in jax.devices()})


# ----------------------------------------------------------------------------- suite and CLI

from jaxmath.bench import plot as bench_plot  # noqa: E402
from jaxmath.bench import suite  # noqa: E402
from jaxmath.cli import main  # noqa: E402


def test_suite_cases_and_bad_names():
    cases = suite.default_cases("tiny")
    assert [c.name for c in cases][0] == "mlp-784-16-16-10" and len(cases) == 4
    with pytest.raises(ValueError, match="case"):
        suite.default_cases("tiny", names=["resnet"])
    with pytest.raises(ValueError, match="size"):
        suite.default_cases("huge")


def test_suite_mlp_step_keeps_float32_params_in_bfloat16_mode():
    case = suite.default_cases("tiny", dtype="bfloat16", names=["mlp-784-16-16-10"])[0]
    assert case.dtype == "bfloat16"
    work = case.setup()
    state, metrics = jax.jit(work.fn)(*work.args)
    leaves = jax.tree_util.tree_leaves(state.params)
    assert all(leaf.dtype == jnp.float32 for leaf in leaves)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves) and bool(jnp.isfinite(metrics["loss"]))
    # the fused body walks through the data: the same as two steps by hand on batches 0 and 1
    batch = 32
    images, labels = work.consts
    step = jax.jit(work.fn)
    by_hand = step(work.carry, (images[:batch], labels[:batch]))[0]
    by_hand = step(by_hand, (images[batch:2 * batch], labels[batch:2 * batch]))[0]
    fused = jax.jit(timing.fused(work.body, 2))(work.carry, *work.consts)
    for a, b in zip(jax.tree_util.tree_leaves(fused.params), jax.tree_util.tree_leaves(by_hand.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_run_suite_tiny_structure():
    cases = suite.default_cases("tiny", precision="highest", names=["mlp-784-16-16-10"])
    recs = suite.run_suite(cases, size="tiny", modes=("jit",), precision="highest", progress=False)
    assert [r.mode for r in recs] == ["peak", "jit"]
    assert recs[0].case == "matmul 256x256x256"
    assert all(r.precision == "highest" for r in recs)
    if jax.default_backend() == "cpu":
        assert recs[0].peak_source == "measured matmul" and recs[1].peak_source == "matmul alongside"
        assert recs[1].percent_of_peak == pytest.approx(100 * recs[1].flops_per_s / recs[1].peak_flops_per_s)
    lines = suite.summary(recs)
    assert not any("jit vs eager" in line for line in lines)  # no eager mode was run


def test_speedups_vs_eager_for_the_plot(tmp_path):
    recs = [records.Record(case="c", mode=m, device_kind="cpu", median_s=t)
            for m, t in (("eager", 1.0), ("jit", 0.01), ("loop", 0.02), ("fused", 0.005))]
    assert bench_plot.speedups_vs_eager(recs) == {"cpu": {"c": {"jit": 100.0, "loop": 50.0, "fused": 200.0}}}
    pytest.importorskip("matplotlib")
    bench_plot.plot_speedups(recs, str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_cli_bench_writes_json_and_csv(tmp_path, capsys):
    j, c = tmp_path / "b.json", tmp_path / "b.csv"
    rc = main(["bench", "--quick", "--case", "logreg", "--mode", "jit", "--no-progress",
               "--json", str(j), "--csv", str(c)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "logreg" in out and "256x256x256 matmul measured here" in out and "suite time" in out
    assert out.splitlines()[-2:] == [f"wrote {j}", f"wrote {c}"]
    from_json, from_csv = records.read_json(j), records.read_csv(c)
    assert [r.mode for r in from_json] == ["peak", "jit"] == [r.mode for r in from_csv]
    assert from_json[1].case == "logreg" and from_json[1].compile_s > 0
    import json as _json
    assert _json.loads(j.read_text())["meta"]["size"] == "tiny"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "--plot", "speedups.jpg"], "--plot must name a .png file"),
        (["bench", "--json", "/nonexistent-dir/x.json"], "--json: directory '/nonexistent-dir' does not exist"),
        (["bench", "--csv", "/nonexistent-dir/x.csv"], "--csv: directory '/nonexistent-dir' does not exist"),
        (["bench", "--size", "huge"], "invalid choice"),
        (["bench", "--precision", "fast"], "invalid choice"),
        (["bench", "--devices", "tpu"] if jax.default_backend() != "tpu" else ["bench", "--devices", "nope"],
         "no such devices"),
    ],
)
def test_cli_bench_bad_flags_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


# --------------------------------------------------------------------------- jaxmath bench compare


def _record_file(path, *, kind, backend, scale, percent, source, version=records.SCHEMA_VERSION, date="2026-11-29"):
    """A synthetic two-case record file as `jaxmath bench --json` writes it (times scaled by ``scale``)."""
    recs = []
    for case, eager, jit, loop, fused in (("mlp-784-16-16-10", 30e-3, 6e-4, 3e-4, 1.5e-4),
                                          ("logreg", 60e-3, 1e-2, 9e-3, 8e-3)):
        for mode, t in (("eager", eager), ("jit", jit), ("loop", loop), ("fused", fused)):
            recs.append(records.Record(case=case, mode=mode, device=f"{backend}:0", device_kind=kind,
                                       backend=backend, median_s=t * scale, percent_of_peak=percent,
                                       peak_source=source))
    recs.insert(0, records.Record(case="matmul 1024x1024x1024", mode="peak", device=f"{backend}:0",
                                  device_kind=kind, backend=backend, median_s=1e-2 * scale))
    records.write_json(recs, path, meta={"jax": "0.10.2", "jaxlib": "0.10.2", "date": date, "size": "small"})
    if version != records.SCHEMA_VERSION:
        data = json.loads(path.read_text())
        if version is None:
            del data["schema_version"]
        else:
            data["schema_version"] = version
        path.write_text(json.dumps(data))
    return recs


def test_compare_merges_a_cpu_and_a_gpu_record_into_one_table(tmp_path):
    from jaxmath.bench import compare

    cpu = _record_file(tmp_path / "cpu.json", kind="cpu", backend="cpu", scale=1.0, percent=40.0,
                       source="matmul alongside")
    gpu = _record_file(tmp_path / "gpu.json", kind="NVIDIA H100 80GB HBM3", backend="gpu", scale=0.05,
                       percent=12.0, source="table", date="2026-11-30")
    sources = compare.load_sources([tmp_path / "cpu.json", tmp_path / "gpu.json"])
    assert [s.label for s in sources] == ["A", "B"]
    rows = compare.merge(sources)
    # Cases in order, then sources: the peak record is the reference, not a case.
    assert [(r.case, r.source, r.backend) for r in rows] == [
        ("mlp-784-16-16-10", "A", "cpu"), ("mlp-784-16-16-10", "B", "gpu"), ("logreg", "A", "cpu"),
        ("logreg", "B", "gpu")]
    for row in rows:
        inputs = {r.mode: r for r in (cpu if row.source == "A" else gpu) if r.case == row.case}
        assert row.eager_s == inputs["eager"].median_s and row.jit_s == inputs["jit"].median_s
        assert row.loop_s == inputs["loop"].median_s and row.fused_s == inputs["fused"].median_s
        assert row.jit_speedup == pytest.approx(inputs["eager"].median_s / inputs["jit"].median_s)
        assert row.fused_speedup == pytest.approx(inputs["eager"].median_s / inputs["fused"].median_s)
    assert rows[1].device_kind == "NVIDIA H100 80GB HBM3" and rows[1].date == "2026-11-30"
    assert (rows[0].percent_of_peak, rows[1].percent_of_peak) == (40.0, 12.0)
    table = compare.format_compare(sources, rows)
    lines = table.splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[0].startswith("A:cpu  cpu, float32, default; jax 0.10.2; 2026-11-29; size small; cpu.json")
    assert lines[1].startswith("B:gpu  NVIDIA H100 80GB HBM3")
    body = [line.split() for line in lines if line.startswith(("mlp", "logreg", " "))]
    # 30 ms / 600 us = 50x jit speedup, 30 ms / 150 us = 200x fused; the GPU's % ref is a spec peak (no "m").
    assert body[0] == ["mlp-784-16-16-10", "A:cpu", "30.00", "ms", "600.0", "us", "150.0", "us", "50.0x", "200x",
                       "40%m"]
    assert body[1] == ["B:gpu", "1.50", "ms", "30.0", "us", "7.5", "us", "50.0x", "200x", "12%"]
    markdown = compare.format_compare_markdown(sources, rows).splitlines()
    assert len(markdown) == 2 + 4 and "NVIDIA H100 80GB HBM3" in markdown[3] and "2026-11-30" in markdown[3]


def test_cli_bench_compare_writes_csv_and_plot_and_refuses_old_records(tmp_path):
    import csv as _csv
    import subprocess
    import sys

    _record_file(tmp_path / "a.json", kind="cpu", backend="cpu", scale=1.0, percent=40.0, source="matmul alongside")
    _record_file(tmp_path / "b.json", kind="TPU v5 lite", backend="tpu", scale=0.1, percent=5.0, source="table")
    _record_file(tmp_path / "old.json", kind="cpu", backend="cpu", scale=1.0, percent=1.0, source="", version=None)
    _record_file(tmp_path / "v1.json", kind="cpu", backend="cpu", scale=1.0, percent=1.0, source="", version=1)

    def cli(*argv):
        code = "import sys; from jaxmath.cli import main; sys.exit(main(sys.argv[1:]))"
        return subprocess.run([sys.executable, "-c", code, "bench", "compare", *argv],
                              capture_output=True, text=True)

    plot = [] if importlib.util.find_spec("matplotlib") is None else ["--plot", str(tmp_path / "c.png")]
    done = cli(str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--csv", str(tmp_path / "c.csv"), *plot)
    assert done.returncode == 0, done.stderr
    assert "B:tpu  TPU v5 lite" in done.stdout and f"wrote {tmp_path / 'c.csv'}" in done.stdout
    with open(tmp_path / "c.csv", newline="") as f:
        rows = list(_csv.DictReader(f))
    assert [(r["case"], r["source"]) for r in rows] == [("mlp-784-16-16-10", "A"), ("mlp-784-16-16-10", "B"),
                                                          ("logreg", "A"), ("logreg", "B")]
    assert float(rows[1]["jit_s"]) == pytest.approx(6e-5) and float(rows[1]["jit_speedup"]) == pytest.approx(50)
    if plot:
        assert (tmp_path / "c.png").stat().st_size > 1000
    for name, says in (("old.json", "no schema_version"), ("v1.json", "schema_version 1")):
        done = cli(str(tmp_path / "a.json"), str(tmp_path / name))
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert f"jaxmath bench compare: error: {tmp_path / name}: {says}" in done.stderr
        assert "re-measure with `jaxmath bench --json" in done.stderr


def test_shipped_cpu_record_reads_with_the_current_schema():
    from jaxmath.bench import compare

    shipped = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "records").glob("*.json"))
    assert shipped, "benchmarks/records/ holds no record"
    for source in compare.load_sources(shipped):
        assert source.meta["jax"] and source.meta["date"] and source.meta["device_kinds"]
        assert {r.mode for r in source.records} >= {"eager", "jit", "fused"}
