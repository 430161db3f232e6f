"""The three compiled solvers of ``logistic_regression.fit``: Newton / IRLS, L-BFGS and FISTA.

Each works on the parameters as one matrix θ (D, m): D = d (+1 for the intercept row), m = 1 (binary) or k
(multinomial), with targets T (n, m) (a 0/1 column, or one-hot rows), a penalty mask (0 on the intercept
row) and E(θ) = mean cross-entropy + α R(θ · mask). Each is one ``lax.while_loop`` that works under
``jax.vmap`` and returns ``(theta, FitInfo)`` with ``loss_history[i]`` = E after i updates.

* :func:`newton`: each step solves H Δ = g with the exact Hessian H = 1/N Xᵀ diag(ŷ(1 − ŷ)) X + α I (its
  multinomial block form likewise) through an eigendecomposition (no inverse; singular directions, such as
  the softmax's shift of all intercepts, are left alone), then backtracks (Armijo).
* :func:`lbfgs`: limited-memory BFGS with a backtracking line search; two passes over X per evaluation.
  Its value and gradient come from :func:`_value_and_gradient`, which streams X in cache-sized blocks of rows
  for binary fits with n ≥ 2 blocks; :func:`_value_and_grad_reference` is the plain formula beside it.
* :func:`fista`: accelerated proximal gradient, the soft threshold for the L1 term
  (``jaxmath.regularizers.soft_threshold``), which yields exact zeros.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import activations
from jaxmath.models._fitting import FitInfo
from jaxmath.regularizers import soft_threshold

__all__ = ["newton", "lbfgs", "fista"]

# Rows per block of the streamed value-and-gradient: blocks of about 256 KB stay in a CPU core's cache.
_BLOCK_BYTES = 1 << 18


def penalty_value(w, penalty, alpha):
    """α R(w): "l2" ½α‖w‖², "l1" α‖w‖₁, None 0."""
    if penalty == "l2":
        return 0.5 * alpha * jnp.sum(w * w)
    if penalty == "l1":
        return alpha * jnp.sum(jnp.abs(w))
    return jnp.zeros((), w.dtype)


def design(x, fit_intercept):
    """[x, 1] (n, d + 1) with an intercept, x itself without."""
    if fit_intercept:
        return jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
    return x


def _probabilities(Z, binary):
    return activations.sigmoid(Z) if binary else activations.softmax(Z, axis=-1)


def _data_loss(Z, T, binary):
    """Mean cross-entropy from the logits Z (n, m) and targets T (n, m) (0/1 column or one-hot)."""
    if binary:
        return jnp.mean(jnp.maximum(Z, 0) - T * Z + jnp.log1p(jnp.exp(-jnp.abs(Z))))
    return -jnp.mean(jnp.sum(T * activations.log_softmax(Z, axis=-1), axis=-1))


def _objective(theta, xa, T, alpha, mask, penalty, binary, precision):
    Z = jnp.matmul(xa, theta, precision=precision)
    return _data_loss(Z, T, binary) + penalty_value(theta * mask, penalty, alpha)


def _gradient(theta, xa, T, alpha, mask, penalty, binary, precision):
    """The notes' gradient 1/N Xᵀ(ŷ − t), plus α w for L2 (L1 is handled by the proximal step)."""
    Z = jnp.matmul(xa, theta, precision=precision)
    P = _probabilities(Z, binary)
    g = jnp.matmul(xa.T, P - T, precision=precision) / xa.shape[0]
    if penalty == "l2":
        g = g + alpha * theta * mask
    return g, P


def _hessian(xa, P, alpha, mask, penalty, binary, precision):
    n, D = xa.shape
    if binary:
        s = (P * (1 - P))[:, 0]
        H = jnp.matmul(xa.T * s, xa, precision=precision) / n
    else:
        k = P.shape[1]
        # H[(a,i),(b,j)] = 1/N Σ_n x_na x_nb (p_ni δ_ij − p_ni p_nj)
        diag = jnp.einsum("na,ni,nb->aib", xa, P, xa, precision=precision) / n
        XP = (xa[:, :, None] * P[:, None, :]).reshape(n, D * k)
        H = -jnp.matmul(XP.T, XP, precision=precision) / n
        H = H.reshape(D, k, D, k) + diag[:, :, :, None] * jnp.eye(k, dtype=xa.dtype)[None, :, None, :]
        H = H.reshape(D * k, D * k)
    if penalty == "l2":
        H = H + alpha * jnp.diag(mask.reshape(-1))
    return H


