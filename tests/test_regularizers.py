"""Regularizers over pytrees: shapes first, then values against NumPy, (sub)gradients against jax.grad."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import regularizers as R

TOL = {jnp.float64: 1e-10, jnp.float32: 1e-5}


def _params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (jnp.asarray(rng.normal(size=(3, 4)), dtype), jnp.asarray(rng.normal(size=4), dtype)),
        {"w": jnp.asarray(rng.normal(size=(4, 2)), dtype), "b": jnp.asarray([0.5, -1e-3], dtype)},
    ]


def _flat(tree):
    return np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree_util.tree_leaves(tree)])


PENALTIES = {
    "l1": (R.l1, R.l1_subgradient, {}, lambda w: np.abs(w).sum()),
    "l2": (R.l2, R.l2_gradient, {}, lambda w: np.sqrt((w**2).sum())),
    "squared_l2": (R.squared_l2, R.squared_l2_gradient, {}, lambda w: (w**2).sum()),
    "elastic_net": (R.elastic_net, R.elastic_net_subgradient, {"l1_ratio": 0.3}, lambda w: 0.3 * np.abs(w).sum() + 0.35 * (w**2).sum()),
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.bfloat16])
def test_shapes_and_dtypes(dtype):
    params = _params(dtype)
    for name, (f, g, kw, _) in PENALTIES.items():
        out = f(params, **kw)
        assert out.shape == () and out.dtype == dtype, name
        chex.assert_trees_all_equal_shapes_and_dtypes(g(params, **kw), params)
    assert R.p_norm(params, p=3).dtype == dtype
    chex.assert_trees_all_equal_shapes_and_dtypes(R.soft_threshold(params, threshold=0.5), params)
    chex.assert_trees_all_equal_shapes_and_dtypes(R.p_norm_gradient(params, p=3.0), params)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_values_match_numpy_and_gradients_match_jax_grad(dtype):
    params = _params(dtype)
    w = _flat(params)
    for name, (f, g, kw, ref) in PENALTIES.items():
        np.testing.assert_allclose(f(params, **kw), ref(w), rtol=TOL[dtype], err_msg=name)
        chex.assert_trees_all_close(g(params, **kw), jax.grad(lambda p: f(p, **kw))(params), rtol=TOL[dtype], atol=TOL[dtype])
    for p in (1.0, 1.5, 3, 7.0):
        np.testing.assert_allclose(R.p_norm(params, p=p), (np.abs(w) ** p).sum() ** (1 / p), rtol=TOL[dtype], err_msg=f"p={p}")
        chex.assert_trees_all_close(
            R.p_norm_gradient(params, p=p), jax.grad(lambda q: R.p_norm(q, p=p))(params), rtol=TOL[dtype], atol=TOL[dtype]
        )


def test_hand_values_from_the_notes():
    # Seed 004: w = (1, √2, 1, 5, 1) gives ‖w‖₂² = 1 + 2 + 1 + 25 + 1 = 30.
    w = jnp.asarray([1.0, np.sqrt(2.0), 1.0, 5.0, 1.0], jnp.float64)
    np.testing.assert_allclose(R.squared_l2(w), 30.0, rtol=1e-14)
    np.testing.assert_allclose(R.l2(w), np.sqrt(30.0), rtol=1e-14)
    np.testing.assert_allclose(R.l1(w), 8.0 + np.sqrt(2.0), rtol=1e-14)
    np.testing.assert_allclose(R.p_norm(w, p=1), R.l1(w), rtol=1e-14)
    np.testing.assert_allclose(R.p_norm(w, p=2), R.l2(w), rtol=1e-14)
    # Odd p with a negative weight: the absolute value matters.
    np.testing.assert_allclose(R.p_norm(jnp.asarray([-1.0, 2.0], jnp.float64), p=3), 9.0 ** (1 / 3), rtol=1e-14)


def test_norms_are_stable_and_safe_at_zero():
    big = jnp.asarray([3e30, 4e30], jnp.float32)  # squares overflow float32
    np.testing.assert_allclose(R.l2(big), 5e30, rtol=1e-6)
    np.testing.assert_allclose(R.p_norm(big, p=40.0), (4e30 * (1 + 0.75**40) ** (1 / 40)), rtol=1e-6)
    zero = {"w": jnp.zeros(3, jnp.float32)}
    for f in (R.l2, lambda q: R.p_norm(q, p=3.0)):
        assert float(f(zero)) == 0.0
        np.testing.assert_array_equal(jax.grad(f)(zero)["w"], 0.0)  # no NaN at the kink
    np.testing.assert_array_equal(R.l2_gradient(zero)["w"], 0.0)
    np.testing.assert_array_equal(R.p_norm_gradient(zero, p=3.0)["w"], 0.0)
    np.testing.assert_array_equal(R.l1_subgradient(jnp.asarray([-2.0, 0.0, 3.0], jnp.float64)), [-1.0, 0.0, 1.0])
    assert np.isfinite(float(R.l2(jnp.asarray([3e30, 4e30], jnp.bfloat16))))


def test_soft_threshold_is_the_l1_proximal_operator():
    x = jnp.asarray([-3.0, -0.5, 0.0, 0.2, 1.0, 4.0], jnp.float64)
    lam = 0.8
    # hand values: sign(x)·max(|x| − λ, 0)
    np.testing.assert_allclose(R.soft_threshold(x, threshold=lam), [-2.2, 0.0, 0.0, 0.0, 0.2, 3.2], rtol=1e-14, atol=1e-15)
    # independent check: argmin_u ½(u − x)² + λ|u| by brute force on a fine grid
    grid = np.linspace(-5, 5, 200001)
    brute = [grid[np.argmin(0.5 * (grid - xi) ** 2 + lam * np.abs(grid))] for xi in np.asarray(x)]
    np.testing.assert_allclose(R.soft_threshold(x, threshold=lam), brute, atol=1e-4)
    # pytrees and per-entry thresholds
    tree = {"a": x.astype(jnp.float32), "b": (x[:2].astype(jnp.float32),)}
    out = R.soft_threshold(tree, threshold=jnp.float32(lam))
    np.testing.assert_allclose(out["b"][0], [-2.2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(R.soft_threshold(x, threshold=jnp.asarray([0, 0, 0, 0, 0, 10.0])), [-3.0, -0.5, 0, 0.2, 1.0, 0.0])
    assert float(R.soft_threshold(jnp.asarray(2.0, jnp.bfloat16), threshold=0.5)) == 1.5


def test_work_under_jit_and_vmap():
    params = _params(jnp.float32)
    np.testing.assert_allclose(jax.jit(R.l2)(params), R.l2(params), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda p, lam: R.soft_threshold(p, threshold=lam))(params, 0.3)[0][0], R.soft_threshold(params, threshold=0.3)[0][0])
    rows = jnp.asarray(np.random.default_rng(1).normal(size=(5, 4)), jnp.float32)
    np.testing.assert_allclose(jax.vmap(R.l1)(rows), np.abs(np.asarray(rows)).sum(axis=1), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(lambda r: R.p_norm(r, p=3.0))(rows), (np.abs(np.asarray(rows)) ** 3).sum(1) ** (1 / 3), rtol=1e-5)


def test_bad_input():
    w = jnp.ones(3, jnp.float32)
    with pytest.raises(TypeError):
        R.p_norm(w, 3.0)  # p is keyword-only
    with pytest.raises(TypeError):
        R.soft_threshold(w, 0.5)  # threshold too
    with pytest.raises(TypeError, match="p must be a real number"):
        R.p_norm(w, p=None)
    with pytest.raises(TypeError, match="path l1_ratio"):
        R.elastic_net(w, l1_ratio="half")
    with pytest.raises(TypeError, match="threshold must be a real number"):
        R.soft_threshold(w, threshold=True)
    with pytest.raises(TypeError, match="params must hold float arrays, got a leaf of dtype int"):
        R.l1({"w": jnp.ones(3, jnp.int32)})


def test_static_errors_raise_under_an_outer_jit_and_vmap():
    with pytest.raises(TypeError, match="params must hold float arrays, got a leaf of dtype int32"):
        jax.jit(R.l2_gradient)({"w": jnp.ones(3, jnp.int32)})
    with pytest.raises(TypeError, match="params must hold float arrays"):
        jax.vmap(lambda r: R.p_norm(r, p=2.0))(jnp.ones((2, 3), jnp.int32))
    with pytest.raises(TypeError, match="l1_ratio must be a real number"):
        jax.jit(lambda p: R.elastic_net_subgradient(p, l1_ratio=None))(jnp.ones(3, jnp.float32))


def test_jitted_once_for_new_hyperparameter_values_and_values_not_checked():
    for name in R.__all__:
        assert hasattr(getattr(R, name), "lower"), name
    params = _params(jnp.float32)
    if hasattr(R.p_norm, "_cache_size"):
        R.p_norm(params, p=1.5)
        R.elastic_net(params, l1_ratio=0.1)
        starts = R.p_norm._cache_size(), R.elastic_net._cache_size()
        for value in (0.2, 0.7, 0.9):
            R.p_norm(params, p=1 + value)
            R.elastic_net(params, l1_ratio=value)
        assert (R.p_norm._cache_size(), R.elastic_net._cache_size()) == starts
    # A NaN weight gives a NaN norm (not the 0 of a zero vector); finiteness is the entry points' check.
    bad = {"w": jnp.asarray([jnp.nan, 1.0], jnp.float32)}
    for f in (R.l1, R.l2, R.squared_l2, lambda q: R.p_norm(q, p=3.0)):
        assert np.isnan(float(f(bad)))
    assert np.all(np.isnan(np.asarray(R.l2_gradient(bad)["w"])))
