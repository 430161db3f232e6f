"""jaxmath.devices.systolic: the simulated weight-stationary array multiplies like jnp.dot, counts cycles."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.devices import systolic as S


@pytest.mark.parametrize("m, k, n, size", [(1, 1, 1, 1), (5, 3, 2, 4), (7, 10, 6, 4), (9, 8, 8, 8), (3, 17, 5, 4)])
def test_integer_matmul_is_exactly_jnp_dot(m, k, n, size):
    rng = np.random.default_rng(m * 100 + k)
    x = jnp.asarray(rng.integers(-9, 10, (m, k)), jnp.int32)
    w = jnp.asarray(rng.integers(-9, 10, (k, n)), jnp.int32)
    r = S.systolic_matmul(x, w, array_size=size)
    assert r.output.shape == (m, n) and r.output.dtype == jnp.int32
    np.testing.assert_array_equal(r.output, jnp.dot(x, w))
    np.testing.assert_array_equal(r.output, np.asarray(x) @ np.asarray(w))  # and NumPy, independently


@pytest.mark.parametrize("dtype, tol", [(jnp.float32, 1e-5), (jnp.float64, 1e-12)])
def test_float_matmul_matches_jnp_dot(dtype, tol):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(6, 13)), dtype)
    w = jnp.asarray(rng.normal(size=(13, 5)), dtype)
    r = S.systolic_matmul(x, w, array_size=4)
    assert r.output.shape == (6, 5) and r.output.dtype == dtype
    np.testing.assert_allclose(r.output, jnp.dot(x, w, precision="highest"), rtol=tol, atol=tol)


def test_bfloat16_stays_finite():
    x = jnp.full((4, 8), 3.0, jnp.bfloat16)
    w = jnp.full((8, 3), 2.0, jnp.bfloat16)
    r = S.systolic_matmul(x, w, array_size=4)
    assert r.output.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(r.output)))
    np.testing.assert_array_equal(np.asarray(r.output, np.float32), np.full((4, 3), 48.0, np.float32))


def test_cycle_counts_by_hand():
    # m=5 rows through one 4x4 tile: fill (N-1) + 5 rows + drain (N-1) = 11 cycles, plus 4 to load weights.
    r = S.systolic_matmul(jnp.ones((5, 4), jnp.int32), jnp.ones((4, 4), jnp.int32), array_size=4, record_activity=True)
    assert r.tiles == (1, 1) and r.compute_cycles == 11 and r.weight_load_cycles == 4 and r.cycles == 15
    assert r.macs == 5 * 4 * 4
    assert r.utilization == pytest.approx(80 / (16 * 15))
    assert r.streaming_utilization == pytest.approx(1.0)
    # The wavefront: cell (i, j) works at cycles t + i + j for t in 0..4.
    act = np.asarray(r.activity)
    assert act.shape == (11, 4, 4)
    for c in range(11):
        for i in range(4):
            for j in range(4):
                assert act[c, i, j] == (0 <= c - i - j < 5)
    np.testing.assert_array_equal(r.cell_activity, np.full((4, 4), 5))


def test_padding_leaves_cells_idle_and_counts_match_the_model():
    # k=10, n=6 on a 4x4 array: 3x2 tiles; the last k-tile has 2 real rows, the last n-tile 2 real columns.
    m, k, n, size = 7, 10, 6, 4
    r = S.systolic_matmul(jnp.ones((m, k), jnp.float32), jnp.ones((k, n), jnp.float32), array_size=size)
    model = S.cycle_model(m, k, n, array_size=size)
    assert r.tiles == model.tiles == (3, 2)
    assert r.cycles == model.cycles == 6 * (m + 2 * (size - 1)) + 6 * size
    real_tiles = np.zeros((size, size), int)
    for kt in range(3):
        for nt in range(2):
            rows = min(size, k - kt * size)
            cols = min(size, n - nt * size)
            real_tiles[:rows, :cols] += 1
    np.testing.assert_array_equal(r.cell_activity, m * real_tiles)
    assert int(np.sum(r.cell_activity)) == m * k * n == r.macs
    assert r.streaming_utilization == pytest.approx((k / 12) * (n / 8))


def test_a_16_wide_layer_uses_at_most_an_eighth_of_a_128_array():
    model = S.cycle_model(128, 784, 16, array_size=128)
    assert model.tiles == (7, 1)
    assert model.streaming_utilization == pytest.approx((784 / 896) * (16 / 128))
    assert model.utilization < 16 / 128
    wide = S.cycle_model(1024, 1024, 1024, array_size=128)
    assert wide.streaming_utilization == 1.0 and wide.utilization > 0.5
    rows = S.layer_report((784, 16, 16, 10))
    assert [r["layer"] for r in rows] == ["784->16", "16->16", "16->10"]
    assert rows[1]["streaming_utilization"] == pytest.approx((16 / 128) ** 2)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, match",
    [
        ((3,), (3, 2), {}, "x must be 2-dimensional"),
        ((2, 3), (4, 2), {}, "x.shape=\\(2, 3\\) and w.shape=\\(4, 2\\)"),
        ((2, 3), (3, 2), {"array_size": 0}, "array_size"),
    ],
)
def test_bad_input_is_refused(x_shape, w_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        S.systolic_matmul(jnp.ones(x_shape, jnp.float32), jnp.ones(w_shape, jnp.float32), **kwargs)


@pytest.mark.parametrize("dtype, tol", [(jnp.int32, 0), (jnp.float64, 1e-12)])
def test_a_small_convolution_runs_on_the_array_as_an_im2col_matmul(dtype, tol):
    from jaxmath import conv

    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.integers(-4, 5, (2, 5, 6, 2)), dtype)
    w = jnp.asarray(rng.integers(-3, 4, (3, 2, 2, 3)), dtype)
    r = S.systolic_conv2d(x, w, stride=(1, 2), padding=1, array_size=4)
    y = conv.conv2d(x.astype(jnp.float64), w.astype(jnp.float64), stride=(1, 2), padding=1, method="direct")
    assert r.output.shape == y.shape == (2, 5, 4, 3) and r.output.dtype == dtype
    np.testing.assert_allclose(np.asarray(r.output, np.float64), y, rtol=0, atol=tol)
    # The matmul is (n·oh·ow, kh·kw·c_in) @ (kh·kw·c_in, c_out) = (40, 12) @ (12, 3): 3 k-tiles, 1 n-tile of 4.
    model = S.conv_cycle_model(x.shape, w.shape, stride=(1, 2), padding=1, array_size=4)
    assert r.tiles == model.tiles == (3, 1) and r.cycles == model.cycles and r.macs == 40 * 12 * 3
    assert r.streaming_utilization == pytest.approx(3 / 4)


def test_lenet_c1_uses_a_sliver_of_a_128_array():
    # C1: 5x5 kernel, 1 -> 6 channels on 32x32: K = 25, n = 6 -> at most (25/128)(6/128) of the cells work.
    model = S.conv_cycle_model((128, 32, 32, 1), (5, 5, 1, 6), array_size=128)
    assert model.tiles == (1, 1) and model.macs == 128 * 28 * 28 * 25 * 6
    assert model.streaming_utilization == pytest.approx((25 / 128) * (6 / 128))
