"""Jitted functions are traced once across repeated calls with same-shaped inputs.

Trace counting follows docs/conventions.md: a counter incremented in the Python body of the
jitted function counts how often JAX traces it; values that change between calls (data and
traced hyperparameters such as ``beta`` or ``learning_rate``) must not trigger a retrace.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import activations as A
from jaxmath import distances as D
from jaxmath import losses as L
from jaxmath import regularizers as R
from jaxmath import stats as S


class Counter:
    def __init__(self):
        self.traces = 0


def _rng(seed):
    return np.random.default_rng(seed)


def test_training_style_step_built_from_the_bare_math_is_traced_once():
    counter = Counter()

    @jax.jit
    def step(w, x, labels, beta, lam):
        counter.traces += 1  # runs only while tracing

        def objective(w):
            h = A.sigmoid(x @ w, beta=beta)
            return L.softmax_cross_entropy(h, labels) + lam * R.squared_l2(w)

        value, grad = jax.value_and_grad(objective)(w)
        return w - 0.1 * grad, value

    w = jnp.zeros((5, 3), jnp.float32)
    values = []
    for i in range(6):
        rng = _rng(i)
        x = jnp.asarray(rng.normal(size=(8, 5)), jnp.float32)
        labels = jnp.asarray(rng.integers(0, 3, 8), jnp.int32)
        # new data, new hyperparameter values: same shapes and dtypes, so no retrace
        w, value = step(w, x, labels, jnp.float32(1.0 + 0.1 * i), jnp.float32(1e-3 * i))
        values.append(float(value))
    assert counter.traces == 1
    assert np.all(np.isfinite(values))
    # a new shape is a new trace, and only one
    for i in range(3):
        step(w, jnp.ones((4, 5), jnp.float32), jnp.zeros(4, jnp.int32), jnp.float32(1.0), jnp.float32(0.0))
    assert counter.traces == 2


@pytest.mark.parametrize(
    "name,fn",
    [
        ("sigmoid_derivative", lambda z, b: A.sigmoid_derivative(z, beta=b)),
        ("leaky_relu", lambda z, b: A.leaky_relu(z, negative_slope=b)),
        ("softmax_jacobian", lambda z, b: A.softmax_jacobian(b * z)),
        ("mse_gradient", lambda z, b: L.mse_gradient(z, b * z)),
        ("bce_with_logits", lambda z, b: L.binary_cross_entropy_with_logits(z, jax.nn.sigmoid(b * z))),
        ("p_norm", lambda z, b: R.p_norm(z, 1.0 + b)),
        ("elastic_net", lambda z, b: R.elastic_net(z, l1_ratio=b / 2)),
        ("soft_threshold", lambda z, b: R.soft_threshold(z, b)),
        ("minkowski", lambda z, b: D.minkowski(z, z[::-1], 1.0 + b)),
        ("pairwise_distances", lambda z, b: D.pairwise_distances(b * z)),
        ("great_circle", lambda z, b: D.great_circle(z[:, :2], b * z[:, :2], radius=b)),
        ("log_likelihood", lambda z, b: S.log_likelihood(z, b, 1.0 + b)),
    ],
)
def test_public_functions_under_jit_trace_once_with_traced_hyperparameters(name, fn):
    counter = Counter()

    @jax.jit
    def f(z, b):
        counter.traces += 1
        return fn(z, b)

    outs = []
    for i in range(4):
        z = jnp.asarray(_rng(i).uniform(0.1, 1.0, size=(4, 3)), jnp.float32)
        outs.append(f(z, jnp.float32(0.5 + 0.1 * i)))
    assert counter.traces == 1, name
    # and the values do change with the inputs (the function is not constant-folded)
    assert not np.allclose(np.asarray(outs[0]), np.asarray(outs[-1])), name


def test_eager_calls_reuse_the_compiled_core():
    # The public wrappers validate on the host and call a jitted core; repeated eager calls with
    # the same shapes reuse its compiled executable instead of tracing again.
    if not hasattr(L._mse, "_cache_size"):
        pytest.skip("jit cache introspection not available in this JAX version")
    start = L._mse._cache_size()
    for i in range(5):
        p = jnp.asarray(_rng(i).normal(size=(7, 2)), jnp.float32)
        L.mse(p, p + 1)
    assert L._mse._cache_size() - start == 1
    start = S._fit._cache_size()
    x = jnp.asarray(_rng(9).normal(size=20), jnp.float32)
    for lr in (0.1, 0.2, 0.3):
        S.fit_normal_gradient_ascent(x, learning_rate=lr, num_steps=5)
    assert S._fit._cache_size() - start == 1
