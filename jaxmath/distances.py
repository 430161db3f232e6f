"""Distances of the notes (seed 003: Minkowski, Jaccard, great circle; seed 000: Euclidean) and pairwise matrices.

Every distance ``d(x, y)`` reduces along the last axis and broadcasts the leading axes
(``x: (..., d)``, ``y: (..., d)`` → ``(...)``), keeps the inputs' float dtype and works
under ``jit``, ``vmap`` and ``grad``. ``pairwise_distances(x, y)`` gives the ``(n, m)``
matrix of a metric between the rows of ``x: (n, d)`` and ``y: (m, d)``.

Every public function is itself jitted: choices (``metric``, ``degrees``, ``precision``) are static,
scalar hyperparameters (``p``, ``radius``) are traced, so new values do not recompile. Shape checks run at
trace time; the domains of values (``p >= 1``, ``radius > 0``, non-negative Jaccard weights) are stated in
the docstrings and left to the callers' entry points.

Notation of the notes (seed 000, competitive learning): ``d_i = w_i − x_i`` the
coordinate differences, Euclidean distance ``√(Σ_i d_i²)``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as v
from jaxmath.activations import _float

__all__ = [
    "euclidean",
    "squared_euclidean",
    "manhattan",
    "minkowski",
    "chebyshev",
    "cosine",
    "jaccard",
    "great_circle",
    "pairwise_distances",
    "EARTH_RADIUS_KM",
]

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), the default radius of :func:`great_circle`."""


def _pair(x, y, *, names=("x", "y"), broadcast=True):
    """Float arrays of a common dtype whose last axes agree and (if ``broadcast``) whose leading axes broadcast."""
    x, y = _float(x, name=names[0]), _float(y, name=names[1])
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"{names[0]} and {names[1]} must be vectors along their last axis, got "
            f"{names[0]}.shape={x.shape} and {names[1]}.shape={y.shape}"
        )
    ok = x.shape[-1] == y.shape[-1]
    if ok and broadcast:
        try:
            np.broadcast_shapes(x.shape, y.shape)
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same last axis"
            f"{' and broadcastable leading axes' if broadcast else ''}, got "
            f"{names[0]}.shape={x.shape} and {names[1]}.shape={y.shape}"
        )
    dtype = jnp.result_type(x, y)
    return x.astype(dtype), y.astype(dtype)


def _scalar(value, dtype, *, name):
    v.check_real(value, name=name)
    return jnp.asarray(value).astype(dtype)


def _safe_sqrt(s):
    """√s with gradient 0 (not NaN) at s = 0, where the root has a kink; NaN stays NaN."""
    zero = s == 0
    return jnp.where(zero, jnp.zeros_like(s), jnp.sqrt(jnp.where(zero, jnp.ones_like(s), s)))


# --------------------------------------------------------------------------- Minkowski family


@jax.jit
def squared_euclidean(x, y):
    """Squared Euclidean distance ``Σ_i d_i²`` with ``d_i = x_i − y_i``.

    Args:
      x: ``(..., d)`` float array.
      y: ``(..., d)`` float array, leading axes broadcastable against ``x``.

    Returns:
      ``(...)`` array (the broadcast leading shape), dtype of the inputs.
    """
    x, y = _pair(x, y)
    return jnp.sum((x - y) ** 2, axis=-1)


@jax.jit
def euclidean(x, y):
    """Euclidean distance, the notes' ``√(Σ_{i=1}^n d_i²)`` with ``d_i = w_i − x_i``.

    Symbols: ``w`` → ``x``, ``x`` → ``y`` (symmetric), ``n`` the length of the last axis.
    Seed 000's example: ``w = (3, 2, 2)``, ``x = (1, 2, 3)`` gives ``√5``.

    Args:
      x: ``(..., d)`` float array.
      y: ``(..., d)`` float array, leading axes broadcastable against ``x``.

    Returns:
      ``(...)`` array, dtype of the inputs. The gradient at ``x = y`` is 0, not NaN.
    """
    return _safe_sqrt(squared_euclidean(x, y))


@jax.jit
def manhattan(x, y):
    """Manhattan (city-block, L1) distance ``Σ_i |x_i − y_i|``.

    Args:
      x, y: ``(..., d)`` float arrays (leading axes broadcast).

    Returns:
      ``(...)`` array.
    """
    x, y = _pair(x, y)
    return jnp.sum(jnp.abs(x - y), axis=-1)


