"""jaxmath.conv.conv1d: the notes' sliding sum (seed 001), its k = 3 example and the erratum in it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import conv as C


def numpy_conv1d(x, w):
    """y_i = Σ_j w_j x_{i+j} with zeros past the end, written with NumPy's correlate."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    return np.correlate(np.concatenate([x, np.zeros(len(w) - 1)]), w, mode="valid")


def test_the_notes_k3_example_with_digits_that_show_each_term():
    # Weights 1, 10, 100 and inputs 1, 2, 3 put each product w_j x_i in its own decimal place.
    x = jnp.array([1.0, 2.0, 3.0], jnp.float64)
    w = jnp.array([1.0, 10.0, 100.0], jnp.float64)
    y = C.conv1d(x, w)
    assert y.shape == (3,) and y.dtype == jnp.float64
    w1, w2, w3 = 1.0, 10.0, 100.0
    x1, x2, x3 = 1.0, 2.0, 3.0
    expected = [w1 * x1 + w2 * x2 + w3 * x3, w1 * x2 + w2 * x3 + 0, w1 * x3 + 0 + 0]  # 321, 32, 3
    np.testing.assert_array_equal(np.asarray(y), expected)
    np.testing.assert_array_equal(np.asarray(y), [321.0, 32.0, 3.0])


def test_erratum_13_the_k3_example_repeats_w2x2_where_w3x3_belongs():
    # Seed 001: "y_1 = w_1 x_1 + w_2 x_2 + w_2 x_2". The definition (and NumPy) give w_3 x_3 as the last term.
    rng = np.random.default_rng(13)
    x, w = rng.normal(size=3), rng.normal(size=3)
    notes_as_written = w[0] * x[0] + w[1] * x[1] + w[1] * x[1]
    corrected = w[0] * x[0] + w[1] * x[1] + w[2] * x[2]
    reference = numpy_conv1d(x, w)[0]
    y1 = float(C.conv1d(jnp.asarray(x, jnp.float64), jnp.asarray(w, jnp.float64))[0])
    assert reference == pytest.approx(corrected, abs=1e-12)
    assert y1 == pytest.approx(corrected, abs=1e-12)
    assert abs(y1 - notes_as_written) > 1e-3


@pytest.mark.parametrize("dtype, tol", [(jnp.float32, 1e-5), (jnp.float64, 1e-12)])
@pytest.mark.parametrize("n, k", [(1, 1), (5, 2), (8, 3), (3, 5)])  # k > n: taps past the end see zeros
def test_matches_numpy_correlate(dtype, tol, n, k):
    rng = np.random.default_rng(n * 10 + k)
    x, w = rng.normal(size=n), rng.normal(size=k)
    y = C.conv1d(jnp.asarray(x, dtype), jnp.asarray(w, dtype))
    assert y.shape == (n,) and y.dtype == dtype
    np.testing.assert_allclose(np.asarray(y, np.float64), numpy_conv1d(x, w), rtol=tol, atol=tol)


def test_leading_axes_are_a_batch_and_grad_is_the_transposed_correlation():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(4, 6)), jnp.float64)
    w = jnp.asarray(rng.normal(size=3), jnp.float64)
    y = C.conv1d(x, w)
    assert y.shape == (4, 6)
    for b in range(4):
        np.testing.assert_allclose(y[b], numpy_conv1d(x[b], w), atol=1e-12)
    # ∂(Σ y)/∂w_j = Σ_i x_{i+j}: the sum of x over the positions tap j reads.
    g = jax.grad(lambda w: C.conv1d(x, w).sum())(w)
    np.testing.assert_allclose(g, [np.asarray(x)[:, j:].sum() for j in range(3)], atol=1e-12)


def test_bfloat16_stays_finite():
    y = C.conv1d(jnp.full((16,), 3.0, jnp.bfloat16), jnp.full((4,), 2.0, jnp.bfloat16))
    assert y.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(y)))
    np.testing.assert_array_equal(np.asarray(y[:13], np.float32), 24.0)


def test_static_checks_name_the_argument():
    with pytest.raises(ValueError, match="w must be 1-dimensional"):
        C.conv1d(jnp.ones(4), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="x must have at least 1 dimension"):
        C.conv1d(jnp.ones(()), jnp.ones(2))


def test_erratum_14_the_slide_indexes_weights_by_position_which_is_not_a_convolution():
    # Seed 001 writes y_i = w_i x_i + w_{i+1} x_{i+1} + … + w_k x_k (its y_2 = w_2x_2 + w_3x_3 + 0).
    def slide_as_written(x, w):
        return np.array([sum(w[j] * x[j] for j in range(i, len(x))) for i in range(len(x))])

    def shift_left(v):  # drop v_1, append a zero: x'_i = x_{i+1}
        return np.concatenate([v[1:], [0.0]])

    rng = np.random.default_rng(14)
    x, w = rng.normal(size=3), rng.normal(size=3)
    y = np.asarray(C.conv1d(jnp.asarray(x, jnp.float64), jnp.asarray(w, jnp.float64)))
    np.testing.assert_allclose(y, [w[0] * x[0] + w[1] * x[1] + w[2] * x[2], w[0] * x[1] + w[1] * x[2], w[0] * x[2]],
                               atol=1e-12)
    assert y[0] == pytest.approx(slide_as_written(x, w)[0], abs=1e-12)  # the readings agree on y_1 only
    assert abs(y[1] - slide_as_written(x, w)[1]) > 1e-3
    # A convolution commutes with shifting the input (with zeros past the end); the slide's formula does not.
    y_shifted = np.asarray(C.conv1d(jnp.asarray(shift_left(x), jnp.float64), jnp.asarray(w, jnp.float64)))
    np.testing.assert_allclose(y_shifted, shift_left(y), atol=1e-12)
    assert np.max(np.abs(slide_as_written(shift_left(x), w) - shift_left(slide_as_written(x, w)))) > 1e-3
