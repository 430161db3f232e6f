"""Shared test setup: float64 available, data directory pointed at the shared MNIST split."""

import os
from pathlib import Path

import jax

# Tests check float64 as well as float32; every test states its dtype explicitly.
jax.config.update("jax_enable_x64", True)

_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "JAXMATH_DATA_DIR" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["JAXMATH_DATA_DIR"] = str(_SHARED_DATA)