@jax.jit
def chebyshev(x, y):
    """Chebyshev (L∞) distance ``max_i |x_i − y_i|``, the limit of Minkowski as ``p → ∞``.

    Args:
      x, y: ``(..., d)`` float arrays (leading axes broadcast).

    Returns:
      ``(...)`` array.
    """
    x, y = _pair(x, y)
    # initial=0 is exact (|x − y| >= 0) and gives the empty vector's distance, 0, like the other metrics.
    return jnp.max(jnp.abs(x - y), axis=-1, initial=0.0)


@jax.jit
def minkowski(x, y, *, p):
    """Minkowski distance ``(Σ_i |x_i − y_i|^p)^(1/p)`` (seed 003).

    ``p = 1`` is Manhattan, ``p = 2`` Euclidean, ``p = inf`` Chebyshev.

    Args:
      x: ``(..., d)`` float array.
      y: ``(..., d)`` float array, leading axes broadcastable against ``x``.
      p: the order, a real number ``>= 1`` or ``math.inf`` (keyword-only, traced: new values do not
        recompile). Below 1 the formula is not a metric; that domain is not checked here.

    Returns:
      ``(...)`` array.
    """
    x, y = _pair(x, y)
    p = _scalar(p, x.dtype, name="p")
    a = jnp.abs(x - y)
    # m·(Σ(|d|/m)^p)^(1/p) with m = max|d|: large p neither overflows nor underflows.
    m = jnp.max(a, axis=-1, keepdims=True)
    nonzero = m != 0  # not m > 0: a NaN must not pass for a zero distance
    safe_m = jnp.where(nonzero, m, jnp.ones_like(m))
    # p = inf takes the Chebyshev branch; the finite branch then sees p = 1 so that its gradient
    # (which the where multiplies by 0) is finite rather than inf·0 = NaN.
    infinite = jnp.isinf(p)
    finite_p = jnp.where(infinite, jnp.ones_like(p), p)
    s = jnp.sum((a / safe_m) ** finite_p, axis=-1, keepdims=True)
    safe_s = jnp.where(nonzero, s, jnp.ones_like(s))
    d = jnp.where(infinite, m, safe_m * safe_s ** (1 / finite_p))
    return jnp.where(nonzero, d, jnp.zeros_like(m))[..., 0]


# --------------------------------------------------------------------------- angle and sets


@jax.jit
def cosine(x, y):
    """Cosine distance ``1 − x·y / (‖x‖ ‖y‖)``, in [0, 2].

    Computed as ``½ ‖x/‖x‖ − y/‖y‖‖²`` (the same number, without cancellation). A zero
    vector is at distance 1 from any non-zero vector and 0 from another zero vector.

    Args:
      x, y: ``(..., d)`` float arrays (leading axes broadcast).

    Returns:
      ``(...)`` array.
    """
    x, y = _pair(x, y)
    nx = _safe_sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
    ny = _safe_sqrt(jnp.sum(y * y, axis=-1, keepdims=True))
    ux = x / jnp.where(nx > 0, nx, jnp.ones_like(nx))
    uy = y / jnp.where(ny > 0, ny, jnp.ones_like(ny))
    # 1 − cos θ = ½‖x̂ − ŷ‖²: exactly 0 for identical directions and accurate for small
    # angles, where 1 − x̂·ŷ cancels catastrophically.
    d = 0.5 * jnp.sum((ux - uy) ** 2, axis=-1)
    # A zero vector has no direction: distance 1 (cosine similarity 0) to anything but
    # another zero vector, and 0 between two zero vectors.
    zx, zy = (nx == 0)[..., 0], (ny == 0)[..., 0]
    d = jnp.where(zx | zy, jnp.ones_like(d), d)
    # d(x, x) = 0 exactly: the two normalisations may be fused differently and differ by an ulp.
    return jnp.where(jnp.all(x == y, axis=-1), jnp.zeros_like(d), d)


