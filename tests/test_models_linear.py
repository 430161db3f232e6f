"""Linear regression and Ridge against numpy.linalg.lstsq, scikit-learn and the notes' update rules."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.datasets import costume_prices
from jaxmath.models import _normal_equations as ne
from jaxmath.models import linear_regression as linreg
from jaxmath.models import ridge

TOL = {jnp.float32: 1e-5, jnp.float64: 1e-10}
KEY = jax.random.key(0)


def _data(seed=0, n=80, d=4, dtype=np.float64, outputs=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.normal(size=(d,) if outputs is None else (d, outputs))
    y = x @ w + 0.7 + 0.1 * rng.normal(size=(n,) if outputs is None else (n, outputs))
    return x.astype(dtype), y.astype(dtype)


def _lstsq_with_intercept(x, y):
    coef = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]
    return coef[:-1], coef[-1]


# ---------------------------------------------------------------- init, apply, the API shape


def test_init_takes_a_key_first_and_refuses_an_int():
    params = linreg.init(KEY, 3)
    assert params["w"].shape == (3,) and params["b"].shape == () and params["w"].dtype == jnp.float32
    multi = linreg.init(KEY, 3, num_outputs=2, dtype=jnp.float64)
    assert multi["w"].shape == (3, 2) and multi["b"].shape == (2,) and multi["w"].dtype == jnp.float64
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        linreg.init(0, 3)


def test_apply_is_x_w_plus_b_and_checks_shapes_at_trace_time():
    x, _ = _data(n=5, d=3)
    params = {"w": jnp.asarray([1.0, -2.0, 0.5]), "b": jnp.asarray(0.25)}
    out = linreg.apply(params, jnp.asarray(x))
    assert out.shape == (5,)
    np.testing.assert_allclose(out, x @ np.array([1.0, -2.0, 0.5]) + 0.25, rtol=1e-12)
    with pytest.raises(ValueError, match=r"x must have 3 features.*x.shape=\(5, 2\)"):
        jax.jit(linreg.apply)(params, jnp.asarray(x[:, :2]))


# ---------------------------------------------------------------- the costume-price example (seed 000)


def test_costume_fit_with_defaults_matches_lstsq_and_converges():
    """The notes' example in raw units (dollars, issues) with every default: it must just work."""
    x, y = costume_prices()
    params, info = linreg.fit(x[:, None], y)
    assert params["w"].shape == (1,) and params["w"].dtype == jnp.float32
    w_ref, b_ref = _lstsq_with_intercept(x[:, None].astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(params["w"], w_ref, rtol=1e-5)
    np.testing.assert_allclose(params["b"], b_ref, rtol=1e-5)
    assert bool(info.converged) and not bool(info.nonfinite)
    assert int(info.num_steps) <= 10
    closed, _ = linreg.fit_closed_form(x[:, None], y)
    chex.assert_trees_all_close(params, closed, rtol=1e-5)


def test_costume_fit_float64_reaches_closed_form_tightly():
    x, y = costume_prices()
    x64, y64 = np.asarray(x, np.float64)[:, None], np.asarray(y, np.float64)
    params, info = linreg.fit(x64, y64)
    # Θ1 = cov(x, y) / var(x), Θ0 = ȳ − Θ1 x̄ (the textbook formulas for one feature).
    xs = x64[:, 0]
    theta1 = np.sum((xs - xs.mean()) * (y64 - y64.mean())) / np.sum((xs - xs.mean()) ** 2)
    np.testing.assert_allclose(params["w"][0], theta1, rtol=1e-10)
    np.testing.assert_allclose(params["b"], y64.mean() - theta1 * xs.mean(), rtol=1e-10)
    assert bool(info.converged)
    # The recorded objective is Q in raw units (the descent's coordinates change nothing about Q).
    n = int(info.num_steps)
    np.testing.assert_allclose(info.loss_history[n], linreg.loss(params, x64, y64), rtol=1e-10)


def test_costume_raw_gradient_descent_at_the_old_default_diverges_and_stops():
    """The notes' raw rule with α = 0.01 on dollars blows up; the loop says so and keeps finite params."""
    x, y = costume_prices()
    with pytest.warns(RuntimeWarning, match="non-finite"):
        params, info = linreg.fit(x[:, None], y, learning_rate=0.01, standardize=False)
    assert bool(info.nonfinite) and not bool(info.converged)
    assert np.all(np.isfinite(np.asarray(params["w"])))
    bad = int(np.argmax(~np.isfinite(np.asarray(info.loss_history))))
    assert int(info.num_steps) == bad - 1
    np.testing.assert_allclose(linreg.loss(params, x[:, None], y), info.loss_history[bad - 1], rtol=1e-5)


def test_costume_closed_form_matches_hand_least_squares():
    x, y = costume_prices()
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    params, info = linreg.fit_closed_form(x64[:, None], y64)
    assert params["w"].shape == (1,) and params["b"].shape == ()
    assert bool(info.converged) and int(info.num_steps) == 1 and info.loss_history.shape == (1,)
    theta1 = np.sum((x64 - x64.mean()) * (y64 - y64.mean())) / np.sum((x64 - x64.mean()) ** 2)
    theta0 = y64.mean() - theta1 * x64.mean()
    np.testing.assert_allclose(params["w"][0], theta1, rtol=1e-10)
    np.testing.assert_allclose(params["b"], theta0, rtol=1e-10)
    r = theta1 * x64 + theta0 - y64
    np.testing.assert_allclose(info.loss_history[0], np.sum(r**2) / (2 * len(r)), rtol=1e-10)


def test_one_raw_gradient_step_is_the_notes_update_rule():
    x, y = costume_prices()
    x = np.asarray(x, np.float64)[:, None] / 100.0  # hundreds of dollars, so α can be moderate
    y = np.asarray(y, np.float64)
    start = {"w": jnp.asarray([3.0]), "b": jnp.asarray(1.0)}
    alpha = 0.01
    params, info = linreg.fit(x, y, learning_rate=alpha, max_steps=1, standardize=False, params=start)
    f = x[:, 0] * 3.0 + 1.0
    N = len(y)
    theta0 = 1.0 - alpha / N * np.sum(f - y)
    theta1 = 3.0 - alpha / N * np.sum((f - y) * x[:, 0])
    np.testing.assert_allclose(params["b"], theta0, rtol=1e-12)
    np.testing.assert_allclose(params["w"][0], theta1, rtol=1e-12)
    assert int(info.num_steps) == 1 and not bool(info.converged)
    np.testing.assert_allclose(info.loss_history[0], np.sum((f - y) ** 2) / (2 * N), rtol=1e-12)


def test_one_standardised_step_is_the_rule_on_standardised_data_mapped_back():
    x, y = _data(n=30, d=2)
    alpha = 0.3
    params, _ = linreg.fit(x, y, learning_rate=alpha, max_steps=1, tol=0.0)
    mu, s, ybar = x.mean(0), x.std(0), y.mean()
    xs, yc = (x - mu) / s, y - ybar
    # From zero raw params: w̃ = 0, b̃ = −ȳ. One step of the notes' rule on (xs, yc):
    wt, bt = np.zeros(2), -ybar
    r = xs @ wt + bt - yc
    wt, bt = wt - alpha * xs.T @ r / len(y), bt - alpha * r.mean()
    w = wt / s
    np.testing.assert_allclose(params["w"], w, rtol=1e-12)
    np.testing.assert_allclose(params["b"], ybar + bt - mu @ w, rtol=1e-12)


# ---------------------------------------------------------------- closed form vs oracles


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("solver", ["lstsq", "normal"])
def test_closed_form_matches_numpy_lstsq_and_sklearn(dtype, solver):
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    x, y = _data()
    params, info = linreg.fit_closed_form(jnp.asarray(x, dtype), jnp.asarray(y, dtype), solver=solver)
    assert params["w"].shape == (4,) and params["w"].dtype == dtype and info.loss_history.dtype == dtype
    ref = sklearn_lm.LinearRegression().fit(x, y)
    np.testing.assert_allclose(params["w"], ref.coef_, atol=TOL[dtype])
    np.testing.assert_allclose(params["b"], ref.intercept_, atol=TOL[dtype])
    no_b, _ = linreg.fit_closed_form(jnp.asarray(x, dtype), jnp.asarray(y, dtype), fit_intercept=False,
                                     solver=solver)
    np.testing.assert_allclose(no_b["w"], np.linalg.lstsq(x, y, rcond=None)[0], atol=TOL[dtype])
    assert float(no_b["b"]) == 0.0


def test_closed_form_multi_output_matches_sklearn():
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    x, y = _data(outputs=3)
    params, _ = linreg.fit_closed_form(jnp.asarray(x), jnp.asarray(y))
    assert params["w"].shape == (4, 3) and params["b"].shape == (3,)
    ref = sklearn_lm.LinearRegression().fit(x, y)
    np.testing.assert_allclose(params["w"], ref.coef_.T, atol=1e-10)
    np.testing.assert_allclose(params["b"], ref.intercept_, atol=1e-10)
    np.testing.assert_allclose(linreg.apply(params, jnp.asarray(x)), ref.predict(x), atol=1e-10)


@pytest.mark.parametrize("solver", ["lstsq", "normal"])
def test_rank_deficient_x_gives_the_minimum_norm_solution(solver):
    x, y = _data(d=3)
    x = np.concatenate([x, x[:, :1] * 2.0], axis=1)  # column 3 = 2 × column 0: rank 3 of 4
    params, _ = linreg.fit_closed_form(jnp.asarray(x), jnp.asarray(y), fit_intercept=False, solver=solver)
    ref = np.linalg.lstsq(x, y, rcond=None)[0]
    assert np.all(np.isfinite(np.asarray(params["w"])))
    np.testing.assert_allclose(params["w"], ref, atol=1e-8)


def test_closed_form_bfloat16_is_finite():
    x, y = _data()
    params, _ = linreg.fit_closed_form(jnp.asarray(x, jnp.bfloat16), jnp.asarray(y, jnp.bfloat16))
    assert params["w"].dtype == jnp.bfloat16
    w_ref, _ = _lstsq_with_intercept(x, y)
    np.testing.assert_allclose(np.asarray(params["w"], np.float32), w_ref, atol=0.1)


# ---------------------------------------------------------------- the certified Cholesky vs the plain formula


def _gram_pair(seed, d=5, singular=False):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3 * d, d))
    if singular:
        a[:, -1] = a[:, 0] - a[:, 1]  # rank d − 1: the certificate must fail
    return a.T @ a, a.T @ rng.normal(size=3 * d)


