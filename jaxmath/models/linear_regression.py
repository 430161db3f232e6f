"""Linear regression: least squares in closed form, by full-batch gradient descent, and by mini-batch SGD.

The notes' model and objective (seed 000, the costume-price example):

    f(x, Θ) = Θ1 x + Θ0                       (here f(x, Θ) = x·w + b for x with d features)
    Q(Θ)    = 1/(2N) Σ_j (f(x_j, Θ) − y_j)²
    Θ0(t+1) = Θ0(t) − α 1/N Σ_j (f(x_j, Θ) − y_j)
    Θ1(t+1) = Θ1(t) − α 1/N Σ_j (f(x_j, Θ) − y_j) x_j

Symbols: x_j → row j of ``X`` (n, d), y_j → ``y[j]``, N → n, Θ1 → ``params["w"]`` (d,) (or (d, k) for a
(n, k) ``y``), Θ0 → ``params["b"]`` () (or (k,)), α → ``learning_rate``, t → the iteration.

* :func:`fit_closed_form` solves min_Θ Q(Θ) directly: with an intercept it centres X and y (the intercept is
  then b = ȳ − x̄·w), and solves the least-squares problem by SVD (``jnp.linalg.lstsq``), never forming an
  inverse (for n > d after a QR factorisation X = QR, on the small R); a rank-deficient X gives the
  minimum-norm w, like ``numpy.linalg.lstsq``. ``solver="normal"``
  instead eigen-decomposes the centred d×d Gram matrix, formed from the moments Xᵀ X, Xᵀ y and x̄ without
  copying X (much faster for n ≫ d, but it squares the condition number and loses precision when feature
  means are large against their spread; rank deficiency still gives the minimum-norm w).
* :func:`fit` runs the update rules above (full batch) in one ``lax.while_loop``.
* :func:`fit_sgd` runs mini-batches through any ``jaxmath.optim`` optimizer in one ``lax.while_loop``.

Every public ``fit*`` checks its input on the host, then calls a jitted core (``*_core``); value checks skip
tracers, so ``jax.vmap(fit_closed_form)(Xs, ys)`` fits a batch of independent regressions in one call.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath import _validation as v
from jaxmath.models import _fitting
from jaxmath.models._fitting import FitInfo

__all__ = [
    "FitInfo",
    "init",
    "predict",
    "loss",
    "fit_closed_form",
    "closed_form_core",
    "fit",
    "fit_core",
    "fit_sgd",
    "sgd_core",
]


def init(num_features: int, *, num_outputs: int | None = None, dtype=jnp.float32) -> dict:
    """Zero parameters: {"w": (d,) or (d, k), "b": () or (k,)} in ``dtype``."""
    v.check_integer(num_features, name="num_features", minimum=1)
    if num_outputs is None:
        return {"w": jnp.zeros((num_features,), dtype), "b": jnp.zeros((), dtype)}
    v.check_integer(num_outputs, name="num_outputs", minimum=1)
    return {"w": jnp.zeros((num_features, num_outputs), dtype), "b": jnp.zeros((num_outputs,), dtype)}


def predict(params: dict, X: jax.Array, *, precision=None) -> jax.Array:
    """f(x, Θ) = X w + b: X (n, d) -> (n,) (or (n, k) for a (d, k) w)."""
    return _fitting.linear(params, X, precision=precision)


def loss(params: dict, X: jax.Array, y: jax.Array, *, precision=None) -> jax.Array:
    """Q(Θ) = 1/(2N) Σ_j (f(x_j, Θ) − y_j)² (summed over outputs for a (n, k) y): a scalar."""
    r = predict(params, X, precision=precision) - y
    return 0.5 * jnp.sum(r * r) / X.shape[0]


def _center(X, y, fit_intercept: bool):
    if not fit_intercept:
        return X, y, jnp.zeros(X.shape[1:], X.dtype), jnp.zeros(y.shape[1:], y.dtype)
    x_mean = jnp.mean(X, axis=0)
    y_mean = jnp.mean(y, axis=0)
    return X - x_mean, y - y_mean, x_mean, y_mean


def _eigh_solve(G, rhs, rcond=None, precision=None):
    """Minimum-norm solution of G w = rhs for a symmetric PSD G, through its eigendecomposition (no inverse)."""
    evals, evecs = jnp.linalg.eigh(G)
    cutoff = (jnp.finfo(G.dtype).eps * G.shape[0] if rcond is None else rcond) * jnp.max(evals)
    inv = jnp.where(evals > cutoff, 1.0 / jnp.where(evals > cutoff, evals, 1.0), 0.0)
    proj = jnp.matmul(evecs.T, rhs, precision=precision)
    scaled = proj * (inv if proj.ndim == 1 else inv[:, None])
    return jnp.matmul(evecs, scaled, precision=precision)


def _cholesky_solve(G, rhs, rcond=None):
    """(w, certified): w = G⁻¹ rhs by Cholesky, and whether G is provably far from the eigh cutoff.

    λ_min(G) ≥ 1 / ‖G⁻¹‖_F and λ_max(G) ≤ tr G, so when 1 / ‖G⁻¹‖_F > 100 · rcond · tr G no eigenvalue is
    near the cutoff of :func:`_eigh_solve`, which would then return the same w up to round-off.
    """
    rc = jnp.finfo(G.dtype).eps * G.shape[0] if rcond is None else rcond
    L = jnp.linalg.cholesky(G)

    def solve(b):
        u = lax.linalg.triangular_solve(L, b, left_side=True, lower=True)
        return lax.linalg.triangular_solve(L, u, left_side=True, lower=True, transpose_a=True)

    w = solve(rhs[:, None] if rhs.ndim == 1 else rhs)
    w = w[:, 0] if rhs.ndim == 1 else w
    inv_norm = jnp.sqrt(jnp.sum(jnp.square(solve(jnp.eye(G.shape[0], dtype=G.dtype)))))
    certified = (inv_norm * (100 * rc * jnp.trace(G)) < 1) & jnp.all(jnp.isfinite(w))
    return w, certified


def _gram_solve(G, rhs, *, rcond=None, precision=None):
    """Minimum-norm solution of G w = rhs for a symmetric PSD G (the eigendecomposition's answer).

    Cholesky when G is certified well away from singular (about 10x cheaper than eigh for small d), the
    eigendecomposition otherwise. Under ``vmap`` the choice is made once for the whole batch: a select
    between the two would pay for eigh on every member; only a batch holding an uncertified member runs it.
    """

    @jax.custom_batching.custom_vmap
    def solve(G, rhs):
        w, ok = _cholesky_solve(G, rhs, rcond)
        return lax.cond(ok, lambda: w, lambda: _eigh_solve(G, rhs, rcond, precision))

    @solve.def_vmap
    def solve_batched(axis_size, in_batched, G, rhs):
        G, rhs = (a if batched else jnp.broadcast_to(a, (axis_size, *a.shape))
                  for a, batched in zip((G, rhs), in_batched))
        w, ok = jax.vmap(partial(_cholesky_solve, rcond=rcond))(G, rhs)

        def exact():
            exact_w = jax.vmap(partial(_eigh_solve, rcond=rcond, precision=precision))(G, rhs)
            return jnp.where(ok.reshape((-1,) + (1,) * (w.ndim - 1)), w, exact_w)

        return lax.cond(jnp.all(ok), lambda: w, exact), True

    # custom_vmap has no reverse-mode rule: differentiate the eigendecomposition form, which has the same value.
    @jax.custom_jvp
    def differentiable(G, rhs):
        return solve(G, rhs)

    @differentiable.defjvp
    def differentiable_jvp(primals, tangents):
        _, w_dot = jax.jvp(partial(_eigh_solve, rcond=rcond, precision=precision), primals, tangents)
        return differentiable(*primals), w_dot

    return differentiable(G, rhs)


def _normal_equations(X, y, fit_intercept: bool, *, rcond=None, precision=None):
    """w from the centred normal equations Xcᵀ Xc w = Xcᵀ yc, built from moments of X itself.

    Xcᵀ Xc = Xᵀ X − n x̄ x̄ᵀ and Xcᵀ yc = Xᵀ y − n x̄ ȳᵀ, so X is never copied: centring X (n·d writes, a fresh
    buffer as large as X) cost more than the Gram matmul itself. Two passes read X: the Gram, and one thin
    matmul [y, 1]ᵀ X that gives Xᵀ y and Xᵀ 1 = n x̄ together. The price: Xᵀ X is rounded before the mean is
    taken out, so features whose mean is large against their spread (|x̄| ≫ σ) lose about (x̄/σ)² of relative
    precision here; the "lstsq" solver centres explicitly.

    Returns (w, x_mean, y_mean).
    """
    n, d = X.shape
    Y = y[:, None] if y.ndim == 1 else y
    G = jnp.einsum("nd,ne->de", X, X, precision=precision)
    if fit_intercept:
        # (k + 1, n): y's columns as rows, then ones. Rows-first is the cheaper layout for this thin matmul on
        # CPU (~20% faster batched than an (n, k + 1) operand contracted over its leading axis).
        lhs = jnp.concatenate([Y.T, jnp.ones((1, n), X.dtype)], axis=0)
        S = jnp.einsum("kn,nd->kd", lhs, X, precision=precision)
        x_mean = S[-1] / n
        y_mean = jnp.mean(y, axis=0)
        G = G - n * jnp.outer(x_mean, x_mean)
        rhs = S[:-1].T - n * jnp.outer(x_mean, jnp.reshape(y_mean, (-1,)))
    else:
        x_mean = jnp.zeros((d,), X.dtype)
        y_mean = jnp.zeros(y.shape[1:], y.dtype)
        rhs = jnp.einsum("nk,nd->dk", Y, X, precision=precision)
    if y.ndim == 1:
        rhs = rhs[:, 0]
    return _gram_solve(G, rhs, rcond=rcond, precision=precision), x_mean, y_mean


@partial(jax.jit, static_argnames=("fit_intercept", "solver", "rcond", "precision"))
def closed_form_core(X, y, *, fit_intercept: bool = True, solver: str = "lstsq", rcond=None, precision=None):
    """The jitted closed-form solver, without input checks."""
    out_dtype = _fitting.float_dtype(X)
    dtype = _fitting.solve_dtype(out_dtype)
    X = X.astype(dtype)
    y = y.astype(dtype)
    if solver == "normal":
        w, x_mean, y_mean = _normal_equations(X, y, fit_intercept, rcond=rcond, precision=precision)
        b = y_mean - jnp.dot(x_mean, w, precision=precision)
        return {"w": w.astype(out_dtype), "b": b.astype(out_dtype)}
    Xc, yc, x_mean, y_mean = _center(X, y, fit_intercept)
    if solver == "lstsq":
        n, d = Xc.shape
        if rcond is None:
            rcond = jnp.finfo(dtype).eps * max(n, d)  # numpy's default, relative to the largest singular value
        if n > d:
            # X = QR with orthonormal Q: ‖Xw − y‖² = ‖Rw − Qᵀy‖² + const, so the minimum-norm solutions agree;
            # the SVD then runs on the small d×d R instead of the tall X (much faster, batched or not).
            Q, R = jnp.linalg.qr(Xc, mode="reduced")
            w = jnp.linalg.lstsq(R, jnp.matmul(Q.T, yc, precision=precision), rcond=rcond)[0]
        else:
            w = jnp.linalg.lstsq(Xc, yc, rcond=rcond)[0]
    b = y_mean - jnp.dot(x_mean, w, precision=precision)
    return {"w": w.astype(out_dtype), "b": b.astype(out_dtype)}


def fit_closed_form(X, y, *, fit_intercept: bool = True, solver: str = "lstsq", rcond=None, precision=None) -> dict:
    """Least squares in closed form: argmin_Θ Q(Θ), the minimum-norm w when X is rank deficient.

    Args:
      X: (n, d) float array.
      y: (n,) or (n, k) float array.
      fit_intercept: learn b (by centring X and y); False fixes b = 0.
      solver: "lstsq" (SVD of X, robust) or "normal" (eigendecomposition of Xᵀ X, fast for n ≫ d).
      rcond: relative cutoff below which singular values (eigenvalues for "normal") count as zero; None uses
        machine epsilon times the size (numpy's default).
      precision: passed to every matmul.

    Returns:
      params {"w": (d,) or (d, k), "b": () or (k,)} in X's float dtype (bfloat16 input is solved in float32).
    """
    _fitting.check_xy(X, y)
    v.check_choice(solver, ("lstsq", "normal"), name="solver")
    return closed_form_core(jnp.asarray(X), jnp.asarray(y), fit_intercept=bool(fit_intercept), solver=solver,
                            rcond=rcond, precision=precision)


@partial(jax.jit, static_argnames=("num_steps", "precision"))
def fit_core(params, X, y, learning_rate, tol, *, num_steps: int, precision=None):
    """The jitted full-batch gradient descent, without input checks; ``params`` without a "b" entry fit no
    intercept (b stays 0)."""
    dtype = params["w"].dtype
    X = X.astype(dtype)
    y = y.astype(dtype)
    return _fitting.gradient_descent(
        lambda p: loss(p, X, y, precision=precision), params, learning_rate, tol,
        num_steps=num_steps, intercept_shape=y.shape[1:],
    )


def fit(X, y, *, learning_rate=0.01, num_steps: int = 1000, tol=0.0, fit_intercept: bool = True, params=None,
        precision=None):
    """Full-batch gradient descent on Q(Θ) with the notes' update rules, in one compiled loop.

    Args:
      X: (n, d) float array; y: (n,) or (n, k).
      learning_rate: α > 0 (scalar; may be a traced value under vmap).
      num_steps: static int, the most updates.
      tol: stop when Q changes by less than ``tol`` between two iterations (0: run all steps).
      fit_intercept: learn Θ0 (b); False keeps b = 0.
      params: starting point; zeros in X's float dtype when None.
      precision: passed to every matmul.

    Returns:
      (params, info): params {"w", "b"}; ``info`` a :class:`FitInfo` whose ``loss_history`` (num_steps,) holds
      Q(Θ(t)) before each update. A non-finite Q (α too large) stops the loop and returns the last finite Θ.
    """
    _fitting.check_xy(X, y)
    v.check_positive(learning_rate, name="learning_rate")
    v.check_positive(tol, name="tol", allow_zero=True)
    _fitting.check_max_iterations(num_steps, name="num_steps")
    X = jnp.asarray(X)
    y = jnp.asarray(y)
    dtype = _fitting.float_dtype(X)
    if params is None:
        params = init(X.shape[1], num_outputs=None if y.ndim == 1 else y.shape[1], dtype=dtype)
    if not fit_intercept:
        params = {"w": params["w"]}
    params, info = fit_core(params, X, y, learning_rate, tol, num_steps=num_steps, precision=precision)
    _fitting.warn_if_stopped(info, where="linear_regression.fit")
    return params, info


@partial(jax.jit, static_argnames=("optimizer", "batch_size", "num_epochs", "fit_intercept", "precision"))
def sgd_core(params, X, y, key, *, optimizer, batch_size: int, num_epochs: int, fit_intercept: bool = True,
             precision=None):
    """The jitted mini-batch loop, without input checks."""
    dtype = params["w"].dtype
    X = X.astype(dtype)
    y = y.astype(dtype)
    n = X.shape[0]
    num_batches = n // batch_size

    def objective(p, xb, yb):
        if not fit_intercept:
            p = {**p, "b": jnp.zeros_like(p["b"])}
        return loss(p, xb, yb, precision=precision)

    grad_fn = jax.grad(objective)

    def batch_step(carry, idx):
        p, opt_state = carry
        g = grad_fn(p, X[idx], y[idx])
        updates, opt_state = optimizer.update(g, opt_state, p)
        p = jax.tree_util.tree_map(lambda a, u: a + u, p, updates)
        return (p, opt_state), None

    def cond(state):
        epoch, _, _, _, _, stop = state
        return (epoch < num_epochs) & ~stop

    def body(state):
        epoch, p, opt_state, key, hist, _ = state
        key, sub = jax.random.split(key)
        order = jax.random.permutation(sub, n)[: num_batches * batch_size].reshape(num_batches, batch_size)
        (new_p, new_opt), _ = lax.scan(batch_step, (p, opt_state), order)
        q = objective(new_p, X, y)
        finite = jnp.isfinite(q)
        hist = hist.at[epoch].set(q)
        keep = lambda a, b: jnp.where(finite, a, b)  # noqa: E731  (the last finite params survive)
        new_p = jax.tree_util.tree_map(keep, new_p, p)
        new_opt = jax.tree_util.tree_map(keep, new_opt, opt_state)
        return epoch + 1, new_p, new_opt, key, hist, ~finite

    hist = jnp.full((num_epochs,), jnp.nan, dtype)
    state = (jnp.int32(0), params, optimizer.init(params), key, hist, jnp.bool_(False))
    epoch, params, _, _, hist, stopped = lax.while_loop(cond, body, state)
    if not fit_intercept:
        params = {**params, "b": jnp.zeros_like(params["b"])}
    return params, FitInfo(hist, epoch, jnp.bool_(False), stopped)


def fit_sgd(X, y, optimizer, *, key, batch_size: int = 32, num_epochs: int = 10, fit_intercept: bool = True,
            params=None, precision=None):
    """Mini-batch SGD on Q(Θ) with any ``jaxmath.optim`` optimizer, in one compiled loop.

    Each epoch shuffles the rows with ``key`` and takes ⌊n / batch_size⌋ steps on batches of ``batch_size``
    rows (the remainder is left out that epoch), each step on the batch's Q.

    Args:
      X: (n, d) float array; y: (n,) or (n, k).
      optimizer: a ``jaxmath.optim.Optimizer`` (``init``, ``update``); it must be hashable (it is static).
      key: PRNG key for the shuffles.
      batch_size: static int in [1, n]; num_epochs: static int >= 1.
      fit_intercept, params, precision: as in :func:`fit`.

    Returns:
      (params, info): ``info.loss_history`` (num_epochs,) holds the full-data Q after each epoch. An epoch ending
      on a non-finite Q stops the loop and keeps the parameters from before it.
    """
    _fitting.check_xy(X, y)
    v.check_integer(batch_size, name="batch_size", minimum=1)
    if batch_size > np.shape(X)[0]:
        raise ValueError(f"batch_size must be <= the number of rows of X, got batch_size={batch_size} and "
                         f"X.shape={np.shape(X)}")
    _fitting.check_max_iterations(num_epochs, name="num_epochs")
    X = jnp.asarray(X)
    y = jnp.asarray(y)
    if params is None:
        params = init(X.shape[1], num_outputs=None if y.ndim == 1 else y.shape[1], dtype=_fitting.float_dtype(X))
    params, info = sgd_core(params, X, y, key, optimizer=optimizer, batch_size=batch_size, num_epochs=num_epochs,
                            fit_intercept=bool(fit_intercept), precision=precision)
    _fitting.warn_if_stopped(info, where="linear_regression.fit_sgd")
    return params, info
