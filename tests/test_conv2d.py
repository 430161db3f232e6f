"""jaxmath.conv.conv2d: the three methods agree (forward and under jax.grad) and match torch's conv2d."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch  # test-only oracle (NCHW / OIHW)

from jaxmath import conv as C

# (x shape NHWC, w shape HWIO, stride, padding, dilation)
CASES = [
    ((2, 6, 7, 3), (3, 3, 3, 4), 1, "VALID", 1),
    ((1, 7, 6, 2), (3, 2, 2, 3), 2, "SAME", 1),
    ((2, 8, 8, 1), (3, 3, 1, 2), (2, 1), 1, 2),
    ((1, 6, 9, 2), (2, 3, 2, 2), (1, 2), ((1, 2), (0, 3)), (2, 1)),
    ((1, 5, 5, 2), (2, 4, 2, 3), 1, "SAME", 1),  # even kernels: SAME splits the padding unevenly
    ((2, 5, 5, 3), (5, 5, 3, 4), 1, "VALID", 1),  # one window per image (LeNet's C5): im2col's corner shortcut
    ((1, 5, 6, 2), (3, 3, 2, 32), (1, 2), "SAME", 1),  # 32 output channels: im2col's row layout P · W
]


def torch_pads(h, w, kh, kw, stride, padding, dilation):
    """Padding per side, computed here independently of jaxmath (XLA's SAME puts the extra after)."""
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "VALID":
        return (0, 0), (0, 0)
    if padding == "SAME":
        pads = []
        for size, k, s, d in ((h, kh, sh, dh), (w, kw, sw, dw)):
            out = -(-size // s)
            total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    return padding


def torch_conv2d(x, w, stride, padding, dilation):
    x, w = np.asarray(x), np.asarray(w)
    (top, bottom), (left, right) = torch_pads(x.shape[1], x.shape[2], w.shape[0], w.shape[1], stride, padding, dilation)
    xt = torch.nn.functional.pad(torch.tensor(x.transpose(0, 3, 1, 2)), (left, right, top, bottom))
    y = torch.nn.functional.conv2d(xt, torch.tensor(w.transpose(3, 2, 0, 1)), stride=stride, dilation=dilation)
    return y.numpy().transpose(0, 2, 3, 1)


def data(xs, ws, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=xs), dtype), jnp.asarray(rng.normal(size=ws), dtype)


@pytest.mark.parametrize("with_bias", [False, True], ids=["no_bias", "bias"])
@pytest.mark.parametrize("xs, ws, stride, padding, dilation", CASES)
def test_three_methods_agree_in_float64_forward_and_under_grad(xs, ws, stride, padding, dilation, with_bias):
    x, w = data(xs, ws, jnp.float64)
    b = jnp.asarray(np.random.default_rng(3).normal(size=ws[3]), jnp.float64) if with_bias else None
    opts = dict(stride=stride, padding=padding, dilation=dilation)
    ys = {m: C.conv2d(x, w, b, method=m, **opts) for m in C.METHODS}
    expected = torch_conv2d(x, w, stride, padding, dilation) + (np.asarray(b) if with_bias else 0.0)
    for m, y in ys.items():
        assert y.shape == expected.shape and y.dtype == jnp.float64, m
        np.testing.assert_allclose(y, ys["xla"], rtol=0, atol=1e-10, err_msg=m)
        np.testing.assert_allclose(y, expected, rtol=0, atol=1e-10, err_msg=m)
    # A non-uniform cotangent, so every output pixel's gradient path is checked.
    probe = jnp.asarray(np.random.default_rng(1).normal(size=expected.shape), jnp.float64)
    argnums = (0, 1, 2) if with_bias else (0, 1)
    grads = {
        m: jax.grad(lambda x, w, b, m=m: jnp.sum(C.conv2d(x, w, b, method=m, **opts) * probe), argnums=argnums)(
            x, w, b)
        for m in C.METHODS
    }
    xt = torch.tensor(np.asarray(x), requires_grad=True)
    wt = torch.tensor(np.asarray(w), requires_grad=True)
    bt = torch.tensor(np.asarray(b), requires_grad=True) if with_bias else None
    (top, bottom), (left, right) = torch_pads(xs[1], xs[2], ws[0], ws[1], stride, padding, dilation)
    yt = torch.nn.functional.conv2d(
        torch.nn.functional.pad(xt.permute(0, 3, 1, 2), (left, right, top, bottom)), wt.permute(3, 2, 0, 1), bt,
        stride=stride, dilation=dilation,
    )
    (yt.permute(0, 2, 3, 1) * torch.tensor(np.asarray(probe))).sum().backward()
    for m, (gx, gw, *gb) in grads.items():
        assert gx.shape == xs and gw.shape == ws
        np.testing.assert_allclose(gx, grads["xla"][0], rtol=0, atol=1e-10, err_msg=m)
        np.testing.assert_allclose(gw, grads["xla"][1], rtol=0, atol=1e-10, err_msg=m)
        np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=0, atol=1e-10, err_msg=m)
        np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=0, atol=1e-10, err_msg=m)
        if with_bias:
            assert gb[0].shape == (ws[3],)
            np.testing.assert_allclose(gb[0], bt.grad.numpy(), rtol=0, atol=1e-10, err_msg=m)