@jax.jit
def jaccard(x, y):
    """Jaccard distance ``1 − J(x, y)`` for sets (0/1 or boolean vectors) and its weighted form.

    Sets: ``J(A, B) = |A ∩ B| / |A ∪ B|``; for non-negative weights the weighted
    (Ruzicka) similarity ``J(x, y) = Σ_i min(x_i, y_i) / Σ_i max(x_i, y_i)``, which equals
    the set form on 0/1 vectors. Two empty sets (all zeros) are at distance 0.

    Args:
      x: ``(..., d)`` non-negative (or boolean) array; negative weights are outside the
        definition and not checked here.
      y: ``(..., d)``, leading axes broadcastable against ``x``.

    Returns:
      ``(...)`` float array in [0, 1].
    """
    x, y = _pair(x, y)
    num = jnp.sum(jnp.minimum(x, y), axis=-1)
    den = jnp.sum(jnp.maximum(x, y), axis=-1)
    empty = den == 0
    safe = jnp.where(empty, jnp.ones_like(den), den)
    return jnp.where(empty, jnp.zeros_like(den), 1 - num / safe)


# --------------------------------------------------------------------------- great circle


@partial(jax.jit, static_argnames=("degrees",))
def great_circle(x, y, *, radius=EARTH_RADIUS_KM, degrees=True):
    """Great-circle distance by the haversine formula (seed 003).

    ``d = 2 R arcsin √h`` with ``h = sin²((φ₂ − φ₁)/2) + cos φ₁ cos φ₂ sin²((λ₂ − λ₁)/2)``.
    Symbols: ``(φ₁, λ₁)`` → ``x[..., 0], x[..., 1]`` (latitude, longitude), ``(φ₂, λ₂)`` →
    ``y[..., 0], y[..., 1]``, ``R`` → ``radius``. Evaluated as the equal
    ``2 R atan2(√h, √(1 − h))`` with ``h`` and ``1 − h`` each written as a sum of squares,
    so it stays in range and is exact for identical points (0) and antipodal points (``π R``).

    Args:
      x: ``(..., 2)`` latitudes and longitudes.
      y: ``(..., 2)``, leading axes broadcastable against ``x``.
      radius: sphere radius ``R > 0`` (keyword-only, traced), default the mean Earth radius in km.
      degrees: the coordinates are in degrees (default); ``False`` for radians (keyword-only, static).

    Returns:
      ``(...)`` array, in the units of ``radius``.
    """
    x, y = _pair(x, y)
    if x.shape[-1] != 2:
        raise ValueError(f"x and y must hold (latitude, longitude) pairs on the last axis, got x.shape={x.shape} and y.shape={y.shape}")
    radius = _scalar(radius, x.dtype, name="radius")
    # Differences and means first, then the unit conversion: identical points give exactly
    # 0 (converting first lets the compiler fuse a·c − b·c into an FMA with rounding noise).
    to_radians = jnp.deg2rad if degrees else (lambda a: a)
    half_dlat = to_radians(y[..., 0] - x[..., 0]) / 2
    half_dlon = to_radians(y[..., 1] - x[..., 1]) / 2
    mean_lat = to_radians(x[..., 0] + y[..., 0]) / 2
    # With cos φ₁ cos φ₂ = cos²φ̄ − sin²(Δφ/2) the haversine h and its complement 1 − h are
    # both sums of squares, each accurate on its own. arcsin(√h) is ill-conditioned as
    # h → 1 (antipodes), where 1 − h computed as a difference loses every digit; atan2 of
    # the two roots is exact at both ends: 0 for identical points, π R for antipodal ones.
    s_lat, c_lat = jnp.sin(half_dlat), jnp.cos(half_dlat)
    s_lon, c_lon = jnp.sin(half_dlon), jnp.cos(half_dlon)
    h = (s_lat * c_lon) ** 2 + (jnp.cos(mean_lat) * s_lon) ** 2
    one_minus_h = (c_lat * c_lon) ** 2 + (jnp.sin(mean_lat) * s_lon) ** 2
    return 2 * radius * jnp.arctan2(_safe_sqrt(h), _safe_sqrt(one_minus_h))


# --------------------------------------------------------------------------- pairwise matrices

_METRICS = {
    "euclidean": euclidean,
    "squared_euclidean": squared_euclidean,
    "manhattan": manhattan,
    "chebyshev": chebyshev,
    "minkowski": minkowski,
    "cosine": cosine,
    "jaccard": jaccard,
    "great_circle": great_circle,
}


