"""Hebbian learning: the plain rule on the notes' neuron, Oja's rule and Sanger's generalized Hebbian algorithm.

The notes' neuron (seed 000) takes inputs x_1 … x_n plus a bias input 1 (weight w_0, written last), sums
s = Σ_j w_j·x_j and answers y = f(s) with the sigmoid f(s) = 1 / (1 + e^(−β·s)). Hebb's rule strengthens
the weights of inputs that fire together with the output:

    Δw_ij = η · x_ij · y_i

The weights only ever grow along the data (the notes: "prone to rise the weights ad infinitum");
:func:`fit_hebb` returns the weight norm after every update to show it. Oja's rule adds a decay that keeps
‖w‖ → 1 and makes a linear neuron y = w·x converge to the first principal component; Sanger's generalized
Hebbian algorithm (GHA) extends it to the first k components:

    Oja:     Δw = η · y · (x − y·w)
    Sanger:  ΔW = η · (y·xᵀ − LT(y·yᵀ)·W),   y = W·x,   LT = lower triangle (diagonal included)

Params are the weights, (num_inputs,) for one neuron or (num_neurons, num_inputs) for a layer. Every fit is
``fit_*(x, *, params, ...) -> (params, info)``, a ``lax.scan`` over the samples, and works under ``jit``
and ``vmap``. The rules have no loss: ``info.norms`` holds ‖w‖ after every update instead.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple, Union

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as V
from jaxmath.unsupervised import _guard as _g

Array = jax.Array
LearningRate = Union[float, Callable[[Array], Array]]


class HebbianInfo(NamedTuple):
    """What a Hebbian fit did.

    converged: () bool, always False: the rules have no stopping test and run all ``max_steps`` passes.
    num_steps: () int32, passes over the data made.
    norms: (max_steps · n,) Frobenius norm ‖w‖ after every update (``fit_hebb``), or (max_steps · n,) /
      (max_steps · n, k) row norms ‖w_i‖ (``fit_oja`` / ``fit_sanger``); NaN from a rejected update on.
    nonfinite: () bool, an update would have made the weights (or their norm) non-finite: the fit stopped
      before it and returned the last finite weights (``num_steps`` counts the passes completed before it).
    first_nonfinite_step: () int32, the pass (0-based) holding that update, -1 when every update was finite.
    """

    converged: Array
    num_steps: Array
    norms: Array
    nonfinite: Array = False
    first_nonfinite_step: Array = -1


def init(key, num_inputs: int, *, num_outputs: int | None = None, scale=0.1, dtype=jnp.float32) -> Array:
    """Random weights w ~ N(0, scale²).

    Args:
      key: PRNG key.
      num_inputs: inputs per neuron (count the bias input for :func:`fit_hebb` with ``bias=True``).
      num_outputs: None for one neuron (weights (num_inputs,)), else the number of neurons
        (weights (num_outputs, num_inputs); for Sanger, the number of components).
      scale: standard deviation of the weights.
      dtype: float dtype of the weights.

    Returns:
      (num_inputs,) or (num_outputs, num_inputs) float array.
    """
    V.check_key(key)
    V.check_integer(num_inputs, name="num_inputs", minimum=1)
    if num_outputs is not None:
        V.check_integer(num_outputs, name="num_outputs", minimum=1)
    V.check_positive(scale, name="scale", allow_zero=True)
    shape = (num_inputs,) if num_outputs is None else (num_outputs, num_inputs)
    return jax.random.normal(key, shape, dtype) * jnp.asarray(scale, dtype)


@jax.jit
def with_bias_input(x: Array) -> Array:
    """Append the constant bias input 1 to the last axis: (..., n) -> (..., n + 1)."""
    return jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,), x.dtype)], axis=-1)


def _split_rate(learning_rate: LearningRate):
    """(constant, schedule): a schedule is a static argument of the jitted core, a constant a traced one."""
    if callable(learning_rate):
        return 0.0, learning_rate
    return learning_rate, None


def _lr(constant, schedule, step: Array, dtype) -> Array:
    value = schedule(step) if schedule is not None else constant
    return jnp.asarray(value, dtype)


def _output(weights, x, beta, bias, precision):
    xb = with_bias_input(x) if bias else x
    s = jnp.matmul(weights, xb, precision=precision)
    return jax.nn.sigmoid(jnp.asarray(beta, s.dtype) * s), xb


@partial(jax.jit, static_argnames=("bias", "precision"))
def apply(params, x, *, beta=1.0, bias: bool = True, precision=None) -> Array:
    """Output of the notes' neuron: y = f(s), s = Σ_j w_j·x_j (with x_0 = 1 last), f(s) = 1/(1 + e^(−β·s)).

    Args:
      params: (n + 1,) or (num_neurons, n + 1) weights (n + 1 without the bias input if bias=False).
      x: (n,) or (num_samples, n) float array.
      beta: slope β of the sigmoid.
      bias: append the bias input 1 to x.
      precision: passed to ``jnp.matmul``.

    Returns:
      y in (0, 1): (), (num_neurons,), (num_samples,) or (num_samples, num_neurons).
    """
    _check_single(params, x, bias, ndim=(1, 2))
    xb = with_bias_input(x) if bias else x
    s = jnp.matmul(xb, params.T, precision=precision)
    return jax.nn.sigmoid(jnp.asarray(beta, s.dtype) * s)


@partial(jax.jit, static_argnames=("bias", "precision"))
def hebb_rule(params, x, *, learning_rate=0.1, beta=1.0, bias: bool = True, precision=None):
    """Hebb's rule for one example: Δw_ij = η · x_ij · y_i.

    Symbols: η = ``learning_rate``, x_ij = ``x`` (with the bias input 1 appended), y_i = :func:`apply`.

    Args:
      params: (n + 1,) or (num_neurons, n + 1) weights.
      x: (n,) float array.

    Returns:
      (delta, y): delta of the weights' shape, y of shape () or (num_neurons,).
    """
    _check_single(params, x, bias, ndim=1)
    y, xb = _output(params, x, beta, bias, precision)
    return jnp.asarray(learning_rate, y.dtype) * y[..., None] * xb, y


def _guarded_scan(update, weights, x, max_steps):
    """Scan ``update(w, x_i, u) -> (w', norms')`` over max_steps passes of x, stopping at the first update
    whose weights or norms are not finite (kept out, as every later one); returns (w, HebbianInfo)."""
    n = x.shape[0]

    def body(carry, xi):
        w, u, first_bad = carry
        new, norms = update(w, xi, u)
        w, first_bad = _g.keep_if(_g.all_finite(new, norms), first_bad, u, new, w)
        return (w, u + 1, first_bad), norms  # the norms of rejected updates become NaN below

    start = (weights, jnp.zeros((), jnp.int32), jnp.asarray(_g.NO_STEP, jnp.int32))
    (weights, _, bad_update), norms = lax.scan(body, start, jnp.tile(x, (max_steps, 1)))
    bad = bad_update >= 0
    first = jnp.where(bad, bad_update // n, _g.NO_STEP).astype(jnp.int32)
    steps = jnp.where(bad, first, max_steps).astype(jnp.int32)
    info = HebbianInfo(jnp.zeros((), bool), steps, _g.after_stop(norms, bad_update), bad, first)
    return weights, info


@partial(jax.jit, static_argnames=("schedule", "bias", "max_steps", "precision"))
def _fit_hebb(weights, x, constant, schedule, beta, bias, max_steps, precision):
    def update(w, xi, u):
        y, xb = _output(w, xi, beta, bias, precision)
        w = w + _lr(constant, schedule, u, y.dtype) * y[..., None] * xb
        return w, jnp.linalg.norm(w)

    return _guarded_scan(update, weights, x, max_steps)


def fit_hebb(x, *, params, learning_rate: LearningRate = 0.1, max_steps: int = 1, beta=1.0, bias: bool = True,
             precision=None):
    """Plain Hebbian learning over the rows of x in order (``lax.scan``), starting from ``params``.

    w ← w + η · x · y after every example; one step is one pass over x. On data that excites the neuron the
    norm ‖w‖ never stops growing: ``info.norms`` is the demonstration.

    Args:
      x: (num_samples, n) float array.
      params: (n + 1,) or (num_neurons, n + 1) starting weights (n without the bias input).
      learning_rate: η, a float or a schedule ``update -> η`` (counted from 0 in every call).
      max_steps: passes over x.
      beta, bias, precision: as in :func:`apply`.

    Returns:
      (params, :class:`HebbianInfo`), norms of shape (max_steps · num_samples,).
    """
    x, params = jnp.asarray(x), jnp.asarray(params)
    _check_fit(params, x, bias, learning_rate, max_steps)
    w, info = _fit_hebb(params, x, *_split_rate(learning_rate), beta, bias, max_steps, precision)
    _g.warn_nonfinite(info, where="hebbian.fit_hebb", unit="pass",
                      hint="; the plain rule grows ‖w‖ without bound: fewer passes or a smaller learning_rate")
    return w, info


def _sanger_delta(weights, x, eta, precision):
    y = jnp.matmul(weights, x, precision=precision)
    lower = jnp.tril(y[:, None] * y[None, :])
    return eta * (y[:, None] * x[None, :] - jnp.matmul(lower, weights, precision=precision))


@partial(jax.jit, static_argnames=("precision",))
def oja_rule(params, x, *, learning_rate=0.01, precision=None) -> Array:
    """Oja's rule for a linear neuron y = w·x: Δw = η · y · (x − y·w).

    Symbols: w = ``params`` (d,), x = ``x`` (d,), η = ``learning_rate``. Returns Δw, shape (d,).
    """
    V.check_ndim(params, 1, name="params")
    V.check_same_shape(params, x, names=("params", "x"))
    return _sanger_delta(params[None], x, jnp.asarray(learning_rate, params.dtype), precision)[0]


@partial(jax.jit, static_argnames=("precision",))
def sanger_rule(params, x, *, learning_rate=0.01, precision=None) -> Array:
    """Sanger's generalized Hebbian rule: ΔW = η · (y·xᵀ − LT(y·yᵀ)·W), y = W·x.

    Symbols: W = ``params`` (k, d), one row per component; x = ``x`` (d,); η = ``learning_rate``;
    LT keeps the lower triangle with the diagonal. With k = 1 it is Oja's rule. Returns ΔW, shape (k, d).
    """
    V.check_ndim(params, 2, name="params")
    V.check_ndim(x, 1, name="x")
    if params.shape[-1:] != x.shape:
        raise ValueError(f"params and x must agree on the input size, got params.shape={params.shape} "
                         f"and x.shape={x.shape}")
    return _sanger_delta(params, x, jnp.asarray(learning_rate, params.dtype), precision)


@partial(jax.jit, static_argnames=("schedule", "max_steps", "center", "precision"))
def _fit_sanger(weights, x, constant, schedule, max_steps, center, precision):
    if center:
        x = x - jnp.mean(x, axis=0)
    single = weights.ndim == 1
    w = weights[None] if single else weights

    def update(w, xi, u):
        w = w + _sanger_delta(w, xi, _lr(constant, schedule, u, w.dtype), precision)
        return w, jnp.linalg.norm(w, axis=-1)

    w, info = _guarded_scan(update, w, x, max_steps)
    if single:
        w, info = w[0], info._replace(norms=info.norms[:, 0])
    return w, info


def fit_sanger(x, *, params, learning_rate: LearningRate = 0.01, max_steps: int = 1, center: bool = True,
               precision=None):
    """Sanger's GHA (Oja's rule when ``params`` is one vector) over the rows of x, ``lax.scan``.

    One step is one pass over x. After enough passes with a small or decaying η the rows of W are the first k
    unit eigenvectors of the covariance of x (largest eigenvalue first), up to sign.

    Args:
      x: (num_samples, d) float array.
      params: (d,) (Oja) or (k, d) (Sanger) starting weights, no bias input.
      learning_rate: η, a float or a schedule ``update -> η`` (counted from 0 in every call).
      max_steps: passes over x.
      center: subtract the mean of x first (the rules assume zero-mean data).
      precision: passed to ``jnp.matmul``.

    Returns:
      (params, :class:`HebbianInfo`), norms (max_steps · num_samples,) or (max_steps · num_samples, k).
    """
    return _sanger(x, params, learning_rate, max_steps, center, precision, where="hebbian.fit_sanger")


def _sanger(x, params, learning_rate, max_steps, center, precision, *, where):
    x, params = jnp.asarray(x), jnp.asarray(params)
    _check_fit(params, x, False, learning_rate, max_steps)
    w, info = _fit_sanger(params, x, *_split_rate(learning_rate), max_steps, center, precision)
    _g.warn_nonfinite(info, where=where, unit="pass", stacklevel=4,
                      hint="; lower learning_rate (Oja and Sanger need η·‖x‖² well below 1)")
    return w, info


def fit_oja(x, *, params, learning_rate: LearningRate = 0.01, max_steps: int = 1, center: bool = True,
            precision=None):
    """Oja's rule Δw = η·y·(x − y·w) over the rows of x; ``params`` must be one vector (d,).

    Returns (params, info) as :func:`fit_sanger`; ‖w‖ → 1 and w → ± the first principal component.
    """
    V.check_ndim(params, 1, name="params")
    return _sanger(x, params, learning_rate, max_steps, center, precision, where="hebbian.fit_oja")


def _check_single(params, x, bias, ndim):
    V.check_ndim(params, (1, 2), name="params")
    V.check_ndim(x, ndim, name="x")
    want = x.shape[-1] + (1 if bias else 0)
    if params.shape[-1] != want:
        raise ValueError(f"params must have {want} inputs per neuron (x has {x.shape[-1]}"
                         f"{' plus the bias input' if bias else ''}), got params.shape={params.shape}")


def _check_fit(params, x, bias, learning_rate, max_steps):
    V.check_ndim(params, (1, 2), name="params")
    V.check_ndim(x, 2, name="x")
    want = x.shape[1] + (1 if bias else 0)
    if params.shape[-1] != want:
        raise ValueError(f"params must have {want} inputs per neuron (x has {x.shape[1]} features"
                         f"{' plus the bias input' if bias else ''}), got params.shape={params.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"x must hold at least one sample, got x.shape={x.shape}")
    if not callable(learning_rate):
        V.check_positive(learning_rate, name="learning_rate")
    V.check_integer(max_steps, name="max_steps", minimum=1)
    V.check_finite(x, name="x")
    V.check_finite(params, name="params")
