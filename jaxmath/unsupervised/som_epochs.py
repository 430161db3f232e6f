"""The compiled epochs of the Kohonen map (:mod:`jaxmath.unsupervised.som` checks the arguments and calls them).

Online (one example per step, ``lax.scan``): the tuned ``_fit_online`` and the plain ``_fit_online_reference``
it must reproduce. Batch (one pass over x per step): ``_fit_batch``. Every loop is guarded the same way: a step
that would take some squared neuron norm ‖w_i‖² out of range (NaN, Inf, or past the square of the weights'
dtype's largest value, measured in at least float32) is not made, nor any after it; the weights returned are
the last finite ones and :class:`SOMInfo` says at which step the fit stopped.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath.unsupervised import _distances as D
from jaxmath.unsupervised import _guard as _g
from jaxmath.unsupervised import neighbourhoods as _nb
from jaxmath.unsupervised import som_grid as G

Array = jax.Array


class SOMInfo(NamedTuple):
    """What a SOM fit did.

    converged: () bool. Online: always False (the map has no stopping test and runs all ``max_steps`` steps).
      Batch: the assignment of the last step equals the one before (False with one step).
    num_steps: () int32, steps made.
    loss_history: (max_steps,). Online: the distance ‖I(s) − w_best‖ of each step's example to its winner,
      before the update (its mean over an epoch estimates the quantization error). Batch: the quantization
      error of the weights each step starts from.
    winners: online (max_steps,) int32 flat winner r·cols + c of each step; batch (max_steps, n).
    nonfinite: () bool, a step would have taken some ‖w_i‖² out of range (NaN, Inf, or past the largest
      value of the weights' dtype squared, in at least float32): the fit stopped before it and returned
      the last finite weights (``num_steps`` steps made, ``converged`` False, ``loss_history`` NaN and
      ``winners`` -1 from that step on).
    first_nonfinite_step: () int32, the 0-based index of that step, -1 when every step was finite.
    """

    converged: Array
    num_steps: Array
    loss_history: Array
    winners: Array
    nonfinite: Array = False
    first_nonfinite_step: Array = -1


def _positions(rows, cols, topology, neighbourhood, dtype):
    if neighbourhood == "bubble":
        return jnp.asarray(G.grid_indices(rows, cols), dtype)
    return jnp.asarray(G.grid_coordinates(rows, cols, topology=topology), dtype)


def _schedules(learning_rate, sigma, max_steps, lr_decay, sigma_decay, dtype):
    # Schedules are computed in at least float32: s up to T is not exact in bfloat16.
    sdtype = jnp.promote_types(dtype, jnp.float32)
    s = jnp.arange(max_steps, dtype=sdtype)
    T = jnp.asarray(max_steps, sdtype)
    eta = lr_decay(jnp.asarray(learning_rate, sdtype), s, T)
    sig = sigma_decay(jnp.asarray(sigma, sdtype), s, T)
    return eta.astype(dtype), sig.astype(dtype)


def _norm_limit(dtype, acc):
    """Largest accepted ‖w_i‖², in the accumulation dtype: beyond it some weight exceeds the dtype's range.

    A step is rejected when an update would take a squared neuron norm past it (or to NaN / Inf): both the
    tuned epoch (which only carries ‖w_i‖²) and the reference apply this same test.
    """
    big = float(jnp.finfo(dtype).max)
    return jnp.asarray(min(big * big, float(jnp.finfo(acc).max)), acc)


def _finish(w, winners, losses, first_bad, converged, max_steps):
    """Weights and SOMInfo of a guarded loop: steps from the first rejected one did not run."""
    bad = first_bad >= 0
    steps = jnp.where(bad, first_bad, max_steps).astype(jnp.int32)
    mask = (jnp.arange(winners.shape[0]) >= first_bad) & bad
    winners = jnp.where(mask.reshape((-1,) + (1,) * (winners.ndim - 1)), -1, winners)
    return w, SOMInfo(converged & ~bad, steps, _g.after_stop(losses, first_bad), winners, bad, first_bad)


def _order(key, n, max_steps, shuffle):
    order = jnp.arange(max_steps) % n
    return jax.random.permutation(key, order) if shuffle else order


# Most steps between two exact recomputations of ‖w_i‖² in the online epoch (see ``_fit_online``): the
# closed-form update in between adds one rounding per step, so this bounds the drift to about what a fresh
# 784-term sum carries anyway.
_NORM_REFRESH = 256
# XLA:CPU hands an elementwise loop whose output exceeds 256 KiB to two threads. One SOM step is a few
# microseconds of work, so that hand-off, once per step, costs more than it saves; the update is written per
# block of neurons below this size instead (CPU only: GPUs and TPUs take one kernel).
_CPU_BLOCK_BYTES = 256 * 1024


def _row_blocks(m, d, itemsize):
    if jax.default_backend() != "cpu":
        return ((0, m),)
    num = max(1, -(-m * d * itemsize // _CPU_BLOCK_BYTES))
    size = -(-m // num)
    return tuple((lo, min(lo + size, m)) for lo in range(0, m, size))


_STATIC = ("max_steps", "neighbourhood", "topology", "lr_decay", "sigma_decay", "shuffle", "precision")


@partial(jax.jit, static_argnames=_STATIC)
def _fit_online(params, x, learning_rate, sigma, key, max_steps, neighbourhood, topology, lr_decay,
                sigma_decay, shuffle, precision):
    """The tuned online epoch: (weights (rows, cols, d), winners (T,), distances (T,))."""
    rows, cols, d = params.shape
    m = rows * cols
    dtype = params.dtype
    # ‖w‖², ‖x‖² and w·x are carried in at least float32: the closed form below is a difference of sums.
    acc = jnp.promote_types(dtype, jnp.float32)
    pos = _positions(rows, cols, topology, neighbourhood, dtype)
    fn = _nb.get(neighbourhood)
    order = _order(key, x.shape[0], max_steps, shuffle)
    etas, sigmas = _schedules(learning_rate, sigma, max_steps, lr_decay, sigma_decay, dtype)
    x_sq = jnp.sum(jnp.square(x.astype(acc)), axis=1)[order]  # ‖x‖² of each step's example, one pass over x

    # The epoch runs as num_chunks chunks of chunk steps; padded steps have η = 0, so they leave w and ‖w‖²
    # exactly as they are (σ is padded with its last value to keep Θ finite), and their outputs are dropped.
    num_chunks = -(-max_steps // _NORM_REFRESH)
    chunk = -(-max_steps // num_chunks)
    pad = num_chunks * chunk - max_steps

    def padded(a, value):
        return jnp.concatenate([a, jnp.full((pad,), value, a.dtype)]).reshape(num_chunks, chunk)

    steps = jnp.arange(num_chunks * chunk, dtype=jnp.int32).reshape(num_chunks, chunk)
    inputs = (steps, padded(order, 0), padded(x_sq, 0), padded(etas, 0), padded(sigmas, sigmas[-1]))
    blocks = _row_blocks(m, d, jnp.dtype(dtype).itemsize)
    limit = _norm_limit(dtype, acc)

    def step(carry, inputs):
        ws, w_sq, first_bad = carry
        t, idx, xx, eta, sig = inputs
        xi = x[idx]
        wx = jnp.concatenate([jnp.matmul(w, xi, precision=precision, preferred_element_type=acc) for w in ws])
        # argmin ‖x − w_i‖² = argmin ‖w_i‖² − 2·w_i·x: one matrix-vector product per step, with ‖w_i‖² carried.
        score = w_sq - 2 * wx
        best = jnp.argmin(score).astype(jnp.int32)
        dist = jnp.sqrt(jnp.maximum(score[best] + xx, 0))
        a = eta * fn(pos - pos[best], sigma=sig).astype(dtype)
        # w' = (1 − a)·w + a·x, so ‖w'‖² = (1 − a)²‖w‖² + 2a(1 − a)·w·x + a²‖x‖²: no second pass over w, and
        # the new norms tell whether the update stays in range before it is made.
        a_acc = a.astype(acc)
        b = 1 - a_acc
        new_sq = b * b * w_sq + 2 * a_acc * b * wx + a_acc * a_acc * xx
        # One comparison covers NaN and Inf too: a non-finite a (σ or η out of range) makes new_sq NaN or Inf.
        ok = jnp.all(new_sq <= limit) | (t >= max_steps)  # padded steps (η = 0) never count
        ok = ok & (first_bad < 0)
        first_bad = jnp.where((first_bad < 0) & ~ok, t, first_bad)
        # A rejected step is an update by 0: w stays exactly as it is.
        a = jnp.where(ok, a, jnp.zeros_like(a))
        ws = tuple(w + a[lo:hi, None] * (xi - w) for w, (lo, hi) in zip(ws, blocks))
        return (ws, jnp.where(ok, new_sq, w_sq), first_bad), (best, dist)

    def run_chunk(carry, inputs):
        ws, first_bad = carry
        w_sq = jnp.concatenate([jnp.sum(jnp.square(w.astype(acc)), axis=1) for w in ws])  # exact, once a chunk
        (ws, _, first_bad), out = lax.scan(step, (ws, w_sq, first_bad), inputs)
        return (ws, first_bad), out

    w = params.reshape(m, d)
    start = (tuple(w[lo:hi] for lo, hi in blocks), jnp.asarray(_g.NO_STEP, jnp.int32))
    (ws, first_bad), (winners, dists) = lax.scan(run_chunk, start, inputs)
    w = jnp.concatenate(ws) if len(ws) > 1 else ws[0]
    return (w.reshape(rows, cols, d), winners.reshape(-1)[:max_steps],
            dists.reshape(-1)[:max_steps].astype(dtype), first_bad)


@partial(jax.jit, static_argnames=_STATIC)
def _fit_online_reference(params, x, learning_rate, sigma, key, max_steps, neighbourhood, topology, lr_decay,
                          sigma_decay, shuffle, precision):
    """The online epoch as the notes write it, one full distance computation per step (what ``_fit_online``
    must reproduce): w_i ← w_i + Θ(best, i)·η(s)·(I(s) − w_i); a step that takes some ‖w_i‖² out of range
    (:func:`_norm_limit`) is not made, nor any after it."""
    rows, cols, d = params.shape
    dtype = params.dtype
    acc = jnp.promote_types(dtype, jnp.float32)
    pos = _positions(rows, cols, topology, neighbourhood, dtype)
    fn = _nb.get(neighbourhood)
    order = _order(key, x.shape[0], max_steps, shuffle)
    etas, sigmas = _schedules(learning_rate, sigma, max_steps, lr_decay, sigma_decay, dtype)
    limit = _norm_limit(dtype, acc)

    def step(carry, inputs):
        w, first_bad = carry
        t, idx, eta, sig = inputs
        diff = x[idx] - w
        sq = jnp.sum(diff * diff, axis=-1)
        best = jnp.argmin(sq).astype(jnp.int32)
        a = eta * fn(pos - pos[best], sigma=sig).astype(dtype)
        new = w + a[:, None] * diff
        new_sq = jnp.sum(jnp.square(new.astype(acc)), axis=-1)
        w, first_bad = _g.keep_if(jnp.all(new_sq <= limit), first_bad, t, new, w)
        return (w, first_bad), (best, jnp.sqrt(sq[best]))

    steps = jnp.arange(max_steps, dtype=jnp.int32)
    start = (params.reshape(rows * cols, d), jnp.asarray(_g.NO_STEP, jnp.int32))
    (w, first_bad), (winners, dists) = lax.scan(step, start, (steps, order, etas, sigmas))
    return w.reshape(rows, cols, d), winners, dists, first_bad


@partial(jax.jit, static_argnames=("max_steps", "neighbourhood", "topology", "lr_decay", "sigma_decay",
                                   "precision"))
def _fit_batch(params, x, learning_rate, sigma, max_steps, neighbourhood, topology, lr_decay, sigma_decay,
               precision):
    rows, cols, d = params.shape
    dtype = params.dtype
    pos = _positions(rows, cols, topology, neighbourhood, dtype)
    fn = _nb.get(neighbourhood)
    etas, sigmas = _schedules(learning_rate, sigma, max_steps, lr_decay, sigma_decay, dtype)
    acc = jnp.promote_types(dtype, jnp.float32)
    limit = _norm_limit(dtype, acc)

    def body(carry, inputs):
        w, first_bad = carry
        t, eta, sig = inputs
        sq = D.squared_distances(x, w, precision)
        best = jnp.argmin(sq, axis=1).astype(jnp.int32)
        qe = jnp.mean(jnp.sqrt(jnp.min(sq, axis=1)))
        theta = fn(pos[None, :, :] - pos[best][:, None, :], sigma=sig).astype(dtype)  # (n, m)
        num = jnp.matmul(theta.T, x, precision=precision)
        den = jnp.sum(theta, axis=0)
        has = den > 0
        target = num / jnp.where(has, den, 1)[:, None]
        new = jnp.where(has[:, None], (1 - eta) * w + eta * target, w)
        new_sq = jnp.sum(jnp.square(new.astype(acc)), axis=-1)
        return _g.keep_if(jnp.all(new_sq <= limit), first_bad, t, new, w), (best, qe)

    steps = jnp.arange(max_steps, dtype=jnp.int32)
    start = (params.reshape(rows * cols, d), jnp.asarray(_g.NO_STEP, jnp.int32))
    (w, first_bad), (winners, qe) = lax.scan(body, start, (steps, etas, sigmas))
    converged = jnp.all(winners[-1] == winners[-2]) if max_steps > 1 else jnp.zeros((), bool)
    return _finish(w.reshape(rows, cols, d), winners, qe, first_bad, converged, max_steps)
