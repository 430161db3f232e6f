"""Static geometry shared by convolution and pooling: strides, padding per side, output sizes, window slices.

Everything here reads only shapes and Python values, so it runs at trace time and its ``ValueError`` names the
argument before any compiled work.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from jaxmath._validation import check_integer


class Geometry(NamedTuple):
    """Where each output pixel's window lies in the padded input (all per spatial axis: (h, w))."""

    window: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]
    out: tuple[int, int]


def _pair(value: Any, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {name}={value!r}")
        pair = tuple(value)
    else:
        pair = (value, value)
    for v in pair:
        check_integer(v, name=name, minimum=minimum)
    return int(pair[0]), int(pair[1])


def _same_pads(size: int, window: int, stride: int) -> tuple[int, int]:
    # XLA's "SAME": out = ceil(size / stride); the extra goes after, as in lax.padtype_to_pads.
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def normalize_padding(padding: Any, spatial, effective_window, stride) -> tuple[tuple[int, int], tuple[int, int]]:
    """``padding`` ("VALID", "SAME", an int, (ph, pw) or ((top, bottom), (left, right))) -> pads per side."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return (0, 0), (0, 0)
        if mode == "SAME":
            return tuple(_same_pads(s, k, st) for s, k, st in zip(spatial, effective_window, stride))
        raise ValueError(f"padding must be 'VALID', 'SAME', an int or pairs per side, got padding={padding!r}")
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        check_integer(padding, name="padding", minimum=0)
        return (int(padding), int(padding)), (int(padding), int(padding))
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        if all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding):
            for p in padding:
                check_integer(p, name="padding", minimum=0)
            return (int(padding[0]),) * 2, (int(padding[1]),) * 2
        if all(isinstance(p, (tuple, list)) and len(p) == 2 for p in padding):
            for side in padding:
                for p in side:
                    check_integer(p, name="padding", minimum=0)
            return tuple((int(a), int(b)) for a, b in padding)
    raise ValueError(f"padding must be 'VALID', 'SAME', an int or pairs per side, got padding={padding!r}")


def geometry(spatial, window, *, stride, padding, dilation=1, name="w") -> Geometry:
    """Normalize the options and compute the output size; raise ``ValueError`` if no window fits."""
    window = tuple(int(k) for k in window)
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    effective = tuple(d * (k - 1) + 1 for k, d in zip(window, dilation))
    pads = normalize_padding(padding, spatial, effective, stride)
    out = tuple((s + lo + hi - e) // st + 1 for s, (lo, hi), e, st in zip(spatial, pads, effective, stride))
    if min(out) < 1:
        raise ValueError(
            f"the {name} window (effective size {effective}) does not fit the padded input "
            f"(spatial size {tuple(spatial)}, padding {pads}): output size would be {out}"
        )
    return Geometry(window, stride, dilation, pads, out)


def tap_slices(geo: Geometry):
    """The strided row slices (one per window row i) and column slices (one per window column j) of x̃.

    Window row i reads padded rows i·d_h, i·d_h + s_h, ... (oh of them); column j alike.
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = geo.window, geo.stride, geo.dilation, geo.out
    rows = [slice(i * dh, i * dh + sh * (oh - 1) + 1, sh) for i in range(kh)]
    cols = [slice(j * dw, j * dw + sw * (ow - 1) + 1, sw) for j in range(kw)]
    return rows, cols


def window_slices(geo: Geometry):
    """For each window offset (i, j), row-major, the strided slices of the padded input it reads.

    The output pixel (p, q) reads padded pixel (p·s_h + i·d_h, q·s_w + j·d_w) at offset (i, j).
    """
    rows, cols = tap_slices(geo)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            yield (i, j), (slice(None), r, c, slice(None))


def pad_spatial(x, pads, value=0):
    import jax.numpy as jnp

    return jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def crop_spatial(x, pads):
    (top, bottom), (left, right) = pads
    h, w = x.shape[1], x.shape[2]
    return x[:, top:h - bottom, left:w - right, :]
