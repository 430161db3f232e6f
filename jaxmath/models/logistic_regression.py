"""Logistic regression, binary (sigmoid + binary cross-entropy) and multinomial (softmax + cross-entropy).

Binary (seed 004, "Gradient with sigmoid activation function and binary cross-entropy"):

    z_i = x_i·w + b,   ŷ_i = 1 / (1 + e^(−z_i))
    E   = −1/N Σ_i [t_i log ŷ_i + (1 − t_i) log(1 − ŷ_i)] + α R(w)
    ∂E/∂w = 1/N Σ_i (ŷ_i − t_i) x_i + α ∂R/∂w

Multinomial: z_i = x_i W + b (k logits), ŷ_i = softmax(z_i), E = −1/N Σ_i log ŷ_{i, t_i} + α R(W), and
∂E/∂W = 1/N Σ_i x_iᵀ (ŷ_i − onehot(t_i)) + α ∂R/∂W.

Symbols: x_i → row i of ``x`` (n, d), t_i → ``labels[i]`` (0/1 for binary, 0..k−1 for multinomial),
w/W → ``params["w"]`` ((d,) binary, (d, k) multinomial), b → ``params["b"]`` (() or (k,), never penalised),
α → ``alpha``, R → ``penalty``: "l2" R = ½‖w‖₂², "l1" R = ‖w‖₁, None no penalty.

The model is binary for two classes and multinomial for more, decided in one place: ``init``'s
``num_classes`` builds the params, and ``fit`` reads the number of classes from the params it starts from,
from ``num_classes``, or from the labels, in that order (a contradiction between them is an error).

``apply`` is the model's output ŷ, the probabilities (as the notes write the model); ``logits`` gives z, which
the stable loss works from; ``predict`` is the class decision.

scikit-learn: ``LogisticRegression(C=C)`` minimises C Σ_i loss_i + R(w), so the same model is
``alpha = 1 / (C · N)`` here (N = number of training rows), with the same ``penalty``.

Solvers (``jaxmath.models.logistic_solvers``), each one compiled loop that works under ``jax.vmap``:
``"newton"`` (penalty None or "l2"; exact Hessian, ~10 steps), ``"lbfgs"`` (penalty None or "l2"; two passes
over x per step, the fast choice for large n·d) and ``"proximal_gradient"`` (FISTA; any penalty, the one for
"l1", exact zeros). By default ``fit`` picks Newton up to 50 parameters ((d + 1)·k), L-BFGS above, FISTA for
"l1". The softmax is unchanged when a constant is added to every class's logit; multinomial fits return the
representative whose intercepts (and, with no penalty, each feature's weights) sum to zero over the classes.
bfloat16/float16 input is fitted in float32 and the parameters are returned in the input's dtype.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as v
from jaxmath import activations, losses
from jaxmath.models import _fitting
from jaxmath.models import logistic_solvers as solvers
from jaxmath.models._fitting import FitInfo

__all__ = ["FitInfo", "init", "logits", "apply", "predict_proba", "predict", "loss", "fit"]

_PENALTIES = (None, "l2", "l1")
_SOLVERS = ("newton", "lbfgs", "proximal_gradient")
_NEWTON_MAX_PARAMS = 50


def init(key, num_features: int, *, num_classes: int = 2, dtype=jnp.float32) -> dict:
    """Zero parameters: binary (``num_classes=2``) {"w": (d,), "b": ()}, multinomial {"w": (d, k), "b": (k,)}.

    ``key`` is unused (the cross-entropy is convex: zeros are as good a start as any); it is taken so that
    every model is built as ``init(key, ...)``.
    """
    v.check_key(key)
    v.check_integer(num_features, name="num_features", minimum=1)
    v.check_integer(num_classes, name="num_classes", minimum=2)
    if num_classes == 2:
        return {"w": jnp.zeros((num_features,), dtype), "b": jnp.zeros((), dtype)}
    return {"w": jnp.zeros((num_features, num_classes), dtype), "b": jnp.zeros((num_classes,), dtype)}


@partial(jax.jit, static_argnames=("precision",))
def logits(params: dict, x: jax.Array, *, precision=None) -> jax.Array:
    """z = x w + b: (n, d) -> (n,) binary, (n, k) multinomial."""
    _fitting.check_features(params, x)
    return _fitting.linear(params, x, precision=precision)


@partial(jax.jit, static_argnames=("precision",))
def apply(params: dict, x: jax.Array, *, precision=None) -> jax.Array:
    """ŷ, the probabilities: sigmoid(z) (n,) = P(t = 1 | x) for binary; softmax(z) (n, k) for multinomial."""
    z = logits(params, x, precision=precision)
    return activations.sigmoid(z) if params["w"].ndim == 1 else activations.softmax(z, axis=-1)


@partial(jax.jit, static_argnames=("precision",))
def predict_proba(params: dict, x: jax.Array, *, precision=None) -> jax.Array:
    """Class probabilities (n, k), rows summing to 1 (k = 2 for binary: [1 − ŷ, ŷ], like scikit-learn)."""
    p = apply(params, x, precision=precision)
    if params["w"].ndim == 1:
        return jnp.stack([1 - p, p], axis=-1)
    return p


@partial(jax.jit, static_argnames=("precision",))
def predict(params: dict, x: jax.Array, *, precision=None) -> jax.Array:
    """The most probable class: (n,) int32 (threshold z ≥ 0 for binary, argmax for multinomial)."""
    z = logits(params, x, precision=precision)
    if params["w"].ndim == 1:
        return (z >= 0).astype(jnp.int32)
    return jnp.argmax(z, axis=-1).astype(jnp.int32)


@partial(jax.jit, static_argnames=("penalty", "precision"))
def loss(params: dict, x: jax.Array, labels: jax.Array, *, penalty="l2", alpha=0.0, precision=None) -> jax.Array:
    """E = mean cross-entropy (from the logits) + α R(w): a scalar.

    Args:
      params: binary or multinomial params; x: (n, d); labels: (n,) integer classes (0/1 for binary).
      penalty: None, "l2" (R = ½‖w‖²) or "l1" (R = ‖w‖₁); alpha: α >= 0.
    """
    v.check_choice(penalty, _PENALTIES, name="penalty")
    z = logits(params, x, precision=precision)
    if params["w"].ndim == 1:
        data = losses.binary_cross_entropy_with_logits(z, labels.astype(z.dtype))
    else:
        data = losses.softmax_cross_entropy(z, labels)
    return data + solvers.penalty_value(params["w"], penalty, alpha)


@partial(jax.jit, static_argnames=("num_classes", "penalty", "solver", "max_steps", "fit_intercept", "precision"))
def _fit_core(x, labels, theta, alpha, tol, learning_rate, *, num_classes, penalty, solver, max_steps,
              fit_intercept, precision):
    out_dtype = _fitting.float_dtype(x)
    dtype = _fitting.solve_dtype(out_dtype)  # bfloat16 input is fitted in float32 (eigh needs it)
    x = x.astype(dtype)
    theta = theta.astype(dtype)
    binary = num_classes == 2 and theta.shape[1] == 1
    d = x.shape[1]
    m = theta.shape[1]
    D = d + 1 if fit_intercept else d
    T = labels.astype(dtype)[:, None] if binary else jax.nn.one_hot(labels, m, dtype=dtype)
    mask = jnp.ones((D, m), dtype)
    if fit_intercept:
        mask = mask.at[-1].set(0)
    kw = dict(alpha=jnp.asarray(alpha, dtype), mask=mask, tol=jnp.asarray(tol, dtype), max_steps=max_steps,
              penalty=penalty, binary=binary, precision=precision)
    if solver == "newton":
        theta, info = solvers.newton(theta, solvers.design(x, fit_intercept), T, **kw)
    elif solver == "lbfgs":
        theta, info = solvers.lbfgs(theta, x, T, fit_intercept=fit_intercept, **kw)
    else:
        theta, info = solvers.fista(theta, solvers.design(x, fit_intercept), T, learning_rate=learning_rate, **kw)
    if not binary:
        # The softmax ignores a constant added to every class's logit: report the representative whose
        # intercepts (and, unpenalised, each feature's weights) sum to zero over the classes; round-off in the
        # near-null direction would otherwise drift it.
        centred = theta - jnp.mean(theta, axis=1, keepdims=True)
        theta = jnp.where((mask == 0) | (penalty is None), centred, theta)
    w = theta[:d].astype(out_dtype)
    b = (theta[d] if fit_intercept else jnp.zeros((m,), dtype)).astype(out_dtype)
    if binary:
        w, b = w[:, 0], b[0]
    return {"w": w, "b": b}, info._replace(loss_history=info.loss_history.astype(out_dtype))


def _num_classes(labels, num_classes, params):
    """The one place the model's kind is decided: params, then num_classes, then the labels."""
    if params is not None:
        w_shape = np.shape(params["w"])
        from_params = 2 if len(w_shape) == 1 else w_shape[1]
        if num_classes is not None and num_classes != from_params:
            raise ValueError(f"num_classes={num_classes} contradicts params['w'].shape={w_shape} "
                             f"({from_params} classes)")
        return from_params, len(w_shape) == 2
    if num_classes is None:
        if not v.is_concrete(labels):
            raise ValueError("num_classes (or params) must be given when labels are traced (under jit/vmap)")
        num_classes = max(int(jnp.max(labels)) + 1, 2) if np.size(labels) else 2
    v.check_integer(num_classes, name="num_classes", minimum=2)
    return num_classes, num_classes > 2