def _psd_solve(H, g, precision=None):
    """Solve H Δ = g for a symmetric PSD H by eigendecomposition, ignoring (near-)null directions."""
    evals, evecs = jnp.linalg.eigh(H)
    cutoff = jnp.finfo(H.dtype).eps * H.shape[0] * jnp.max(jnp.abs(evals))
    keep = evals > cutoff
    inv = jnp.where(keep, 1.0 / jnp.where(keep, evals, 1.0), 0.0)
    return jnp.matmul(evecs, inv * jnp.matmul(evecs.T, g, precision=precision), precision=precision)


def newton(theta, xa, T, *, alpha, mask, tol, max_steps, penalty, binary, precision):
    """Newton's method from ``theta`` on the design matrix ``xa``; stops when max |∂E/∂θ| <= tol."""
    dtype = xa.dtype
    obj = partial(_objective, xa=xa, T=T, alpha=alpha, mask=mask, penalty=penalty, binary=binary,
                  precision=precision)
    hist = jnp.full((max_steps,), jnp.nan, dtype)

    def cond(state):
        i, _, _, _, done, _, _ = state
        return (i < max_steps) & ~done

    def body(state):
        i, theta, f, hist, _, _, moves = state
        hist = hist.at[i].set(f)
        g, P = _gradient(theta, xa, T, alpha, mask, penalty, binary, precision)
        gnorm = jnp.max(jnp.abs(g))
        H = _hessian(xa, P, alpha, mask, penalty, binary, precision)
        delta = _psd_solve(H, g.reshape(-1), precision).reshape(theta.shape)
        slope = jnp.sum(g * delta)

        # Backtracking (Armijo): halve the step until the objective decreases enough.
        def ls_cond(s):
            t, f_new, tries = s
            return (~(f_new <= f - 1e-4 * t * slope)) & (tries < 30)

        def ls_body(s):
            t, _, tries = s
            t = t * 0.5
            return t, obj(theta - t * delta), tries + 1

        t, f_new, _ = lax.while_loop(ls_cond, ls_body, (jnp.ones((), dtype), obj(theta - delta), 0))
        improved = jnp.isfinite(f_new) & (f_new <= f - 1e-4 * t * slope) & (f_new < f)
        converged = gnorm <= tol
        move = improved & ~converged
        theta = jnp.where(move, theta - t * delta, theta)
        f = jnp.where(move, f_new, f)
        # No further decrease possible in this precision: stop (converged says whether the gradient is small).
        return i + 1, theta, f, hist, ~move, converged, moves + move.astype(jnp.int32)

    f0 = obj(theta)
    init = (jnp.int32(0), theta, f0, hist, jnp.bool_(False), jnp.bool_(False), jnp.int32(0))
    _, theta, f, hist, _, converged, moves = lax.while_loop(cond, body, init)
    g, _ = _gradient(theta, xa, T, alpha, mask, penalty, binary, precision)
    converged = converged | (jnp.max(jnp.abs(g)) <= tol)
    return theta, FitInfo(converged, moves, hist, ~jnp.isfinite(f))