@pytest.mark.parametrize("method", C.METHODS)
def test_float32_matches_torch(method):
    x, w = data((2, 9, 9, 3), (3, 3, 3, 4), jnp.float32, seed=2)
    y = C.conv2d(x, w, stride=2, padding=1, method=method, precision="highest")
    assert y.shape == (2, 5, 5, 4) and y.dtype == jnp.float32
    np.testing.assert_allclose(y, torch_conv2d(x, w, 2, 1, 1), rtol=1e-5, atol=1e-5)


def test_a_hand_computed_convolution():
    # A 3x3 image 1..9 and a 2x2 kernel [[1, 0], [0, -1]]: y[p, q] = x[p, q] - x[p+1, q+1] = -4 everywhere.
    x = jnp.arange(1.0, 10.0, dtype=jnp.float64).reshape(1, 3, 3, 1)
    w = jnp.array([[1.0, 0.0], [0.0, -1.0]], jnp.float64).reshape(2, 2, 1, 1)
    for m in C.METHODS:
        np.testing.assert_array_equal(C.conv2d(x, w, method=m)[0, :, :, 0], np.full((2, 2), -4.0))
    # SAME pads one zero row and column after: the last row/column see only x[p, q].
    np.testing.assert_array_equal(C.conv2d(x, w, padding="SAME", method="direct")[0, :, :, 0],
                                  [[-4.0, -4.0, 3.0], [-4.0, -4.0, 6.0], [7.0, 8.0, 9.0]])


@pytest.mark.parametrize("method", C.METHODS)
def test_bfloat16_stays_finite(method):
    x = jnp.full((1, 6, 6, 2), 3.0, jnp.bfloat16)
    w = jnp.full((3, 3, 2, 2), 2.0, jnp.bfloat16)
    y = C.conv2d(x, w, method=method)
    assert y.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(y)))
    np.testing.assert_array_equal(np.asarray(y, np.float32), np.full((1, 4, 4, 2), 108.0, np.float32))


def test_im2col_is_the_patch_matrix_and_col2im_its_adjoint():
    x, w = data((2, 5, 6, 3), (2, 3, 3, 4), jnp.float64, seed=3)
    opts = dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2))
    p = C.im2col(x, kernel_size=(2, 3), **opts)
    np.testing.assert_array_equal(C.im2col(x, kernel_size=2), C.im2col(x, kernel_size=(2, 2)))
    y = C.conv2d(x, w, method="xla", **opts)
    assert p.shape == (y.shape[0] * y.shape[1] * y.shape[2], 2 * 3 * 3)
    np.testing.assert_allclose((p @ w.reshape(-1, 4)).reshape(y.shape), y, atol=1e-10)
    # Row 0 is output pixel (0, 0) of image 0: padded rows -1, 0 and padded columns -2, 0, 2.
    xp = np.pad(np.asarray(x), ((0, 0), (1, 0), (2, 1), (0, 0)))
    np.testing.assert_array_equal(p[0].reshape(2, 3, 3), xp[0, 0:2, 0:5:2, :])
    # <im2col(x), c> == <x, col2im(c)> for any c: col2im is the transpose of the linear map im2col.
    c = jnp.asarray(np.random.default_rng(4).normal(size=p.shape), jnp.float64)
    back = C.col2im(c, x_shape=x.shape, kernel_size=(2, 3), **opts)
    assert back.shape == x.shape
    np.testing.assert_allclose(jnp.vdot(p, c), jnp.vdot(x, back), rtol=1e-12)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation", CASES + [((2, 5, 6, 3), (5, 6, 3, 1), 1, 1, 1)])
