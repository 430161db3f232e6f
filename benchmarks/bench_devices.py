"""Devices benchmark: the `jaxmath bench` suite, printed as markdown for benchmarks/RESULTS.md.

    python benchmarks/bench_devices.py [any `jaxmath bench` flags, e.g. --precision highest --dtype bfloat16]

Prints the machine, the date, the versions and the load first (ratios measured side by side in one
run are robust to load, absolute times are not), then the suite's table and headline ratios, then the
precision parity report.
"""

import os
import platform
import sys
import time

import jax
import jaxlib

from jaxmath.cli import main

if __name__ == "__main__":
    cpus = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"- machine: {platform.machine()}, {cpus} CPU cores, {platform.platform()}")
    print(f"- devices: {[d.device_kind for d in jax.devices()]}; jax {jax.__version__}, jaxlib {jaxlib.__version__}")
    print(f"- load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"- command: python benchmarks/bench_devices.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    sys.exit(main(["bench", "--markdown", "--parity", "--no-progress", *sys.argv[1:]]))
