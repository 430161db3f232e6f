"""Benchmarking JAX code correctly: eager / jit / fused timings, cost analysis, peaks, records, the suite.

    from jaxmath import bench
    res = bench.time_jit(f, x)                 # compile time apart, then median/min/max
    recs = bench.benchmark("my step", step, (state, batch), body=body, carry=state)
    print(bench.format_table(recs))
"""

from jaxmath.bench import compare as compare
from jaxmath.bench.cost import Cost as Cost
from jaxmath.bench.cost import compiled_cost as compiled_cost
from jaxmath.bench.cost import cost_of as cost_of
from jaxmath.bench.peaks import lookup as lookup_peak
from jaxmath.bench.peaks import peak_bandwidth as peak_bandwidth
from jaxmath.bench.peaks import peak_flops as peak_flops
from jaxmath.bench.records import SCHEMA_VERSION as SCHEMA_VERSION
from jaxmath.bench.records import Record as Record
from jaxmath.bench.records import format_markdown as format_markdown
from jaxmath.bench.records import machine_meta as machine_meta
from jaxmath.bench.records import format_table as format_table
from jaxmath.bench.records import read_csv as read_csv
from jaxmath.bench.records import read_json as read_json
from jaxmath.bench.records import write_csv as write_csv
from jaxmath.bench.records import write_json as write_json
from jaxmath.bench.runner import MODES as MODES
from jaxmath.bench.runner import benchmark as benchmark
from jaxmath.bench.runner import distinct_devices as distinct_devices
from jaxmath.bench.runner import peak_matmul as peak_matmul
from jaxmath.bench.timing import Timing as Timing
from jaxmath.bench.timing import fused as fused
from jaxmath.bench.timing import measure as measure
from jaxmath.bench.timing import time_eager as time_eager
from jaxmath.bench.timing import time_fused as time_fused
from jaxmath.bench.timing import time_jit as time_jit
from jaxmath.bench.timing import time_loop as time_loop
from jaxmath.bench.parity import ParityRow as ParityRow
from jaxmath.bench.parity import format_parity as format_parity
from jaxmath.bench.parity import parity_report as parity_report
from jaxmath.bench.plot import plot_speedups as plot_speedups
from jaxmath.bench.suite import default_cases as default_cases
from jaxmath.bench.suite import run_suite as run_suite