def _block_rows(d: int, dtype) -> int:
    """Rows per block of :func:`_value_and_gradient`'s binary stream (it streams when n >= 2 blocks)."""
    return max(1, _BLOCK_BYTES // (d * jnp.dtype(dtype).itemsize))


def _value_and_grad_reference(theta, x, T, *, alpha, mask, penalty, binary, precision, fit_intercept):
    """The plain formula: z = x w + b, E = mean cross-entropy + α R, ∂E/∂θ = 1/N [x, 1]ᵀ(ŷ − t) (+ α w for L2).

    Args:
      theta: (D, m); x: (n, d); T: (n, m). Returns (E scalar, ∂E/∂θ (D, m)).
    """
    xa = design(x, fit_intercept)
    g, _ = _gradient(theta, xa, T, alpha, mask, penalty, binary, precision)
    return _objective(theta, xa, T, alpha, mask, penalty, binary, precision), g


def _value_and_gradient(theta, x, T, *, alpha, mask, penalty, binary, precision, fit_intercept):
    """:func:`_value_and_grad_reference`'s value and gradient, from one pass of logits, tuned for memory.

    Works on x itself (no design matrix with a ones column, no transposed copy): r @ x gives xᵀ r. Binary fits
    with at least two blocks of :func:`_block_rows` rows stream x in cache-sized blocks: xᵀr then re-reads the
    block that x w just brought in, one trip through memory per evaluation instead of two.
    """
    n, d = x.shape
    if binary:
        # Binary θ is one column: 1-D vectors make both passes matrix-vector products (the (n, 1) column form
        # lowers to a (1, n) × (n, d) matmul for xᵀr, slower on CPU).
        w = theta[:d, 0]
        b = theta[d, 0] if fit_intercept else jnp.zeros((), x.dtype)
        t = T[:, 0]

        def block(xb, tb):
            # Sums over a block of rows: Σ cross-entropy, Σ r x, Σ r with r = ŷ − t.
            z = jnp.matmul(xb, w, precision=precision) + b
            ce = jnp.sum(jnp.maximum(z, 0) - tb * z + jnp.log1p(jnp.exp(-jnp.abs(z))))
            r = _probabilities(z, binary) - tb
            return ce, jnp.matmul(r, xb, precision=precision), jnp.sum(r)

        rows = _block_rows(d, x.dtype)
        num_blocks = n // rows
        if num_blocks >= 2:
            def body(acc, k):
                xb = lax.dynamic_slice_in_dim(x, k * rows, rows)
                tb = lax.dynamic_slice_in_dim(t, k * rows, rows)
                return jax.tree_util.tree_map(jnp.add, acc, block(xb, tb)), None

            zero = jnp.zeros((), x.dtype)
            acc = (zero, jnp.zeros((d,), x.dtype), zero)
            acc, _ = lax.scan(body, acc, jnp.arange(num_blocks))
            if n % rows:
                acc = jax.tree_util.tree_map(jnp.add, acc, block(x[num_blocks * rows:], t[num_blocks * rows:]))
        else:
            acc = block(x, t)
        ce, g, sr = (a / n for a in acc)
        f = ce + penalty_value(theta * mask, penalty, alpha)
        if fit_intercept:
            g = jnp.concatenate([g, sr[None]])
        g = g[:, None]
        if penalty == "l2":
            g = g + alpha * theta * mask
        return f, g
    Z = jnp.matmul(x, theta[:d], precision=precision)
    if fit_intercept:
        Z = Z + theta[d]
    f = _data_loss(Z, T, binary) + penalty_value(theta * mask, penalty, alpha)
    R = (_probabilities(Z, binary) - T) / x.shape[0]
    g = jnp.matmul(R.T, x, precision=precision).T
    if fit_intercept:
        g = jnp.concatenate([g, jnp.sum(R, axis=0, keepdims=True)], axis=0)
    if penalty == "l2":
        g = g + alpha * theta * mask
    return f, g


def lbfgs(theta, x, T, *, alpha, mask, tol, max_steps, penalty, binary, precision, fit_intercept, memory=10):
    """Limited-memory BFGS (two-loop recursion, ``memory`` pairs) with a backtracking Armijo line search.

    Each step costs about two passes over x (xθ and xᵀr), against Newton's d² per row, so it wins for large
    n·d; it stops when max |∂E/∂θ| <= tol or no step decreases E any more.
    """
    dtype = x.dtype
    shape = theta.shape
    P = theta.size
    kw = dict(alpha=alpha, mask=mask, penalty=penalty, binary=binary, precision=precision,
              fit_intercept=fit_intercept)

    def flat_vg(flat):
        f, g = _value_and_gradient(flat.reshape(shape), x, T, **kw)
        return f, g.reshape(-1)

    def direction(g, S, Y, rho, k):
        count = jnp.minimum(k, memory)

        def first(j, carry):
            q, a = carry
            idx = (k - 1 - j) % memory
            use = j < count
            aj = jnp.where(use, rho[idx] * jnp.dot(S[idx], q), 0)
            return q - aj * Y[idx], a.at[idx].set(aj)

        q, a = lax.fori_loop(0, memory, first, (g, jnp.zeros((memory,), dtype)))
        last = (k - 1) % memory
        yy = jnp.dot(Y[last], Y[last])
        gamma = jnp.where(k > 0, jnp.dot(S[last], Y[last]) / jnp.where(yy > 0, yy, 1),
                          1.0 / jnp.maximum(jnp.linalg.norm(g), 1))
        r = gamma * q

        def second(j, r):
            idx = (k - count + j) % memory
            use = j < count
            b = rho[idx] * jnp.dot(Y[idx], r)
            return r + jnp.where(use, a[idx] - b, 0) * S[idx]

        r = lax.fori_loop(0, memory, second, r)
        return -r

    def cond(state):
        i, *_, done, _, _ = state
        return (i < max_steps) & ~done

    def body(state):
        i, xk, f, g, S, Y, rho, k, hist, _, _, moves = state
        hist = hist.at[i].set(f)
        d = direction(g, S, Y, rho, k)
        slope = jnp.dot(g, d)
        # Not a descent direction (round-off): forget the memory and take a steepest-descent step.
        bad = ~(slope < 0)
        d = jnp.where(bad, -g / jnp.maximum(jnp.linalg.norm(g), 1), d)
        k = jnp.where(bad, 0, k)
        slope = jnp.dot(g, d)

        def ls_cond(s):
            t, f_new, _, tries = s
            return (~(f_new <= f + 1e-4 * t * slope)) & (tries < 40)

        def ls_body(s):
            t, _, _, tries = s
            t = t * 0.5
            f_new, g_new = flat_vg(xk + t * d)
            return t, f_new, g_new, tries + 1

        f1, g1 = flat_vg(xk + d)
        t, f_new, g_new, _ = lax.while_loop(ls_cond, ls_body, (jnp.ones((), dtype), f1, g1, 0))
        improved = jnp.isfinite(f_new) & (f_new <= f + 1e-4 * t * slope) & (f_new < f)
        s_vec = t * d
        y_vec = g_new - g
        sy = jnp.dot(s_vec, y_vec)
        store = improved & (sy > jnp.finfo(dtype).eps * jnp.dot(y_vec, y_vec))
        idx = k % memory
        S = jnp.where(store, S.at[idx].set(s_vec), S)
        Y = jnp.where(store, Y.at[idx].set(y_vec), Y)
        rho = jnp.where(store, rho.at[idx].set(1 / jnp.where(sy != 0, sy, 1)), rho)
        k = jnp.where(store, k + 1, k)
        xk = jnp.where(improved, xk + s_vec, xk)
        f = jnp.where(improved, f_new, f)
        g = jnp.where(improved, g_new, g)
        converged = jnp.max(jnp.abs(g)) <= tol
        return (i + 1, xk, f, g, S, Y, rho, k, hist, converged | ~improved, converged,
                moves + improved.astype(jnp.int32))

    x0 = theta.reshape(-1)
    f0, g0 = flat_vg(x0)
    hist = jnp.full((max_steps,), jnp.nan, dtype)
    zeros = jnp.zeros((memory, P), dtype)
    small = jnp.max(jnp.abs(g0)) <= tol
    init = (jnp.int32(0), x0, f0, g0, zeros, zeros, jnp.zeros((memory,), dtype), jnp.int32(0), hist, small, small,
            jnp.int32(0))
    i, xk, f, g, *_, hist, _, converged, moves = lax.while_loop(cond, body, init)
    # A fit that starts converged records its objective once.
    hist = jnp.where((i == 0) & (jnp.arange(max_steps) == 0), f, hist)
    return xk.reshape(shape), FitInfo(converged, moves, hist, ~jnp.isfinite(f))


def fista(theta, xa, T, *, alpha, mask, tol, learning_rate, max_steps, penalty, binary, precision):
    """FISTA from ``theta``: gradient steps of size ``learning_rate`` (None: 1/L) and the L1 soft threshold.

    Stops when max |Δθ| <= tol · max(max |θ|, 1).
    """
    dtype = xa.dtype
    n = xa.shape[0]
    if learning_rate is None:
        # 1/L with L the gradient's Lipschitz constant: σ_max(X)² / (4N) binary, σ_max(X)² / (2N) softmax.
        G = jnp.matmul(xa.T, xa, precision=precision)
        L = jnp.linalg.eigvalsh(G)[-1] / n * (0.25 if binary else 0.5)
        L = L + (alpha if penalty == "l2" else 0)
        lr = 1.0 / L
    else:
        lr = jnp.asarray(learning_rate, dtype)
    obj = partial(_objective, xa=xa, T=T, alpha=alpha, mask=mask, penalty=penalty, binary=binary,
                  precision=precision)

    def prox(u):
        if penalty != "l1":
            return u
        return jnp.where(mask > 0, soft_threshold(u, threshold=lr * alpha), u)

    def cond(state):
        i, *_, done = state
        return (i < max_steps) & ~done

    def body(state):
        i, theta, y, tk, f, hist, _ = state
        hist = hist.at[i].set(f)
        g, _ = _gradient(y, xa, T, alpha, mask, penalty, binary, precision)
        new = prox(y - lr * g)
        tk1 = (1 + jnp.sqrt(1 + 4 * tk * tk)) / 2
        y = new + ((tk - 1) / tk1) * (new - theta)
        change = jnp.max(jnp.abs(new - theta))
        done = change <= tol * jnp.maximum(jnp.max(jnp.abs(new)), 1.0)
        return i + 1, new, y, tk1, obj(new), hist, done

    hist = jnp.full((max_steps,), jnp.nan, dtype)
    i, theta, _, _, f, hist, done = lax.while_loop(
        cond, body, (jnp.int32(0), theta, theta, jnp.ones((), dtype), obj(theta), hist, jnp.bool_(False)))
    return theta, FitInfo(done, i, hist, ~jnp.isfinite(f))
