"""jaxmath.conv.conv2d_backprop: the hand-derived dW = Pᵀδ and dx = col2im(δWᵀ) equal jax's vjp."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import conv as C

CASES = [
    ((2, 6, 6, 2), (3, 3, 2, 3), 1, "VALID", 1),
    ((1, 7, 8, 2), (3, 3, 2, 2), 2, "SAME", 1),
    ((1, 7, 7, 1), (2, 2, 1, 2), 3, "VALID", 1),  # stride 3 skips input rows: their gradient is 0
    ((1, 6, 7, 2), (3, 2, 2, 2), (1, 2), ((2, 0), (1, 1)), (2, 1)),
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation", CASES)
def test_hand_backprop_equals_jax_vjp_in_float64(xs, ws, stride, padding, dilation):
    rng = np.random.default_rng(len(xs) + xs[1])
    x = jnp.asarray(rng.normal(size=xs), jnp.float64)
    w = jnp.asarray(rng.normal(size=ws), jnp.float64)
    opts = dict(stride=stride, padding=padding, dilation=dilation)
    y, vjp = jax.vjp(lambda x, w: C.conv2d(x, w, method="xla", **opts), x, w)
    delta = jnp.asarray(rng.normal(size=y.shape), jnp.float64)
    dx_ref, dw_ref = vjp(delta)
    dx, dw = C.conv2d_backprop(x, w, delta, **opts)
    assert dx.shape == xs and dw.shape == ws and dx.dtype == dw.dtype == jnp.float64
    np.testing.assert_allclose(dx, dx_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dw, dw_ref, rtol=0, atol=1e-10)


def test_stride_larger_than_kernel_leaves_unread_pixels_with_zero_gradient():
    x = jnp.ones((1, 7, 7, 1), jnp.float64)
    w = jnp.ones((2, 2, 1, 1), jnp.float64)
    dx, _ = C.conv2d_backprop(x, w, jnp.ones((1, 2, 2, 1), jnp.float64), stride=3)
    read = np.zeros((7, 7))
    for p in (0, 3):
        for q in (0, 3):
            read[p:p + 2, q:q + 2] = 1.0
    np.testing.assert_array_equal(dx[0, :, :, 0], read)


def test_float32_matches_jax_grad_and_bfloat16_is_finite():
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(2, 6, 6, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 3, 2)), jnp.float32)
    gx, gw = jax.grad(lambda x, w: jnp.sum(C.conv2d(x, w, padding=1, precision="highest") ** 2 / 2), (0, 1))(x, w)
    delta = C.conv2d(x, w, padding=1, precision="highest")  # ∂(½Σy²)/∂y = y
    dx, dw = C.conv2d_backprop(x, w, delta, padding=1, precision="highest")
    assert dx.dtype == dw.dtype == jnp.float32
    np.testing.assert_allclose(dx, gx, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(dw, gw, rtol=1e-5, atol=1e-4)
    b = [a.astype(jnp.bfloat16) for a in (x, w)]
    dxb, dwb = C.conv2d_backprop(*b, jnp.ones((2, 6, 6, 2), jnp.bfloat16), padding=1)
    assert dxb.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(dxb)) & jnp.all(jnp.isfinite(dwb)))


def test_delta_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"delta must have the output's shape \(1, 3, 3, 2\)"):
        C.conv2d_backprop(jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 2)), jnp.ones((1, 5, 5, 2)))
