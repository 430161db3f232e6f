"""Lasso by coordinate descent against scikit-learn's Lasso and the soft-threshold optimality conditions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.models import lasso


def _data(seed=0, n=120, d=6, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = np.array([2.0, 0.0, -1.5, 0.0, 0.3, 0.0])[:d]
    y = x @ w + 0.5 + 0.2 * rng.normal(size=n)
    return x.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("dtype, tol", [(jnp.float64, 1e-8), (jnp.float32, 1e-4)])
@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.5])
def test_lasso_matches_sklearn_with_the_same_alpha(dtype, tol, alpha):
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    x, y = _data()
    params, info = lasso.fit(jnp.asarray(x, dtype), jnp.asarray(y, dtype), alpha=alpha, tol=1e-10, max_steps=2000)
    assert params["w"].shape == (6,) and params["b"].shape == () and params["w"].dtype == dtype
    ref = sklearn_lm.Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(x, y)
    np.testing.assert_allclose(params["w"], ref.coef_, atol=tol)
    np.testing.assert_allclose(params["b"], ref.intercept_, atol=tol)
    # Same zeros as scikit-learn, and they are exact zeros.
    np.testing.assert_array_equal(np.asarray(params["w"]) == 0, ref.coef_ == 0)
    assert bool(info.converged) or dtype == jnp.float32


def test_lasso_solution_satisfies_the_kkt_conditions():
    x, y = _data()
    alpha = 0.1
    params, _ = lasso.fit(jnp.asarray(x), jnp.asarray(y), alpha=alpha, tol=1e-12, max_steps=5000)
    w, b = np.asarray(params["w"]), float(params["b"])
    grad = x.T @ (x @ w + b - y) / len(y)  # gradient of the smooth part, written out here
    on = w != 0
    assert on.sum() >= 2 and (~on).sum() >= 1
    np.testing.assert_allclose(grad[on], -alpha * np.sign(w[on]), atol=1e-9)
    assert np.all(np.abs(grad[~on]) <= alpha + 1e-9)
    np.testing.assert_allclose(np.mean(x @ w + b - y), 0.0, atol=1e-10)


def test_large_alpha_gives_all_zero_weights_and_mean_intercept():
    x, y = _data()
    alpha_max = np.max(np.abs((x - x.mean(0)).T @ (y - y.mean()))) / len(y)
    params, info = lasso.fit(jnp.asarray(x), jnp.asarray(y), alpha=alpha_max * 1.01)
    assert np.all(np.asarray(params["w"]) == 0.0)
    np.testing.assert_allclose(params["b"], y.mean(), rtol=1e-12)
    assert bool(info.converged) and int(info.num_steps) == 1


def test_lasso_loss_history_decreases_and_equals_the_objective():
    x, y = _data()
    x, y = jnp.asarray(x), jnp.asarray(y)
    params, info = lasso.fit(x, y, alpha=0.05, tol=1e-12)
    n = int(info.num_steps)
    h = np.asarray(info.loss_history[:n])
    assert np.all(np.diff(h) <= 1e-12)
    np.testing.assert_allclose(h[-1], lasso.loss(params, x, y, alpha=0.05), rtol=1e-10)


def test_lasso_path_by_vmap_over_alpha():
    x, y = _data()
    alphas = jnp.asarray([0.001, 0.01, 0.1, 0.3, 1.0, 3.0])
    path, info = jax.vmap(lambda a: lasso.fit(jnp.asarray(x), jnp.asarray(y), alpha=a, tol=1e-10))(alphas)
    assert path["w"].shape == (6, 6) and info.loss_history.shape == (6, 1000)
    nonzero = np.sum(np.asarray(path["w"]) != 0, axis=1)
    assert np.all(np.diff(nonzero) <= 0) and nonzero[0] == 6 and nonzero[-1] == 0
    for i, a in enumerate([0.01, 0.3]):
        single, _ = lasso.fit(x, y, alpha=a, tol=1e-10)
        np.testing.assert_allclose(path["w"][i + (1 if a == 0.01 else 2)], single["w"], atol=1e-12)


def test_lasso_bfloat16_stays_finite():
    x, y = _data()
    params, info = lasso.fit(jnp.asarray(x, jnp.bfloat16), jnp.asarray(y, jnp.bfloat16), alpha=0.1, max_steps=50)
    assert params["w"].dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(params["w"], np.float32)))
    np.testing.assert_allclose(np.asarray(params["w"], np.float32)[0], 1.9, atol=0.2)


def test_lasso_bad_input():
    x, y = _data(n=10)
    x[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"x contains 1 non-finite value.*index \(2, 1\)"):
        lasso.fit(x, y)
    x, y = _data(n=10)
    with pytest.raises(ValueError, match=r"same number of rows.*x.shape=\(10, 6\).*y.shape=\(8,\)"):
        lasso.fit(x, y[:8])
    with pytest.raises(ValueError, match=r"alpha must be >= 0"):
        lasso.fit(x, y, alpha=-1.0)


def test_lasso_init_takes_a_key_and_warm_start_converges_at_once():
    params = lasso.init(jax.random.key(0), 6, dtype=jnp.float64)
    assert params["w"].shape == (6,) and params["b"].shape == () and params["w"].dtype == jnp.float64
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        lasso.init(0, 6)
    x, y = _data()
    cold, cold_info = lasso.fit(jnp.asarray(x), jnp.asarray(y), alpha=0.1, tol=1e-12)
    warm, warm_info = lasso.fit(jnp.asarray(x), jnp.asarray(y), alpha=0.1, tol=1e-12, params=cold)
    assert bool(warm_info.converged) and int(warm_info.num_steps) < int(cold_info.num_steps)
    np.testing.assert_allclose(warm["w"], cold["w"], atol=1e-12)
    np.testing.assert_allclose(lasso.apply(warm, jnp.asarray(x)), x @ np.asarray(warm["w"]) + float(warm["b"]),
                               rtol=1e-12)
    with pytest.raises(TypeError):
        lasso.fit(x, y, 0.1)  # hyperparameters are keyword-only