@pytest.mark.parametrize("singular", [False, True])
def test_gram_solve_reaches_cholesky_and_eigh_and_matches_the_reference(singular):
    G, rhs = _gram_pair(0, singular=singular)
    _, certified = ne._cholesky_solve(jnp.asarray(G), jnp.asarray(rhs))
    assert bool(certified) is (not singular)  # the input reaches the path it is meant to test
    tuned = ne._gram_solve(jnp.asarray(G), jnp.asarray(rhs))
    reference = ne._gram_solve_reference(jnp.asarray(G), jnp.asarray(rhs))
    chex.assert_trees_all_close(tuned, reference, atol=1e-9)
    np.testing.assert_allclose(reference, np.linalg.pinv(G) @ rhs, atol=1e-8)  # NumPy's minimum-norm answer


def test_gram_solve_under_vmap_matches_the_reference_for_all_certified_and_mixed_batches():
    pairs = [_gram_pair(s) for s in range(4)]
    Gs = jnp.asarray(np.stack([p[0] for p in pairs]))
    rs = jnp.asarray(np.stack([p[1] for p in pairs]))
    batched = jax.jit(jax.vmap(ne._gram_solve))
    reference = jax.vmap(ne._gram_solve_reference)
    ok = jax.vmap(ne._cholesky_solve)(Gs, rs)[1]
    assert bool(jnp.all(ok))  # every member takes the Cholesky path
    chex.assert_trees_all_close(batched(Gs, rs), reference(Gs, rs), atol=1e-9)
    G_bad, r_bad = _gram_pair(9, singular=True)
    mixed_G, mixed_r = Gs.at[2].set(G_bad), rs.at[2].set(r_bad)
    ok = jax.vmap(ne._cholesky_solve)(mixed_G, mixed_r)[1]
    assert not bool(ok[2]) and bool(ok[0])  # the batch now needs the eigh fallback
    chex.assert_trees_all_close(batched(mixed_G, mixed_r), reference(mixed_G, mixed_r), atol=1e-9)
    np.testing.assert_allclose(batched(mixed_G, mixed_r)[2], np.linalg.pinv(G_bad) @ r_bad, atol=1e-8)


