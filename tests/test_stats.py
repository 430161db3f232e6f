"""Normal distribution and its MLE: shapes first, then values against scipy / NumPy, derivatives against jax.grad."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import stats as S

TOL = {jnp.float64: 1e-10, jnp.float32: 1e-5}


def _sample(dtype, n=200, mu=1.5, sigma=0.8, seed=0, shape=()):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(mu, sigma, size=(n,) + shape), dtype)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.bfloat16])
def test_shapes_and_dtypes(dtype):
    x = jnp.zeros((5, 3), dtype)
    pdf = S.normal_pdf(x, mu=0.0, sigma=1.0)
    assert pdf.shape == (5, 3) and pdf.dtype == dtype
    assert S.normal_logpdf(x, mu=jnp.zeros(3, dtype), sigma=jnp.ones(3, dtype)).shape == (5, 3)
    assert S.log_likelihood(x, mu=0.0, sigma=1.0).shape == (3,)
    mu, sigma = S.mle_normal(_sample(jnp.float32, n=10, shape=(3,)).astype(dtype))
    assert mu.shape == sigma.shape == (3,) and mu.dtype == sigma.dtype == dtype
    assert np.all(np.isfinite(np.asarray(S.normal_logpdf(jnp.asarray([1e3, -1e3], dtype), mu=0.0, sigma=1.0), np.float32)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_density_matches_scipy(dtype):
    from scipy import stats as ss

    x = jnp.asarray(np.linspace(-6, 8, 57), dtype)
    tol = dict(rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(S.normal_pdf(x, mu=1.0, sigma=2.0), ss.norm.pdf(np.asarray(x, np.float64), 1.0, 2.0), **tol)
    np.testing.assert_allclose(S.normal_logpdf(x, mu=1.0, sigma=2.0), ss.norm.logpdf(np.asarray(x, np.float64), 1.0, 2.0), **tol)
    # far tail: the density underflows, the log-density does not
    np.testing.assert_allclose(S.normal_logpdf(jnp.asarray(60.0, dtype), mu=0.0, sigma=1.0), ss.norm.logpdf(60.0), rtol=TOL[dtype])
    np.testing.assert_allclose(S.normal_pdf(jnp.asarray(0.0, jnp.float64), mu=0.0, sigma=1.0), 1 / math.sqrt(2 * math.pi), rtol=1e-15)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_log_likelihood_is_the_notes_sum(dtype):
    x = _sample(dtype, n=50)
    mu, sigma = 1.2, 0.9
    xn = np.asarray(x, np.float64)
    n = len(xn)
    notes = -n / 2 * math.log(2 * math.pi) - n * math.log(sigma) - ((xn - mu) ** 2 / (2 * sigma**2)).sum()
    np.testing.assert_allclose(S.log_likelihood(x, mu=mu, sigma=sigma), notes, rtol=TOL[dtype])
    # and the product of densities (small n so the product does not underflow)
    np.testing.assert_allclose(
        S.log_likelihood(x[:5], mu=mu, sigma=sigma), np.log(np.prod(np.asarray(S.normal_pdf(x[:5], mu=mu, sigma=sigma), np.float64))), rtol=10 * TOL[dtype]
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_hand_partial_derivatives_equal_jax_grad(dtype):
    # Correct partials: ∂lnL/∂μ = (1/σ²) Σ(x_i − μ); ∂lnL/∂σ = −n/σ + (1/σ³) Σ(x_i − μ)².
    x = _sample(dtype, n=30)
    xn = np.asarray(x, np.float64)
    mu, sigma = jnp.asarray(1.0, dtype), jnp.asarray(0.7, dtype)
    ll = lambda m, s: S.log_likelihood(x, mu=m, sigma=s)  # noqa: E731
    g_mu, g_sigma = jax.grad(ll, argnums=(0, 1))(mu, sigma)
    m, s, n = float(mu), float(sigma), len(xn)
    np.testing.assert_allclose(g_mu, (xn - m).sum() / s**2, rtol=TOL[dtype] * 10)
    np.testing.assert_allclose(g_sigma, -n / s + ((xn - m) ** 2).sum() / s**3, rtol=TOL[dtype] * 10)
    # both vanish at the closed-form MLE
    mu_hat, sigma_hat = S.mle_normal(x)
    g = jax.grad(ll, argnums=(0, 1))(mu_hat, sigma_hat)
    np.testing.assert_allclose(np.asarray(g, np.float64), 0.0, atol=1e-3 if dtype == jnp.float32 else 1e-9)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_mle_normal_matches_numpy(dtype):
    x = _sample(dtype, n=40, shape=(2,))
    xn = np.asarray(x, np.float64)
    mu, sigma = S.mle_normal(x)
    np.testing.assert_allclose(mu, xn.mean(axis=0), rtol=TOL[dtype])
    np.testing.assert_allclose(sigma, xn.std(axis=0, ddof=0), rtol=TOL[dtype])
    _, sigma_unbiased = S.mle_normal(x, unbiased=True)
    np.testing.assert_allclose(sigma_unbiased, xn.std(axis=0, ddof=1), rtol=TOL[dtype])
    # hand values: x = (1, 2, 3, 4) → μ = 2.5, σ² = (2.25 + 0.25 + 0.25 + 2.25)/4 = 1.25
    mu, sigma = S.mle_normal(jnp.asarray([1.0, 2.0, 3.0, 4.0], dtype))
    assert float(mu) == 2.5
    np.testing.assert_allclose(sigma, math.sqrt(1.25), rtol=TOL[dtype])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_fit_normal_converges_to_the_closed_form(dtype):
    x = _sample(dtype, n=100, mu=1.5, sigma=0.8)
    (mu_fit, sigma_fit), info = S.fit_normal(x, learning_rate=0.2, max_steps=400)
    assert info.loss_history.shape == (400,) and info.loss_history.dtype == dtype
    assert bool(info.converged) and not bool(info.nonfinite)
    k = int(info.num_steps)
    assert 0 < k < 400
    mu, sigma = S.mle_normal(x)
    tol = 1e-5 if dtype == jnp.float32 else 1e-10
    np.testing.assert_allclose(mu_fit, mu, rtol=tol, atol=tol)
    np.testing.assert_allclose(sigma_fit, sigma, rtol=tol, atol=tol)
    nll = np.asarray(info.loss_history, np.float64)
    assert np.all(np.isfinite(nll[:k])) and np.all(np.isnan(nll[k:]))
    assert np.all(np.diff(nll[:k]) <= 1e-3 * np.abs(nll[1:k]))  # −ln L falls (up to rounding)
    # the history is −ln L before each step: the first entry is at the start (μ, σ) = (0, 1)
    np.testing.assert_allclose(nll[0], -float(S.log_likelihood(x, mu=0.0, sigma=1.0)), rtol=10 * TOL[dtype])
    # it is the MLE (1/n), not the notes' 1/(n − 1)
    _, sigma_unbiased = S.mle_normal(x, unbiased=True)
    assert abs(float(sigma_fit) - float(sigma_unbiased)) > 100 * tol
    # several independent columns at once
    cols = _sample(dtype, n=60, shape=(3,), seed=1)
    (_, sigma_cols), _ = S.fit_normal(cols, learning_rate=0.2, max_steps=400)
    np.testing.assert_allclose(sigma_cols, S.mle_normal(cols)[1], rtol=tol * 10)


def test_fit_normal_budget_warm_start_and_stop_at_nonfinite():
    x = _sample(jnp.float64, n=50)
    params, info = S.fit_normal(x, learning_rate=0.2, max_steps=5)
    assert int(info.num_steps) == 5 and not bool(info.converged)
    assert np.all(np.isfinite(np.asarray(info.loss_history)))
    # warm start from where the first fit stopped: the rest of the climb, converging
    warm, info_warm = S.fit_normal(x, learning_rate=0.2, max_steps=400, params=params)
    cold, info_cold = S.fit_normal(x, learning_rate=0.2, max_steps=400)
    assert bool(info_warm.converged) and int(info_warm.num_steps) < int(info_cold.num_steps)
    chex.assert_trees_all_close(warm, cold, rtol=1e-9)
    np.testing.assert_allclose(info_warm.loss_history[0], info.loss_history[4], rtol=0.1)
    # starting at the MLE: converged before any step
    _, at_mle = S.fit_normal(x, max_steps=10, params=S.mle_normal(x))
    assert bool(at_mle.converged) and int(at_mle.num_steps) == 0
    # a learning rate far too large: the climb overflows; the loop stops and keeps the last finite params
    (mu, sigma), bad = S.fit_normal(x * 1e3, learning_rate=1e6, max_steps=50)
    assert bool(bad.nonfinite) and not bool(bad.converged)
    assert np.isfinite(float(mu)) and np.isfinite(float(sigma))


def test_work_under_jit_and_vmap():
    x = _sample(jnp.float32, n=20, shape=(4,))
    mu, sigma = jax.jit(S.mle_normal)(x)
    np.testing.assert_allclose(jax.vmap(S.mle_normal, in_axes=1)(x)[1], sigma, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(S.log_likelihood)(x, mu=mu, sigma=sigma), S.log_likelihood(x, mu=mu, sigma=sigma), rtol=1e-6)


def test_bad_input():
    x = jnp.ones(5, jnp.float32)
    with pytest.raises(TypeError):
        S.normal_pdf(x, 0.0, 1.0)  # mu and sigma are keyword-only
    with pytest.raises(TypeError, match="sigma must be a real number"):
        S.normal_pdf(x, mu=0.0, sigma=None)
    with pytest.raises(ValueError, match=r"x, mu and sigma must broadcast together, got x\.shape=\(5,\), mu\.shape=\(3,\)"):
        S.normal_logpdf(x, mu=jnp.zeros(3), sigma=1.0)
    with pytest.raises(ValueError, match=r"at least 2 sample\(s\).*x\.shape=\(1,\)"):
        S.mle_normal(jnp.ones(1, jnp.float32), unbiased=True)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        S.fit_normal(x, learning_rate=-1.0)
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        S.fit_normal(x, learning_rate="0.1")
    with pytest.raises(TypeError, match="max_steps must be an integer"):
        S.fit_normal(x, max_steps=10.5)
    with pytest.raises(ValueError, match=r"params\[1\] \(sigma\) must be > 0"):
        S.fit_normal(x, params=(0.0, -1.0))
    # fit_normal is a host entry point: it checks the data's values (one reduction on the device) ...
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        S.fit_normal(jnp.asarray([1.0, jnp.nan], jnp.float32))
    # ... the densities do not: NaN and σ ≤ 0 flow through as NaN / -inf.
    assert np.isnan(float(S.normal_logpdf(jnp.float32(jnp.nan), mu=0.0, sigma=1.0)))
    assert np.isnan(float(S.normal_logpdf(jnp.float32(0.0), mu=0.0, sigma=-1.0)))


def test_static_errors_raise_under_an_outer_jit_and_vmap():
    with pytest.raises(ValueError, match="x, mu and sigma must broadcast together"):
        jax.jit(lambda a: S.normal_pdf(a, mu=jnp.zeros(3), sigma=1.0))(jnp.ones(5, jnp.float32))
    with pytest.raises(ValueError, match=r"x must hold a sample along axis 0, got x\.shape=\(\)"):
        jax.vmap(lambda a: S.log_likelihood(a, mu=0.0, sigma=1.0))(jnp.ones(5, jnp.float32))
    with pytest.raises(ValueError, match=r"at least 2 sample"):
        jax.jit(lambda a: S.mle_normal(a, unbiased=True))(jnp.ones((1, 3), jnp.float32))
    # mu and sigma are traced: new values reuse the compiled function
    if hasattr(S.normal_logpdf, "_cache_size"):
        x = jnp.ones(4, jnp.float32)
        S.normal_logpdf(x, mu=0.0, sigma=1.0)
        start = S.normal_logpdf._cache_size()
        for m in (0.5, 1.0, 2.0):
            S.normal_logpdf(x, mu=m, sigma=m)
        assert S.normal_logpdf._cache_size() == start
