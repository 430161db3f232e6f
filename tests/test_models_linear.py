"""Linear regression, Ridge and Lasso against numpy.linalg.lstsq, scikit-learn and the notes' update rules."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.models import linear_regression as linreg
from jaxmath.models import ridge

TOL = {jnp.float32: 1e-5, jnp.float64: 1e-10}


def _data(seed=0, n=80, d=4, dtype=np.float64, outputs=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=(d,) if outputs is None else (d, outputs))
    y = X @ w + 0.7 + 0.1 * rng.normal(size=(n,) if outputs is None else (n, outputs))
    return X.astype(dtype), y.astype(dtype)


# ---------------------------------------------------------------- the costume-price example (seed 000)


def _costumes():
    try:
        from jaxmath.datasets import costume_prices
    except ImportError:  # the notes' three legible points
        return (np.array([240.0, 480.0, 26.0], np.float32), np.array([6370.0, 8697.0, 2200.0], np.float32))
    return costume_prices()


def test_costume_prices_closed_form_matches_hand_least_squares():
    x, y = _costumes()
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    params = linreg.fit_closed_form(jnp.asarray(x64)[:, None], jnp.asarray(y64))
    assert params["w"].shape == (1,) and params["b"].shape == ()
    # Θ1 = cov(x, y) / var(x), Θ0 = ȳ − Θ1 x̄ (the textbook formulas for one feature).
    theta1 = np.sum((x64 - x64.mean()) * (y64 - y64.mean())) / np.sum((x64 - x64.mean()) ** 2)
    theta0 = y64.mean() - theta1 * x64.mean()
    np.testing.assert_allclose(params["w"][0], theta1, rtol=1e-10)
    np.testing.assert_allclose(params["b"], theta0, rtol=1e-10)


def test_one_gradient_step_is_the_notes_update_rule():
    x, y = _costumes()
    X = np.asarray(x, np.float64)[:, None] / 100.0  # hundreds of dollars, so α can be moderate
    y = np.asarray(y, np.float64)
    start = {"w": jnp.asarray([3.0]), "b": jnp.asarray(1.0)}
    alpha = 0.01
    params, info = linreg.fit(jnp.asarray(X), jnp.asarray(y), learning_rate=alpha, num_steps=1, params=start)
    f = X[:, 0] * 3.0 + 1.0
    N = len(y)
    theta0 = 1.0 - alpha / N * np.sum(f - y)
    theta1 = 3.0 - alpha / N * np.sum((f - y) * X[:, 0])
    np.testing.assert_allclose(params["b"], theta0, rtol=1e-12)
    np.testing.assert_allclose(params["w"][0], theta1, rtol=1e-12)
    np.testing.assert_allclose(info.loss_history[0], np.sum((f - y) ** 2) / (2 * N), rtol=1e-12)


def test_costume_gradient_descent_reaches_closed_form():
    x, y = _costumes()
    X = jnp.asarray(np.asarray(x, np.float64)[:, None] / 100.0)
    y = jnp.asarray(y, jnp.float64)
    params, info = linreg.fit(X, y, learning_rate=0.1, num_steps=5000)
    exact = linreg.fit_closed_form(X, y)
    np.testing.assert_allclose(params["w"], exact["w"], rtol=1e-6)
    np.testing.assert_allclose(params["b"], exact["b"], rtol=1e-6)
    history = np.asarray(info.loss_history)
    assert history.shape == (5000,) and np.all(np.diff(history) <= 1e-9)


# ---------------------------------------------------------------- closed form vs oracles


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("solver", ["lstsq", "normal"])
def test_closed_form_matches_numpy_lstsq_and_sklearn(dtype, solver):
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    X, y = _data()
    params = linreg.fit_closed_form(jnp.asarray(X, dtype), jnp.asarray(y, dtype), solver=solver)
    assert params["w"].shape == (4,) and params["w"].dtype == dtype
    ref = sklearn_lm.LinearRegression().fit(X, y)
    np.testing.assert_allclose(params["w"], ref.coef_, atol=TOL[dtype])
    np.testing.assert_allclose(params["b"], ref.intercept_, atol=TOL[dtype])
    no_b = linreg.fit_closed_form(jnp.asarray(X, dtype), jnp.asarray(y, dtype), fit_intercept=False, solver=solver)
    np.testing.assert_allclose(no_b["w"], np.linalg.lstsq(X, y, rcond=None)[0], atol=TOL[dtype])
    assert float(no_b["b"]) == 0.0


def test_closed_form_multi_output_matches_sklearn():
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    X, Y = _data(outputs=3)
    params = linreg.fit_closed_form(jnp.asarray(X), jnp.asarray(Y))
    assert params["w"].shape == (4, 3) and params["b"].shape == (3,)
    ref = sklearn_lm.LinearRegression().fit(X, Y)
    np.testing.assert_allclose(params["w"], ref.coef_.T, atol=1e-10)
    np.testing.assert_allclose(params["b"], ref.intercept_, atol=1e-10)
    np.testing.assert_allclose(linreg.predict(params, jnp.asarray(X)), ref.predict(X), atol=1e-10)


@pytest.mark.parametrize("solver", ["lstsq", "normal"])
def test_rank_deficient_X_gives_the_minimum_norm_solution(solver):
    X, y = _data(d=3)
    X = np.concatenate([X, X[:, :1] * 2.0], axis=1)  # column 3 = 2 × column 0: rank 3 of 4
    params = linreg.fit_closed_form(jnp.asarray(X), jnp.asarray(y), fit_intercept=False, solver=solver)
    ref = np.linalg.lstsq(X, y, rcond=None)[0]
    assert np.all(np.isfinite(np.asarray(params["w"])))
    np.testing.assert_allclose(params["w"], ref, atol=1e-8)


def test_closed_form_bfloat16_is_finite():
    X, y = _data()
    params = linreg.fit_closed_form(jnp.asarray(X, jnp.bfloat16), jnp.asarray(y, jnp.bfloat16))
    assert params["w"].dtype == jnp.bfloat16
    ref = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(params["w"], np.float32), ref[:4], atol=0.1)


# ---------------------------------------------------------------- gradient descent, SGD, vmap, bad input


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_gradient_descent_converges_to_lstsq(dtype):
    X, y = _data()
    params, info = linreg.fit(jnp.asarray(X, dtype), jnp.asarray(y, dtype), learning_rate=0.5, num_steps=500)
    ref = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    np.testing.assert_allclose(params["w"], ref[:4], atol=TOL[dtype] * 10)
    np.testing.assert_allclose(params["b"], ref[4], atol=TOL[dtype] * 10)
    assert info.loss_history.dtype == dtype


def test_gradient_descent_tol_stops_early_and_says_converged():
    X, y = _data()
    params, info = linreg.fit(jnp.asarray(X), jnp.asarray(y), learning_rate=0.5, num_steps=10_000, tol=1e-12)
    n = int(info.num_iterations)
    assert bool(info.converged) and n < 10_000
    assert np.all(np.isfinite(np.asarray(info.loss_history[:n]))) and np.all(np.isnan(np.asarray(info.loss_history[n:])))


def test_divergent_learning_rate_stops_and_keeps_last_finite_params():
    X, y = _data()
    X = X * 1e3
    with pytest.warns(RuntimeWarning, match="non-finite at iteration"):
        params, info = linreg.fit(jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32), learning_rate=10.0,
                                  num_steps=500)
    assert bool(info.nonfinite) and not bool(info.converged)
    assert int(info.num_iterations) < 500
    assert np.all(np.isfinite(np.asarray(params["w"])))
    last = int(info.num_iterations) - 1
    assert not np.isfinite(float(info.loss_history[last]))
    recomputed = linreg.loss(params, jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32))
    np.testing.assert_allclose(recomputed, info.loss_history[last - 1], rtol=1e-5)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_minibatch_sgd_with_jaxmath_optimizers(name):
    optim = pytest.importorskip("jaxmath.optim")
    X, y = _data(n=256)
    opt = optim.sgd(learning_rate=0.05, momentum=0.9) if name == "sgd" else optim.adam(learning_rate=0.05)
    params, info = linreg.fit_sgd(jnp.asarray(X), jnp.asarray(y), opt, key=jax.random.PRNGKey(0), batch_size=32,
                                  num_epochs=60)
    assert info.loss_history.shape == (60,)
    ref = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    np.testing.assert_allclose(params["w"], ref[:4], atol=0.02)
    np.testing.assert_allclose(params["b"], ref[4], atol=0.02)
    # The last epoch's objective is within noise of the least-squares optimum.
    best = float(linreg.loss({"w": jnp.asarray(ref[:4]), "b": jnp.asarray(ref[4])}, jnp.asarray(X), jnp.asarray(y)))
    assert float(info.loss_history[-1]) < best * 1.05


def test_vmap_fits_many_regressions_in_one_call():
    Xs, ys = zip(*[_data(seed=s, n=50) for s in range(5)])
    Xs, ys = jnp.asarray(np.stack(Xs)), jnp.asarray(np.stack(ys))
    closed = jax.vmap(linreg.fit_closed_form)(Xs, ys)
    normal = jax.jit(jax.vmap(lambda X, y: linreg.closed_form_core(X, y, solver="normal")))(Xs, ys)
    gd, info = jax.vmap(lambda X, y: linreg.fit(X, y, learning_rate=0.5, num_steps=400))(Xs, ys)
    assert closed["w"].shape == (5, 4) and info.loss_history.shape == (5, 400)
    for i in range(5):
        ref = np.linalg.lstsq(np.c_[np.asarray(Xs[i]), np.ones(50)], np.asarray(ys[i]), rcond=None)[0]
        np.testing.assert_allclose(closed["w"][i], ref[:4], atol=1e-10)
        np.testing.assert_allclose(normal["w"][i], ref[:4], atol=1e-9)
        np.testing.assert_allclose(gd["w"][i], ref[:4], atol=1e-8)


@pytest.mark.parametrize("fit", [linreg.fit_closed_form, linreg.fit, ridge.fit_closed_form, ridge.fit])
def test_bad_input_is_refused_before_compiling(fit):
    X, y = _data(n=10)
    Xnan = X.copy()
    Xnan[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value.*index \(3, 2\)"):
        fit(Xnan, y)
    yinf = y.copy()
    yinf[7] = np.inf
    with pytest.raises(ValueError, match=r"y contains 1 non-finite value.*index \(7,\)"):
        fit(X, yinf)
    with pytest.raises(ValueError, match=r"same number of rows.*X.shape=\(10, 4\).*y.shape=\(9,\)"):
        fit(X, y[:9])
    with pytest.raises(ValueError, match=r"X must be 2-dimensional"):
        fit(X[:, 0], y)


# ---------------------------------------------------------------- Ridge


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("solver", ["lstsq", "cholesky"])
def test_ridge_closed_form_matches_sklearn(dtype, solver):
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    X, y = _data()
    for alpha in (0.1, 10.0):
        params = ridge.fit_closed_form(jnp.asarray(X, dtype), jnp.asarray(y, dtype), alpha=alpha, solver=solver)
        ref = sklearn_lm.Ridge(alpha=alpha).fit(X, y)
        np.testing.assert_allclose(params["w"], ref.coef_, atol=TOL[dtype])
        np.testing.assert_allclose(params["b"], ref.intercept_, atol=TOL[dtype])


def test_ridge_gradient_descent_reaches_closed_form_and_loss_is_sklearns_over_2n():
    X, y = _data()
    X, y = jnp.asarray(X), jnp.asarray(y)
    exact = ridge.fit_closed_form(X, y, alpha=5.0)
    params, info = ridge.fit(X, y, alpha=5.0, learning_rate=0.5, num_steps=800)
    np.testing.assert_allclose(params["w"], exact["w"], atol=1e-10)
    r = np.asarray(X) @ np.asarray(exact["w"]) + float(exact["b"]) - np.asarray(y)
    sk_objective = np.sum(r**2) + 5.0 * np.sum(np.asarray(exact["w"]) ** 2)
    np.testing.assert_allclose(ridge.loss(exact, X, y, alpha=5.0), sk_objective / (2 * len(r)), rtol=1e-12)


def test_ridge_vmap_over_alpha_shrinks_coefficients():
    X, y = _data()
    alphas = jnp.asarray([0.0, 1.0, 10.0, 100.0, 1000.0])
    path = jax.vmap(lambda a: ridge.fit_closed_form(jnp.asarray(X), jnp.asarray(y), alpha=a))(alphas)
    assert path["w"].shape == (5, 4)
    norms = np.linalg.norm(np.asarray(path["w"]), axis=1)
    assert np.all(np.diff(norms) < 0)
    np.testing.assert_allclose(path["w"][0], np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0][:4],
                               atol=1e-10)
