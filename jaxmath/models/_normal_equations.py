"""The centred normal equations of least squares, solved through a certified Cholesky factorisation.

For n ≫ d, least squares is cheapest from the d×d Gram matrix G = Xcᵀ Xc and the right-hand side Xcᵀ yc. The
plain formula is the minimum-norm solution w = V Λ⁺ Vᵀ rhs from the eigendecomposition G = V Λ Vᵀ
(:func:`_gram_solve_reference`). The tuned :func:`_gram_solve` gives the same w: it uses a Cholesky
factorisation when G is certified far from singular, and falls back to the eigendecomposition otherwise;
under ``vmap`` it decides once for the whole batch (``jax.custom_batching.custom_vmap``).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax


def _eigh_solve(G, rhs, rcond=None, precision=None):
    """Minimum-norm solution of G w = rhs for a symmetric PSD G, through its eigendecomposition (no inverse)."""
    evals, evecs = jnp.linalg.eigh(G)
    cutoff = (jnp.finfo(G.dtype).eps * G.shape[0] if rcond is None else rcond) * jnp.max(evals)
    inv = jnp.where(evals > cutoff, 1.0 / jnp.where(evals > cutoff, evals, 1.0), 0.0)
    proj = jnp.matmul(evecs.T, rhs, precision=precision)
    scaled = proj * (inv if proj.ndim == 1 else inv[:, None])
    return jnp.matmul(evecs, scaled, precision=precision)


def _gram_solve_reference(G, rhs, *, rcond=None, precision=None):
    """The plain formula: w = V Λ⁺ Vᵀ rhs (eigenvalues below rcond · λ_max count as zero).

    Args:
      G: (d, d) symmetric positive semi-definite; rhs: (d,) or (d, k).
    Returns:
      w with rhs's shape.
    """
    return _eigh_solve(G, rhs, rcond, precision)


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
    """Minimum-norm solution of G w = rhs for a symmetric PSD G: :func:`_gram_solve_reference`'s answer.

    Cholesky when G is certified well away from singular (much cheaper than eigh for small d), the
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


def normal_equations(x, y, fit_intercept: bool, *, rcond=None, precision=None):
    """w from the centred normal equations Xcᵀ Xc w = Xcᵀ yc, built from moments of x itself.

    Xcᵀ Xc = Xᵀ X − n x̄ x̄ᵀ and Xcᵀ yc = Xᵀ y − n x̄ ȳᵀ, so x is never copied: centring x (n·d writes, a fresh
    buffer as large as x) costs more than the Gram matmul itself. Two passes read x: the Gram, and one thin
    matmul [y, 1]ᵀ x that gives Xᵀ y and Xᵀ 1 = n x̄ together. The price: Xᵀ X is rounded before the mean is
    taken out, so features whose mean is large against their spread (|x̄| ≫ σ) lose about (x̄/σ)² of relative
    precision here; the "lstsq" solver centres explicitly.

    Args:
      x: (n, d); y: (n,) or (n, k).
    Returns:
      (w (d,) or (d, k), x_mean (d,), y_mean () or (k,)).
    """
    n, d = x.shape
    Y = y[:, None] if y.ndim == 1 else y
    G = jnp.einsum("nd,ne->de", x, x, precision=precision)
    if fit_intercept:
        # (k + 1, n): y's columns as rows, then ones; rows-first is the cheaper layout for this thin matmul.
        lhs = jnp.concatenate([Y.T, jnp.ones((1, n), x.dtype)], axis=0)
        S = jnp.einsum("kn,nd->kd", lhs, x, precision=precision)
        x_mean = S[-1] / n
        y_mean = jnp.mean(y, axis=0)
        G = G - n * jnp.outer(x_mean, x_mean)
        rhs = S[:-1].T - n * jnp.outer(x_mean, jnp.reshape(y_mean, (-1,)))
    else:
        x_mean = jnp.zeros((d,), x.dtype)
        y_mean = jnp.zeros(y.shape[1:], y.dtype)
        rhs = jnp.einsum("nk,nd->dk", Y, x, precision=precision)
    if y.ndim == 1:
        rhs = rhs[:, 0]
    return _gram_solve(G, rhs, rcond=rcond, precision=precision), x_mean, y_mean
