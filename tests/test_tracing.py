"""Jitted functions are traced once across repeated calls with same-shaped inputs.

Trace counting uses ``chex.assert_max_traces``: the wrapped Python body fails the call that would trace it
once too often. Values that change between calls (data and traced hyperparameters such as ``beta`` or
``learning_rate``) must not trigger a retrace; a new shape is a new trace. The training engine's own guards
(the train step and ``run_epoch`` across epochs) are in ``tests/test_training.py``.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import activations as A
from jaxmath import distances as D
from jaxmath import losses as L
from jaxmath import regularizers as R
from jaxmath import stats as S


def _rng(seed):
    return np.random.default_rng(seed)


def test_training_style_step_built_from_the_bare_math_is_traced_once_per_shape():
    def step(w, x, labels, beta, lam):
        def objective(w):
            h = A.sigmoid(x @ w, beta=beta)
            return L.softmax_cross_entropy(h, labels) + lam * R.squared_l2(w)

        value, grad = jax.value_and_grad(objective)(w)
        return w - 0.1 * grad, value

    # Two shapes below: at most two traces; a third would fail the call.
    step = jax.jit(chex.assert_max_traces(step, n=2))
    w = jnp.zeros((5, 3), jnp.float32)
    values = []
    for i in range(6):
        rng = _rng(i)
        x = jnp.asarray(rng.normal(size=(8, 5)), jnp.float32)
        labels = jnp.asarray(rng.integers(0, 3, 8), jnp.int32)
        # new data, new hyperparameter values: same shapes and dtypes, so no retrace
        w, value = step(w, x, labels, jnp.float32(1.0 + 0.1 * i), jnp.float32(1e-3 * i))
        values.append(float(value))
    assert np.all(np.isfinite(values))
    assert len(set(values)) == len(values)  # the data really changed each call
    # a new shape is a new trace, and only one
    for i in range(3):
        step(w, jnp.ones((4, 5), jnp.float32), jnp.zeros(4, jnp.int32), jnp.float32(1.0), jnp.float32(0.0))


@pytest.mark.parametrize(
    "name,fn",
    [
        ("sigmoid_derivative", lambda z, b: A.sigmoid_derivative(z, beta=b)),
        ("leaky_relu", lambda z, b: A.leaky_relu(z, negative_slope=b)),
        ("softmax_jacobian", lambda z, b: A.softmax_jacobian(b * z)),
        ("mse_gradient", lambda z, b: L.mse_gradient(z, b * z)),
        ("bce_with_logits", lambda z, b: L.binary_cross_entropy_with_logits(z, jax.nn.sigmoid(b * z))),
        ("p_norm", lambda z, b: R.p_norm(z, p=1.0 + b)),
        ("elastic_net", lambda z, b: R.elastic_net(z, l1_ratio=b / 2)),
        ("soft_threshold", lambda z, b: R.soft_threshold(z, threshold=b)),
        ("minkowski", lambda z, b: D.minkowski(z, z[::-1], p=1.0 + b)),
        ("pairwise_distances", lambda z, b: D.pairwise_distances(b * z)),
        ("great_circle", lambda z, b: D.great_circle(z[:, :2], b * z[:, :2], radius=b)),
        ("log_likelihood", lambda z, b: S.log_likelihood(z, mu=b, sigma=1.0 + b)),
    ],
)
def test_public_functions_under_jit_trace_once_with_traced_hyperparameters(name, fn):
    f = jax.jit(chex.assert_max_traces(fn, n=1))
    outs = []
    for i in range(4):
        z = jnp.asarray(_rng(i).uniform(0.1, 1.0, size=(4, 3)), jnp.float32)
        outs.append(f(z, jnp.float32(0.5 + 0.1 * i)))
    # and the values do change with the inputs (the function is not constant-folded)
    assert not np.allclose(np.asarray(outs[0]), np.asarray(outs[-1])), name


def test_eager_calls_reuse_the_compiled_public_function():
    # A public math function is itself jitted: repeated eager calls with the same shapes reuse one executable.
    for fn, make_args in (
        (L.mse, lambda p: (p, p + 1)),
        (A.sigmoid, lambda p: (p,)),
    ):
        start = fn._cache_size()
        for i in range(5):
            p = jnp.asarray(_rng(i).normal(size=(7, 2)), jnp.float32)
            fn(*make_args(p))
        assert fn._cache_size() - start <= 1, fn