def test_gram_solve_gradient_is_the_reference_gradient():
    G, rhs = _gram_pair(3)
    f = lambda solve: lambda r: jnp.sum(solve(jnp.asarray(G), r) ** 2)  # noqa: E731
    chex.assert_trees_all_close(jax.grad(f(ne._gram_solve))(jnp.asarray(rhs)),
                                jax.grad(f(ne._gram_solve_reference))(jnp.asarray(rhs)), atol=1e-9)


# ---------------------------------------------------------------- gradient descent, SGD, vmap, bad input


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_gradient_descent_converges_to_lstsq(dtype):
    x, y = _data()
    params, info = linreg.fit(jnp.asarray(x, dtype), jnp.asarray(y, dtype))
    w_ref, b_ref = _lstsq_with_intercept(x, y)
    np.testing.assert_allclose(params["w"], w_ref, atol=TOL[dtype] * 10)
    np.testing.assert_allclose(params["b"], b_ref, atol=TOL[dtype] * 10)
    assert info.loss_history.shape == (1000,) and info.loss_history.dtype == dtype
    assert bool(info.converged)
    n = int(info.num_steps)
    history = np.asarray(info.loss_history)
    assert np.all(np.isfinite(history[: n + 1])) and np.all(np.isnan(history[n + 1:]))
    assert np.all(np.diff(history[: n + 1]) <= 1e-12 * history[0])


