"""Seed 000's linear-regression example: costume price (x) vs number of comic-book issues (y)."""

from __future__ import annotations

import numpy as np

# The slide's table shows only these three rows; the rest is elided as "... ...".
_POINTS = ((240.0, 6370.0), (480.0, 8697.0), (26.0, 2200.0))


def costume_prices() -> tuple[np.ndarray, np.ndarray]:
    """The costume price vs number-of-issues points of seed 000, f(x, Θ) = Θ₁x + Θ₀ fits y from x.

    Only the three rows legible in the notes are shipped, exactly as printed:
    (240, 6370), (480, 8697), (26, 2200). The slide elides the other rows
    ("... ..."), and none are invented here.

    Returns:
      ``(x, y)``: x float32 (3,) costume prices, y float32 (3,) numbers of issues.
    """
    data = np.array(_POINTS, dtype=np.float32)
    return data[:, 0].copy(), data[:, 1].copy()