def _pairwise_euclidean(x, y, *, squared, same, precision):
    # ‖x − y‖² = ‖x‖² + ‖y‖² − 2 x·y: one (n, d)×(d, m) matmul, never an (n, m, d) array.
    xx = jnp.sum(x * x, axis=-1)[:, None]
    yy = jnp.sum(y * y, axis=-1)[None, :]
    d2 = jnp.maximum(xx + yy - 2 * jnp.matmul(x, y.T, precision=precision), 0)  # rounding can go below 0
    if same:
        # d(x, x) = 0 exactly, where the expansion leaves rounding noise.
        d2 = d2 * (1 - jnp.eye(d2.shape[0], dtype=d2.dtype))
    return d2 if squared else _safe_sqrt(d2)


def _metric_kwargs(metric, p, radius, degrees):
    """The keyword arguments ``metric`` takes, refusing those it does not (a trace-time check)."""
    given = {name for name, value in (("p", p), ("radius", radius), ("degrees", degrees)) if value is not None}
    accepted = {"minkowski": {"p"}, "great_circle": {"radius", "degrees"}}.get(metric, set())
    if given - accepted:
        raise TypeError(f"metric={metric!r} does not take {', '.join(sorted(given - accepted))}=")
    if metric == "minkowski":
        if p is None:
            raise TypeError("metric='minkowski' needs the keyword p=")
        return {"p": p}
    if metric == "great_circle":
        return {"radius": EARTH_RADIUS_KM if radius is None else radius, "degrees": True if degrees is None else degrees}
    return {}


@partial(jax.jit, static_argnames=("metric", "degrees", "precision"))
def pairwise_distances(x, y=None, *, metric="euclidean", p=None, radius=None, degrees=None, precision=None):
    """The ``(n, m)`` matrix ``D[a, b] = d(x[a], y[b])`` of a metric between two sets of rows.

    ``"euclidean"`` and ``"squared_euclidean"`` use ``‖x‖² + ‖y‖² − 2 x·y`` (clamped at 0),
    one matrix product and no ``(n, m, d)`` intermediate. The other metrics broadcast the
    distance functions of this module. With ``y=None`` the diagonal is exactly 0.

    Args:
      x: ``(n, d)`` float array.
      y: ``(m, d)`` float array, or ``None`` for ``y = x``.
      metric: one of ``"euclidean"``, ``"squared_euclidean"``, ``"manhattan"``, ``"chebyshev"``,
        ``"minkowski"`` (needs ``p=``), ``"cosine"``, ``"jaccard"``, ``"great_circle"``
        (accepts ``radius=``, ``degrees=``). Keyword-only, static.
      p: the Minkowski order (traced), only with ``metric="minkowski"``.
      radius: the sphere radius (traced), only with ``metric="great_circle"``; default the Earth's.
      degrees: coordinates in degrees (static), only with ``metric="great_circle"``; default ``True``.
      precision: passed to the matrix product of the Euclidean metrics (``None`` = JAX's
        default; on TPU ``"highest"`` gives float32-accurate distances). Static.

    Returns:
      ``(n, m)`` array of the inputs' float dtype.
    """
    v.check_choice(metric, tuple(_METRICS), name="metric")
    kwargs = _metric_kwargs(metric, p, radius, degrees)
    same = y is None
    v.check_ndim(x, 2, name="x")
    if not same:
        v.check_ndim(y, 2, name="y")
    x, y = _pair(x, x if same else y, broadcast=False)
    if metric in ("euclidean", "squared_euclidean"):
        return _pairwise_euclidean(x, y, squared=metric == "squared_euclidean", same=same, precision=precision)
    if metric == "great_circle" and x.shape[-1] != 2:
        raise ValueError(f"x and y must hold (latitude, longitude) pairs, got x.shape={x.shape} and y.shape={y.shape}")
    out = _METRICS[metric](x[:, None, :], y[None, :, :], **kwargs)
    if same:
        # d(x, x) = 0 for every metric here; rounding in the broadcast form can leave ~1e-16.
        out = jnp.where(jnp.eye(out.shape[0], dtype=bool), jnp.zeros_like(out), out)
    return out