def fit(x, labels, *, num_classes: int | None = None, penalty="l2", alpha=0.0, solver: str | None = None,
        max_steps: int = 100, tol=None, learning_rate=None, fit_intercept: bool = True, params=None,
        precision=None):
    """Fit logistic regression in one compiled loop.

    Args:
      x: (n, d) float array.
      labels: (n,) integer classes in [0, num_classes).
      num_classes: k; 2 fits the binary (sigmoid) model, more the multinomial (softmax) one. None: taken
        from ``params`` if given, else max(labels) + 1 (at least 2). Static; required under jit/vmap unless
        ``params`` are given.
      penalty: None, "l2" or "l1"; alpha: α >= 0 (``alpha = 1 / (C · n)`` reproduces scikit-learn's ``C``).
      solver: "newton" or "lbfgs" (penalty None/"l2"), "proximal_gradient" (any penalty, the only one for "l1").
        None picks "proximal_gradient" for "l1", else "newton" up to 50 parameters ((d + 1)·k) and "lbfgs" above.
      max_steps: static int, the most Newton steps, L-BFGS steps or FISTA iterations (one step = one update).
      tol: Newton and L-BFGS stop when max |∂E/∂θ| <= tol (or no step decreases E any more); FISTA when
        max |Δθ| <= tol · max(|θ|, 1). None: 100 ε of the working dtype for Newton and L-BFGS (~1e-5 float32,
        ~2e-14 float64), 1e-7 for FISTA.
      learning_rate: FISTA step; None uses 1/L, the gradient's Lipschitz bound.
      fit_intercept: learn an unpenalised b.
      params: warm start (binary or multinomial params, as :func:`init` builds them); zeros when None.
      precision: passed to every matmul.

    Returns:
      (params, info): params {"w": (d,) or (d, k), "b": () or (k,)}; ``info`` a :class:`FitInfo`
      (``loss_history[i]`` = E after i updates, ``num_steps``, ``converged``: the tolerance was met).

    Raises:
      ValueError: bad shapes, NaN/Inf in x, labels out of range, an unknown penalty/solver, "newton" with "l1",
        num_classes contradicting params.
    """
    _fitting.check_xy(x, labels, y_ndim=1, y_name="labels", check_y_finite=False)
    v.check_choice(penalty, _PENALTIES, name="penalty")
    v.check_positive(alpha, name="alpha", allow_zero=True)
    _fitting.check_max_steps(max_steps)
    labels = jnp.asarray(labels)
    num_classes, multinomial = _num_classes(labels, num_classes, params)
    v.check_labels(labels, num_classes, name="labels")
    d = np.shape(x)[1]
    if solver is None:
        if penalty == "l1":
            solver = "proximal_gradient"
        else:
            # Newton's Hessian costs n·(dk)² per step: worth it only while the parameter count is small.
            num_params = (d + bool(fit_intercept)) * (num_classes if multinomial else 1)
            solver = "newton" if num_params <= _NEWTON_MAX_PARAMS else "lbfgs"
    v.check_choice(solver, _SOLVERS, name="solver")
    if solver in ("newton", "lbfgs") and penalty == "l1":
        raise ValueError(f"solver={solver!r} needs a smooth objective; use solver='proximal_gradient' with "
                         "penalty='l1'")
    if learning_rate is not None:
        v.check_positive(learning_rate, name="learning_rate")
    x = jnp.asarray(x)
    dtype = _fitting.solve_dtype(_fitting.float_dtype(x))
    if tol is None:
        tol = float(100 * jnp.finfo(dtype).eps) if solver != "proximal_gradient" else 1e-7
    v.check_positive(tol, name="tol", allow_zero=True)
    m = num_classes if multinomial else 1
    if params is None:
        theta = jnp.zeros((d + bool(fit_intercept), m), dtype)
    else:
        w = jnp.asarray(params["w"], dtype).reshape(d, m)
        b = jnp.asarray(params.get("b", 0), dtype).reshape(-1)
        theta = jnp.concatenate([w, jnp.broadcast_to(b, (m,))[None]], axis=0) if fit_intercept else w
    params, info = _fit_core(x, labels.astype(jnp.int32), theta, alpha, tol, learning_rate, num_classes=num_classes,
                             penalty=penalty, solver=solver, max_steps=max_steps, fit_intercept=bool(fit_intercept),
                             precision=precision)
    _fitting.warn_if_stopped(info, where="logistic_regression.fit")
    return params, info