def test_badly_scaled_features_converge_with_defaults():
    """Columns in units a million apart: raw descent could not pick one step; standardised descent can."""
    x, y = _data(n=60, d=3)
    x = x * np.array([1e-3, 1.0, 1e3]) + np.array([5.0, -2.0, 1e4])
    params, info = linreg.fit(x, y)
    w_ref, b_ref = _lstsq_with_intercept(x, y)
    assert bool(info.converged)
    np.testing.assert_allclose(params["w"], w_ref, rtol=1e-8)
    np.testing.assert_allclose(params["b"], b_ref, rtol=1e-8)


def test_multi_output_and_no_intercept_gradient_descent():
    x, y = _data(outputs=2)
    params, info = linreg.fit(x, y)
    assert params["w"].shape == (4, 2) and params["b"].shape == (2,) and bool(info.converged)
    ref = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]
    np.testing.assert_allclose(params["w"], ref[:4], atol=1e-9)
    no_b, info = linreg.fit(x, y[:, 0], fit_intercept=False)
    np.testing.assert_allclose(no_b["w"], np.linalg.lstsq(x, y[:, 0], rcond=None)[0], atol=1e-9)
    assert float(no_b["b"]) == 0.0 and bool(info.converged)


def test_warm_start_at_the_solution_converges_without_a_step():
    x, y = _data()
    exact, _ = linreg.fit_closed_form(x, y)
    params, info = linreg.fit(x, y, params=exact)
    assert bool(info.converged) and int(info.num_steps) == 0
    chex.assert_trees_all_close(params, exact, atol=1e-12)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_minibatch_sgd_with_jaxmath_optimizers(name):
    optim = pytest.importorskip("jaxmath.optim")
    x, y = _data(n=256)
    opt = optim.sgd(learning_rate=0.05, momentum=0.9) if name == "sgd" else optim.adam(learning_rate=0.05)
    params, info = linreg.fit_sgd(jnp.asarray(x), jnp.asarray(y), optimizer=opt, key=jax.random.key(0),
                                  batch_size=32, num_epochs=60)
    assert info.loss_history.shape == (60,) and int(info.num_steps) == 60 * 8
    w_ref, b_ref = _lstsq_with_intercept(x, y)
    np.testing.assert_allclose(params["w"], w_ref, atol=0.02)
    np.testing.assert_allclose(params["b"], b_ref, atol=0.02)
    # The last epoch's objective is within noise of the least-squares optimum.
    best = float(linreg.loss({"w": jnp.asarray(w_ref), "b": jnp.asarray(b_ref)}, jnp.asarray(x), jnp.asarray(y)))
    assert float(info.loss_history[-1]) < best * 1.05


def test_vmap_fits_many_regressions_in_one_call():
    xs, ys = zip(*[_data(seed=s, n=50) for s in range(5)])
    xs, ys = jnp.asarray(np.stack(xs)), jnp.asarray(np.stack(ys))
    closed, closed_info = jax.vmap(linreg.fit_closed_form)(xs, ys)
    normal, _ = jax.jit(jax.vmap(lambda x, y: linreg.fit_closed_form(x, y, solver="normal")))(xs, ys)
    gd, info = jax.vmap(lambda x, y: linreg.fit(x, y, max_steps=400))(xs, ys)
    assert closed["w"].shape == (5, 4) and closed_info.loss_history.shape == (5, 1)
    assert info.loss_history.shape == (5, 400) and info.converged.shape == (5,)
    assert bool(jnp.all(info.converged))
    for i in range(5):
        w_ref, _ = _lstsq_with_intercept(np.asarray(xs[i]), np.asarray(ys[i]))
        np.testing.assert_allclose(closed["w"][i], w_ref, atol=1e-10)
        np.testing.assert_allclose(normal["w"][i], w_ref, atol=1e-9)
        np.testing.assert_allclose(gd["w"][i], w_ref, atol=1e-9)


