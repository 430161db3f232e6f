"""jaxmath.conv pooling: max_pool / avg_pool against NumPy and torch; hand backprop against jax.grad, ties too."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch  # test-only oracle

from jaxmath import conv as C


def numpy_pool(x, k, s, reduce):
    """VALID pooling by explicit loops over windows."""
    x = np.asarray(x)
    n, h, w, c = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    y = np.empty((n, oh, ow, c))
    for p in range(oh):
        for q in range(ow):
            y[:, p, q, :] = reduce(x[:, p * s:p * s + k, q * s:q * s + k, :], axis=(1, 2))
    return y


@pytest.mark.parametrize("dtype, tol", [(jnp.float32, 1e-6), (jnp.float64, 1e-12)])
@pytest.mark.parametrize("window, stride", [(2, None), (3, 2), (2, 1)])
def test_pools_match_numpy_loops(dtype, tol, window, stride):
    x = np.random.default_rng(window).normal(size=(2, 7, 6, 3))
    s = window if stride is None else stride
    ymax = C.max_pool(jnp.asarray(x, dtype), window=window, stride=stride)
    yavg = C.avg_pool(jnp.asarray(x, dtype), window=window, stride=stride)
    assert ymax.dtype == yavg.dtype == dtype
    np.testing.assert_allclose(ymax, numpy_pool(x, window, s, np.max), rtol=tol, atol=tol)
    np.testing.assert_allclose(yavg, numpy_pool(x, window, s, np.mean), rtol=tol, atol=tol)


def test_pools_and_their_gradients_match_torch_with_padding():
    x = np.random.default_rng(1).normal(size=(2, 6, 7, 2))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, 3, stride=2, padding=1)
    yt.sum().backward()
    y = C.max_pool(jnp.asarray(x), window=3, stride=2, padding=1)
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-12)
    dx = C.max_pool_backprop(jnp.asarray(x), jnp.ones_like(y), window=3, stride=2, padding=1)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-12)
    xt.grad = None
    torch.nn.functional.avg_pool2d(xt, 3, stride=2, padding=1, count_include_pad=True).sum().backward()
    ya = C.avg_pool(jnp.asarray(x), window=3, stride=2, padding=1)
    da = C.avg_pool_backprop(jnp.asarray(x), jnp.ones_like(ya), window=3, stride=2, padding=1)
    np.testing.assert_allclose(da, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-12)


@pytest.mark.parametrize(
    "window, stride, padding", [(2, None, "VALID"), (3, 1, "SAME"), (3, 2, 1), (2, (1, 2), "VALID")]
)
def test_hand_backprop_equals_jax_grad_float64(window, stride, padding):
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=(2, 6, 6, 2)), jnp.float64)
    opts = dict(window=window, stride=stride, padding=padding)
    for pool, backprop in ((C.max_pool, C.max_pool_backprop), (C.avg_pool, C.avg_pool_backprop)):
        y, vjp = jax.vjp(lambda x: pool(x, **opts), x)
        delta = jnp.asarray(rng.normal(size=y.shape), jnp.float64)
        (expected,) = vjp(delta)
        got = backprop(x, delta, **opts)
        assert got.shape == x.shape and got.dtype == jnp.float64
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, err_msg=pool.__name__)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum_in_row_major_order():
    # Window (0,0) has 3 at (0,1) and (1,0); window (0,1) has 3 at (0,2) alone; window (1,1) is all 5s.
    x = jnp.array([[1.0, 3.0, 3.0, 0.0],
                   [3.0, 2.0, 1.0, 1.0],
                   [0.0, 0.0, 5.0, 5.0],
                   [0.0, 0.0, 5.0, 5.0]], jnp.float64).reshape(1, 4, 4, 1)
    expected = np.array([[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]], np.float64)
    hand = C.max_pool_backprop(x, jnp.ones((1, 2, 2, 1), jnp.float64))
    auto = jax.grad(lambda x: C.max_pool(x).sum())(x)
    np.testing.assert_array_equal(hand[0, :, :, 0], expected)
    np.testing.assert_array_equal(auto[0, :, :, 0], expected)
    # Overlapping windows with ties: each window picks its own first maximum; contributions add.
    hand = C.max_pool_backprop(x, jnp.ones((1, 3, 3, 1), jnp.float64), window=2, stride=1)
    auto = jax.grad(lambda x: C.max_pool(x, window=2, stride=1).sum())(x)
    np.testing.assert_array_equal(hand, auto)
    assert float(hand.sum()) == 9.0


@pytest.mark.parametrize("shape, window, padding", [
    ((2, 6, 8, 3), 2, "VALID"), ((1, 7, 9, 2), (2, 3), "VALID"), ((2, 5, 7, 2), 3, ((1, 1), (0, 2))),
    ((1, 5, 5, 2), 2, "SAME"),
])
def test_tiled_pooling_equals_the_reduce_window_reference_with_ties_float64(shape, window, padding):
    # Tiling windows (stride = window) take the reshape path; the reference is lax.reduce_window, whose CPU
    # gradient (select-and-scatter) sends δ to the first maximum. Small integers make many ties; odd sizes
    # leave rows past the last window; padding puts -inf (max) or 0 (avg) taps in the windows.
    from jaxmath.conv.pooling import _avg_pool_reference, _max_pool_reference, pool_geometry

    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.integers(0, 3, size=shape), jnp.float64)
    geo = pool_geometry(shape, window, None, padding)
    assert geo.stride == geo.window
    opts = dict(window=window, padding=padding)
    for pool, reference in ((C.max_pool, _max_pool_reference), (C.avg_pool, _avg_pool_reference)):
        y, vjp = jax.vjp(lambda x: pool(x, **opts), x)
        y_ref, vjp_ref = jax.vjp(lambda x: reference(x, geo), x)
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-12, err_msg=pool.__name__)
        delta = jnp.asarray(rng.normal(size=y.shape), jnp.float64)
        np.testing.assert_allclose(vjp(delta)[0], vjp_ref(delta)[0], rtol=0, atol=1e-12, err_msg=pool.__name__)
    # Each window's δ lands on one pixel only, the first maximal one (hand backprop, argmax-based).
    delta = jnp.ones(y.shape, jnp.float64)
    got = jax.grad(lambda x: jnp.vdot(C.max_pool(x, **opts), delta))(x)
    np.testing.assert_array_equal(got, C.max_pool_backprop(x, delta, **opts))
    # Forward mode follows the same rule (the custom JVP is what reverse mode transposes).
    tangent = jnp.asarray(rng.normal(size=shape), jnp.float64)
    _, jvp = jax.jvp(lambda x: C.max_pool(x, **opts), (x,), (tangent,))
    np.testing.assert_allclose(jnp.vdot(jvp, delta), jnp.vdot(got, tangent), rtol=1e-12)


def test_bfloat16_stays_finite_and_static_checks():
    x = jnp.full((1, 4, 4, 2), 3.0, jnp.bfloat16)
    for pool in (C.max_pool, C.avg_pool):
        y = pool(x)
        assert y.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(y)))
        np.testing.assert_array_equal(np.asarray(y, np.float32), 3.0)
    assert bool(jnp.all(jnp.isfinite(C.max_pool_backprop(x, jnp.ones((1, 2, 2, 2), jnp.bfloat16)))))
    with pytest.raises(ValueError, match="x must be 4-dimensional"):
        C.max_pool(jnp.ones((4, 4, 2)))
    with pytest.raises(ValueError, match="window must be >= 1"):
        C.avg_pool(jnp.ones((1, 4, 4, 1)), window=0)
    with pytest.raises(ValueError, match="does not fit"):
        C.max_pool(jnp.ones((1, 4, 4, 1)), window=5)
    with pytest.raises(ValueError, match="delta must have the output's shape"):
        C.avg_pool_backprop(jnp.ones((1, 4, 4, 1)), jnp.ones((1, 4, 4, 1)))
