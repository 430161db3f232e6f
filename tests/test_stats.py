"""Normal distribution and its MLE: shapes first, then values against scipy / NumPy, derivatives against jax.grad."""

import math

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
    assert S.normal_pdf(x).shape == (5, 3) and S.normal_pdf(x).dtype == dtype
    assert S.normal_logpdf(x, jnp.zeros(3, dtype), jnp.ones(3, dtype)).shape == (5, 3)
    assert S.log_likelihood(x, 0.0, 1.0).shape == (3,)
    mu, sigma = S.mle_normal(_sample(jnp.float32, n=10, shape=(3,)).astype(dtype))
    assert mu.shape == sigma.shape == (3,) and mu.dtype == sigma.dtype == dtype
    assert np.all(np.isfinite(np.asarray(S.normal_logpdf(jnp.asarray([1e3, -1e3], dtype)), np.float32)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_density_matches_scipy(dtype):
    from scipy import stats as ss

    x = jnp.asarray(np.linspace(-6, 8, 57), dtype)
    tol = dict(rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(S.normal_pdf(x, 1.0, 2.0), ss.norm.pdf(np.asarray(x, np.float64), 1.0, 2.0), **tol)
    np.testing.assert_allclose(S.normal_logpdf(x, 1.0, 2.0), ss.norm.logpdf(np.asarray(x, np.float64), 1.0, 2.0), **tol)
    # far tail: the density underflows, the log-density does not
    np.testing.assert_allclose(S.normal_logpdf(jnp.asarray(60.0, dtype)), ss.norm.logpdf(60.0), rtol=TOL[dtype])
    np.testing.assert_allclose(S.normal_pdf(jnp.asarray(0.0, jnp.float64)), 1 / math.sqrt(2 * math.pi), rtol=1e-15)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_log_likelihood_is_the_notes_sum(dtype):
    x = _sample(dtype, n=50)
    mu, sigma = 1.2, 0.9
    xn = np.asarray(x, np.float64)
    n = len(xn)
    notes = -n / 2 * math.log(2 * math.pi) - n * math.log(sigma) - ((xn - mu) ** 2 / (2 * sigma**2)).sum()
    np.testing.assert_allclose(S.log_likelihood(x, mu, sigma), notes, rtol=TOL[dtype])
    # and the product of densities (small n so the product does not underflow)
    np.testing.assert_allclose(
        S.log_likelihood(x[:5], mu, sigma), np.log(np.prod(np.asarray(S.normal_pdf(x[:5], mu, sigma), np.float64))), rtol=10 * TOL[dtype]
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_hand_partial_derivatives_equal_jax_grad(dtype):
    # Correct partials: ∂lnL/∂μ = (1/σ²) Σ(x_i − μ); ∂lnL/∂σ = −n/σ + (1/σ³) Σ(x_i − μ)².
    x = _sample(dtype, n=30)
    xn = np.asarray(x, np.float64)
    mu, sigma = jnp.asarray(1.0, dtype), jnp.asarray(0.7, dtype)
    g_mu, g_sigma = jax.grad(S.log_likelihood, argnums=(1, 2))(x, mu, sigma)
    m, s, n = float(mu), float(sigma), len(xn)
    np.testing.assert_allclose(g_mu, (xn - m).sum() / s**2, rtol=TOL[dtype] * 10)
    np.testing.assert_allclose(g_sigma, -n / s + ((xn - m) ** 2).sum() / s**3, rtol=TOL[dtype] * 10)
    # both vanish at the closed-form MLE
    mu_hat, sigma_hat = S.mle_normal(x)
    g = jax.grad(S.log_likelihood, argnums=(1, 2))(x, mu_hat, sigma_hat)
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
def test_gradient_ascent_converges_to_the_closed_form(dtype):
    x = _sample(dtype, n=100, mu=1.5, sigma=0.8)
    fit = S.fit_normal_gradient_ascent(x, learning_rate=0.2, num_steps=400)
    assert fit.log_likelihoods.shape == (400,)
    mu, sigma = S.mle_normal(x)
    tol = 1e-5 if dtype == jnp.float32 else 1e-10
    np.testing.assert_allclose(fit.mu, mu, rtol=tol, atol=tol)
    np.testing.assert_allclose(fit.sigma, sigma, rtol=tol, atol=tol)
    ll = np.asarray(fit.log_likelihoods, np.float64)
    assert np.all(np.diff(ll) >= -1e-3 * np.abs(ll[1:]))  # climbs (up to rounding)
    assert ll[-1] > ll[0]
    # it is the MLE (1/n), not the notes' 1/(n − 1)
    _, sigma_unbiased = S.mle_normal(x, unbiased=True)
    assert abs(float(fit.sigma) - float(sigma_unbiased)) > 100 * tol
    # several independent columns at once
    cols = _sample(dtype, n=60, shape=(3,), seed=1)
    fit = S.fit_normal_gradient_ascent(cols, learning_rate=0.2, num_steps=400)
    np.testing.assert_allclose(fit.sigma, S.mle_normal(cols)[1], rtol=tol * 10)


def test_work_under_jit_and_vmap():
    x = _sample(jnp.float32, n=20, shape=(4,))
    mu, sigma = jax.jit(S.mle_normal)(x)
    np.testing.assert_allclose(jax.vmap(S.mle_normal, in_axes=1)(x)[1], sigma, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(S.log_likelihood)(x, mu, sigma), S.log_likelihood(x, mu, sigma), rtol=1e-6)


def test_bad_input():
    x = jnp.ones(5, jnp.float32)
    with pytest.raises(ValueError, match="sigma must be > 0, got sigma=0"):
        S.normal_pdf(x, 0.0, 0)
    with pytest.raises(ValueError, match=r"x, mu and sigma must broadcast together, got x\.shape=\(5,\), mu\.shape=\(3,\)"):
        S.normal_logpdf(x, jnp.zeros(3), 1.0)
    with pytest.raises(ValueError, match=r"at least 2 sample\(s\).*x\.shape=\(1,\)"):
        S.mle_normal(jnp.ones(1, jnp.float32), unbiased=True)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        S.fit_normal_gradient_ascent(x, learning_rate=-1.0)
    with pytest.raises(TypeError, match="num_steps must be an integer"):
        S.fit_normal_gradient_ascent(x, num_steps=10.5)
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        S.fit_normal_gradient_ascent(jnp.asarray([1.0, jnp.nan], jnp.float32))