@pytest.mark.parametrize("fit", [linreg.fit_closed_form, linreg.fit, ridge.fit_closed_form, ridge.fit])
def test_bad_input_is_refused_before_compiling(fit):
    x, y = _data(n=10)
    xnan = x.copy()
    xnan[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"x contains 1 non-finite value.*index \(3, 2\)"):
        fit(xnan, y)
    yinf = y.copy()
    yinf[7] = np.inf
    with pytest.raises(ValueError, match=r"y contains 1 non-finite value.*index \(7,\)"):
        fit(x, yinf)
    with pytest.raises(ValueError, match=r"same number of rows.*x.shape=\(10, 4\).*y.shape=\(9,\)"):
        fit(x, y[:9])
    with pytest.raises(ValueError, match=r"x must be 2-dimensional"):
        fit(x[:, 0], y)
    with pytest.raises(TypeError):
        fit(x, y, 0.1)  # hyperparameters are keyword-only


# ---------------------------------------------------------------- Ridge


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("solver", ["lstsq", "cholesky"])
def test_ridge_closed_form_matches_sklearn(dtype, solver):
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    x, y = _data()
    for alpha in (0.1, 10.0):
        params, info = ridge.fit_closed_form(jnp.asarray(x, dtype), jnp.asarray(y, dtype), alpha=alpha,
                                             solver=solver)
        ref = sklearn_lm.Ridge(alpha=alpha).fit(x, y)
        np.testing.assert_allclose(params["w"], ref.coef_, atol=TOL[dtype])
        np.testing.assert_allclose(params["b"], ref.intercept_, atol=TOL[dtype])
        assert bool(info.converged) and info.loss_history.shape == (1,)


def test_ridge_gradient_descent_reaches_closed_form_and_loss_is_sklearns_over_2n():
    x, y = _data()
    x, y = jnp.asarray(x), jnp.asarray(y)
    exact, _ = ridge.fit_closed_form(x, y, alpha=5.0)
    params, info = ridge.fit(x, y, alpha=5.0)
    assert bool(info.converged)
    chex.assert_trees_all_close(params, exact, atol=1e-10)
    r = np.asarray(x) @ np.asarray(exact["w"]) + float(exact["b"]) - np.asarray(y)
    sk_objective = np.sum(r**2) + 5.0 * np.sum(np.asarray(exact["w"]) ** 2)
    np.testing.assert_allclose(ridge.loss(exact, x, y, alpha=5.0), sk_objective / (2 * len(r)), rtol=1e-12)


def test_ridge_standardised_descent_penalises_raw_unit_weights():
    """Features in very different units: the answer must still be sklearn's Ridge(alpha) on the raw data."""
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    x, y = _data(n=60, d=3)
    x = x * np.array([0.01, 1.0, 100.0]) + 3.0
    for alpha in (0.5, 50.0):
        params, info = ridge.fit(x, y, alpha=alpha, max_steps=5000)
        ref = sklearn_lm.Ridge(alpha=alpha).fit(x, y)
        assert bool(info.converged)
        np.testing.assert_allclose(params["w"], ref.coef_, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(params["b"], ref.intercept_, rtol=1e-8)
        n = int(info.num_steps)
        np.testing.assert_allclose(info.loss_history[n], ridge.loss(params, x, y, alpha=alpha), rtol=1e-10)


def test_ridge_vmap_over_alpha_shrinks_coefficients():
    x, y = _data()
    alphas = jnp.asarray([0.0, 1.0, 10.0, 100.0, 1000.0])
    path, _ = jax.vmap(lambda a: ridge.fit_closed_form(jnp.asarray(x), jnp.asarray(y), alpha=a))(alphas)
    gd, info = jax.vmap(lambda a: ridge.fit(jnp.asarray(x), jnp.asarray(y), alpha=a))(alphas)
    assert path["w"].shape == (5, 4) and info.num_steps.shape == (5,)
    norms = np.linalg.norm(np.asarray(path["w"]), axis=1)
    assert np.all(np.diff(norms) < 0)
    np.testing.assert_allclose(path["w"][0], _lstsq_with_intercept(x, y)[0], atol=1e-10)
    chex.assert_trees_all_close(gd, path, atol=1e-9)
