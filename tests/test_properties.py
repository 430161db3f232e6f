"""Hypothesis property tests: softmax is a distribution, losses are non-negative, distances are symmetric with zero diagonal.

Shapes are fixed per test (varying shapes would recompile every example); values vary.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from jaxmath import activations as A
from jaxmath import distances as D
from jaxmath import losses as L

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)  # reproducible in CI


def _floats(low, high):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=32)


def _array(shape, low=-1e4, high=1e4):
    return arrays(np.float32, shape, elements=_floats(low, high))


@SETTINGS
@given(z=_array((4, 6)))
def test_softmax_rows_sum_to_one_and_stay_finite_for_logits_up_to_1e4(z):
    for dtype in (jnp.float32, jnp.bfloat16):
        p = np.asarray(A.softmax(jnp.asarray(z, dtype)), np.float64)
        assert np.all(np.isfinite(p))
        assert np.all((p >= 0) & (p <= 1))
        np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-5 if dtype == jnp.float32 else 2e-2)
        lp = np.asarray(A.log_softmax(jnp.asarray(z, dtype)), np.float64)
        assert np.all(np.isfinite(lp)) and np.all(lp <= 0)
    # the largest logit gets the largest probability
    p = np.asarray(A.softmax(jnp.asarray(z, jnp.float32)))
    np.testing.assert_array_equal(p[np.arange(4), z.argmax(-1)], p.max(-1))


@SETTINGS
@given(z=_array((8,)))
def test_sigmoid_in_unit_interval_and_finite(z):
    for dtype in (jnp.float32, jnp.bfloat16):
        y = np.asarray(A.sigmoid(jnp.asarray(z, dtype)), np.float64)
        d = np.asarray(A.sigmoid_derivative(jnp.asarray(z, dtype)), np.float64)
        assert np.all(np.isfinite(y)) and np.all((y >= 0) & (y <= 1))
        assert np.all(np.isfinite(d)) and np.all((d >= 0) & (d <= 0.25))


@SETTINGS
@given(p=_array((5, 3), -1e3, 1e3), t=_array((5, 3), -1e3, 1e3))
def test_regression_losses_are_non_negative(p, t):
    p, t = jnp.asarray(p, jnp.float32), jnp.asarray(t, jnp.float32)
    for loss in (L.mse, L.sum_of_squares, L.rmse, L.mae):
        values = np.asarray(loss(p, t, reduction="none"))
        assert np.all(values >= 0) and np.all(np.isfinite(values)), loss.__name__
    assert float(L.mse(p, p)) == 0.0 and float(L.mae(p, p)) == 0.0


@SETTINGS
@given(
    probs=_array((6,), 0.0, 1.0),
    targets=_array((6,), 0.0, 1.0),
    logits=_array((6, 4)),
    labels=arrays(np.int32, (6,), elements=st.integers(0, 3)),
)
def test_cross_entropies_are_non_negative_and_finite(probs, targets, logits, labels):
    for dtype in (jnp.float32, jnp.bfloat16):
        hard = jnp.asarray(np.round(targets), dtype)
        soft = jnp.asarray(targets, dtype)
        checks = {
            "binary_cross_entropy": L.binary_cross_entropy(jnp.asarray(probs, dtype), hard, reduction="none"),
            "binary_cross_entropy_with_logits": L.binary_cross_entropy_with_logits(
                jnp.asarray(logits[:, 0], dtype), soft, reduction="none"
            ),
            "softmax_cross_entropy": L.softmax_cross_entropy(jnp.asarray(logits, dtype), jnp.asarray(labels), reduction="none"),
            "categorical_cross_entropy": L.categorical_cross_entropy(
                A.softmax(jnp.asarray(logits, dtype)), jnp.eye(4, dtype=dtype)[labels], reduction="none"
            ),
        }
        for name, values in checks.items():
            values = np.asarray(values, np.float64)
            assert np.all(np.isfinite(values)), name
            assert np.all(values >= 0), name
    # Gibbs' inequality: with soft targets t the loss is at least the entropy of t, reached at σ(z) = t.
    t = np.clip(np.asarray(targets, np.float64), 1e-3, 1 - 1e-3)
    entropy = -(t * np.log(t) + (1 - t) * np.log(1 - t))
    values = np.asarray(L.binary_cross_entropy_with_logits(jnp.asarray(logits[:, 0], jnp.float64), jnp.asarray(t), reduction="none"))
    assert np.all(values >= entropy - 1e-12)


METRICS = [
    ("euclidean", {}),
    ("squared_euclidean", {}),
    ("manhattan", {}),
    ("chebyshev", {}),
    ("minkowski", {"p": 3.0}),
    ("cosine", {}),
]


@pytest.mark.parametrize("metric,kw", METRICS, ids=[m for m, _ in METRICS])
@SETTINGS
@given(X=_array((5, 3), -1e3, 1e3))
def test_pairwise_distances_symmetric_non_negative_zero_diagonal(metric, kw, X):
    Dm = np.asarray(D.pairwise_distances(jnp.asarray(X, jnp.float32), metric=metric, **kw), np.float64)
    assert Dm.shape == (5, 5)
    assert np.all(np.isfinite(Dm)) and np.all(Dm >= 0)
    np.testing.assert_array_equal(np.diag(Dm), 0.0)
    scale = max(1.0, float(np.abs(Dm).max()))
    np.testing.assert_allclose(Dm, Dm.T, atol=1e-5 * scale)


@SETTINGS
@given(x=_array((4, 3), -1e3, 1e3), y=_array((4, 3), -1e3, 1e3))
def test_elementwise_distances_symmetric_and_zero_on_identical_points(x, y):
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    for f in (D.euclidean, D.squared_euclidean, D.manhattan, D.chebyshev, D.cosine):
        np.testing.assert_allclose(np.asarray(f(x, y)), np.asarray(f(y, x)), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(f(x, x)), 0.0)
    np.testing.assert_allclose(D.minkowski(x, y, p=3.0), D.minkowski(y, x, p=3.0), rtol=1e-6)


@SETTINGS
@given(x=_array((4, 3), -1e3, 1e3), y=_array((4, 3), -1e3, 1e3), p=st.floats(1.0, 64.0))
def test_minkowski_lies_between_chebyshev_and_manhattan_for_any_traced_order(x, y, p):
    # p is traced: every example reuses one compiled function; ‖d‖_∞ ≤ ‖d‖_p ≤ ‖d‖_1.
    x, y = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)
    d = np.asarray(D.minkowski(x, y, p=p))
    assert np.all(d >= np.asarray(D.chebyshev(x, y)) * (1 - 1e-12))
    assert np.all(d <= np.asarray(D.manhattan(x, y)) * (1 + 1e-12))


@SETTINGS
@given(a=_array((4, 5), 0.0, 10.0), b=_array((4, 5), 0.0, 10.0))
def test_jaccard_symmetric_in_unit_interval_and_zero_on_identical(a, b):
    a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    d = np.asarray(D.jaccard(a, b))
    assert np.all((d >= 0) & (d <= 1 + 1e-6))
    np.testing.assert_array_equal(d, np.asarray(D.jaccard(b, a)))
    np.testing.assert_array_equal(np.asarray(D.jaccard(a, a)), 0.0)


@SETTINGS
@given(
    lat=arrays(np.float64, (2, 4), elements=st.floats(-90, 90)),
    lon=arrays(np.float64, (2, 4), elements=st.floats(-180, 180)),
)
def test_great_circle_symmetric_bounded_and_zero_on_identical(lat, lon):
    P = jnp.asarray(np.stack([lat[0], lon[0]], -1), jnp.float64)
    Q = jnp.asarray(np.stack([lat[1], lon[1]], -1), jnp.float64)
    d = np.asarray(D.great_circle(P, Q))
    np.testing.assert_allclose(d, np.asarray(D.great_circle(Q, P)), rtol=1e-12, atol=1e-9)
    assert np.all(d >= 0) and np.all(d <= np.pi * D.EARTH_RADIUS_KM * (1 + 1e-12))
    np.testing.assert_array_equal(np.asarray(D.great_circle(P, P)), 0.0)