def test_im2col_methods_transposed_patch_matrix_is_the_patch_matrix(xs, ws, stride, padding, dilation):
    # The tuned im2col path builds Pᵀ channel-first; it must hold exactly im2col's entries, also where the
    # output is one pixel per image (the corner shortcut) and where padding rules the shortcut out.
    from jaxmath.conv.conv2d import conv_geometry, patches_transposed

    x, w = data(xs, ws, jnp.float64)
    geo = conv_geometry(xs, ws, stride=stride, padding=padding, dilation=dilation)
    p = C.im2col(x, kernel_size=ws[:2], stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_array_equal(patches_transposed(x, geo), p.T)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation", CASES)
def test_col2im_channels_first_is_the_adjoint_of_the_channels_first_patch_matrix(xs, ws, stride, padding, dilation):
    # im2col's custom VJP sends W · δᵀ back through col2im_channels_first: <Pᵀ(xc), c> == <xc, col2im(c)>.
    from jaxmath.conv.conv2d import col2im_channels_first, conv_geometry, patches_channels_first

    x, _ = data(xs, ws, jnp.float64)
    xc = jnp.transpose(x, (3, 0, 1, 2))
    geo = conv_geometry(xs, ws, stride=stride, padding=padding, dilation=dilation)
    pt = patches_channels_first(xc, geo)
    c = jnp.asarray(np.random.default_rng(5).normal(size=pt.shape), jnp.float64)
    back = col2im_channels_first(c, xc.shape, geo)
    assert back.shape == xc.shape
    np.testing.assert_allclose(jnp.vdot(pt, c), jnp.vdot(xc, back), rtol=1e-12)


def test_im2col_gradient_is_reverse_mode_only_and_stays_finite_in_bfloat16():
    x, w = data((2, 8, 8, 3), (3, 3, 3, 4), jnp.float32)
    tangents = (jnp.ones_like(x), jnp.ones_like(w))
    # conv2d is bilinear: its derivative along (tx, tw) is conv2d(tx, w) + conv2d(x, tw).
    expected = C.conv2d(tangents[0], w) + C.conv2d(x, tangents[1])
    for method in ("xla", "direct"):  # forward mode works where autodiff differentiates the method itself
        _, y_dot = jax.jvp(lambda x, w, m=method: C.conv2d(x, w, method=m), (x, w), tangents)
        np.testing.assert_allclose(y_dot, expected, rtol=1e-5, atol=1e-4)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda x, w: C.conv2d(x, w, method="im2col"), (x, w), tangents)
    xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    gx, gw = jax.grad(lambda x, w: jnp.sum(C.conv2d(x, w, method="im2col").astype(jnp.float32) ** 2),
                      argnums=(0, 1))(xb, wb)
    assert gx.dtype == jnp.bfloat16 and gw.dtype == jnp.bfloat16
    assert bool(jnp.all(jnp.isfinite(gx.astype(jnp.float32)))) and bool(jnp.all(jnp.isfinite(gw.astype(jnp.float32))))


def test_static_checks_name_the_argument_also_under_an_outer_jit():
    x, w = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 4))
    with pytest.raises(ValueError, match=r"bias must have shape \(c_out,\) = \(4,\).*got bias.shape=\(3,\)"):
        jax.jit(lambda x, w: C.conv2d(x, w, jnp.ones(3)))(x, w)
    with pytest.raises(ValueError, match="x must be 4-dimensional"):
        C.conv2d(jnp.ones((5, 5, 2)), w)
    with pytest.raises(ValueError, match="w must be 4-dimensional"):
        C.conv2d(x, jnp.ones((3, 3, 2)))
    with pytest.raises(ValueError, match=r"w's input channels.*w.shape\[2\]=3.*x.shape\[3\]=2"):
        C.conv2d(x, jnp.ones((3, 3, 3, 4)))
    with pytest.raises(ValueError, match="method must be one of"):
        C.conv2d(x, w, method="fft")
    with pytest.raises(ValueError, match="padding must be"):
        C.conv2d(x, w, padding="FULL")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        C.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="does not fit"):
        C.conv2d(x, jnp.ones((7, 7, 2, 4)))
    with pytest.raises(ValueError, match="w's input channels"):
        jax.jit(lambda x, w: C.conv2d(x, w, method="im2col"))(x, jnp.ones((3, 3, 3, 4)))
