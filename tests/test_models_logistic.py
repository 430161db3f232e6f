"""Logistic regression (binary and multinomial, L2/L1) against scikit-learn's LogisticRegression, the notes'
gradient (ŷ − t) x and jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.models import logistic_regression as logreg


def _binary(seed=0, n=300, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    t = (X @ np.array([1.5, -1.0, 0.5, 0.0]) + 0.3 + rng.normal(size=n) > 0).astype(np.int32)
    return X.astype(dtype), t


def _multiclass(seed=1, n=300, k=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    W = rng.normal(size=(4, k))
    labels = np.argmax(X @ W + rng.gumbel(size=(n, k)), axis=1).astype(np.int32)
    return X.astype(dtype), labels


def _sklearn(C, **kw):
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    return sklearn_lm.LogisticRegression(C=C, tol=1e-12, max_iter=10_000, **kw)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("C", [0.1, 1.0])
def test_binary_l2_matches_sklearn_same_C(dtype, C):
    X, t = _binary()
    ref = _sklearn(C).fit(X, t)
    params, info = logreg.fit(jnp.asarray(X, dtype), jnp.asarray(t), penalty="l2", alpha=1.0 / (C * len(t)))
    assert params["w"].shape == (4,) and params["b"].shape == () and params["w"].dtype == dtype
    assert bool(info.converged) and int(info.num_iterations) < 20
    np.testing.assert_allclose(params["w"], ref.coef_[0], atol=1e-3)
    np.testing.assert_allclose(params["b"], ref.intercept_[0], atol=1e-3)
    proba = logreg.predict_proba(params, jnp.asarray(X, dtype))
    assert proba.shape == (300, 2)
    np.testing.assert_allclose(np.asarray(proba).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(proba, ref.predict_proba(X), atol=1e-4)
    np.testing.assert_array_equal(logreg.predict(params, jnp.asarray(X, dtype)), ref.predict(X))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_multinomial_l2_matches_sklearn_and_probabilities_sum_to_one(dtype):
    X, labels = _multiclass()
    C = 0.5
    ref = _sklearn(C).fit(X, labels)
    params, info = logreg.fit(jnp.asarray(X, dtype), jnp.asarray(labels), multinomial=True,
                              alpha=1.0 / (C * len(labels)))
    assert params["w"].shape == (4, 3) and params["b"].shape == (3,)
    np.testing.assert_allclose(params["w"], ref.coef_.T, atol=1e-3)
    np.testing.assert_allclose(params["b"], ref.intercept_, atol=1e-3)
    proba = logreg.predict_proba(params, jnp.asarray(X, dtype))
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(np.asarray(proba, np.float64).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(proba, ref.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize("multinomial, dtype", [(False, jnp.float32), (True, jnp.float64)])
def test_lbfgs_matches_sklearn(multinomial, dtype):
    X, labels = _multiclass() if multinomial else _binary()
    C = 0.5
    ref = _sklearn(C).fit(X, labels)
    params, info = logreg.fit(jnp.asarray(X, dtype), jnp.asarray(labels), multinomial=multinomial,
                              alpha=1.0 / (C * len(labels)), solver="lbfgs")
    coef = ref.coef_.T if multinomial else ref.coef_[0]
    assert params["w"].shape == coef.shape
    np.testing.assert_allclose(params["w"], coef, atol=1e-3)
    np.testing.assert_allclose(params["b"], ref.intercept_ if multinomial else ref.intercept_[0], atol=1e-3)
    assert int(info.num_iterations) < 100


def test_multinomial_proximal_gradient_agrees_with_newton():
    X, labels = _multiclass()
    X = jnp.asarray(X)
    newton, _ = logreg.fit(X, jnp.asarray(labels), multinomial=True, alpha=0.01)
    fista, info = logreg.fit(X, jnp.asarray(labels), multinomial=True, alpha=0.01, solver="proximal_gradient",
                             max_iterations=3000, tol=1e-12)
    np.testing.assert_allclose(fista["w"], newton["w"], atol=1e-6)


def test_binary_l1_matches_sklearn_saga_with_exact_zeros():
    X, t = _binary()
    X = np.c_[X, np.random.default_rng(5).normal(size=(len(t), 2))]  # two useless features
    C = 0.05
    ref = _sklearn(C, solver="saga", l1_ratio=1.0).fit(X, t)
    params, info = logreg.fit(jnp.asarray(X), jnp.asarray(t), penalty="l1", alpha=1.0 / (C * len(t)),
                              max_iterations=20_000, tol=1e-12)
    np.testing.assert_allclose(params["w"], ref.coef_[0], atol=1e-3)
    np.testing.assert_allclose(params["b"], ref.intercept_[0], atol=1e-3)
    zeros = np.asarray(params["w"]) == 0.0
    assert zeros.sum() >= 1
    np.testing.assert_array_equal(zeros, ref.coef_[0] == 0)


def test_gradient_is_the_notes_y_hat_minus_t_times_x():
    X, t = _binary()
    params = {"w": jnp.asarray([0.3, -0.2, 0.1, 0.4]), "b": jnp.asarray(-0.1)}
    alpha = 0.05
    g = jax.grad(logreg.loss)(params, jnp.asarray(X), jnp.asarray(t), penalty="l2", alpha=alpha)
    y_hat = 1 / (1 + np.exp(-(X @ np.asarray(params["w"]) - 0.1)))
    np.testing.assert_allclose(g["w"], X.T @ (y_hat - t) / len(t) + alpha * np.asarray(params["w"]), atol=1e-12)
    np.testing.assert_allclose(g["b"], np.mean(y_hat - t), atol=1e-12)


def test_loss_values_match_sklearn_log_loss():
    metrics = pytest.importorskip("sklearn.metrics")
    X, labels = _multiclass()
    params = {"w": jnp.asarray(np.random.default_rng(0).normal(size=(4, 3))), "b": jnp.asarray([0.1, 0.0, -0.1])}
    value = logreg.loss(params, jnp.asarray(X), jnp.asarray(labels), penalty=None)
    proba = np.asarray(logreg.predict_proba(params, jnp.asarray(X)))
    np.testing.assert_allclose(value, metrics.log_loss(labels, proba), rtol=1e-10)


def test_fit_under_vmap_over_datasets_and_penalties():
    data = [_binary(seed=s, n=100) for s in range(3)]
    Xs = jnp.asarray(np.stack([d[0] for d in data]))
    ts = jnp.asarray(np.stack([d[1] for d in data]))
    alphas = jnp.asarray([0.01, 0.1, 1.0])
    batched, info = jax.vmap(lambda X, t, a: logreg.fit(X, t, alpha=a))(Xs, ts, alphas)
    assert batched["w"].shape == (3, 4) and info.loss_history.shape == (3, 100)
    for i in range(3):
        single, _ = logreg.fit(Xs[i], ts[i], alpha=float(alphas[i]))
        np.testing.assert_allclose(batched["w"][i], single["w"], atol=1e-10)


def test_bfloat16_stays_finite():
    X, t = _binary()
    params, info = logreg.fit(jnp.asarray(X, jnp.bfloat16), jnp.asarray(t), alpha=0.01, max_iterations=20)
    assert params["w"].dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(params["w"], np.float32)))
    acc = np.mean(np.asarray(logreg.predict(params, jnp.asarray(X, jnp.bfloat16))) == t)
    assert acc > 0.75


def test_bad_input():
    X, t = _binary(n=10)
    Xn = X.copy()
    Xn[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value.*index \(4, 0\)"):
        logreg.fit(Xn, t)
    with pytest.raises(ValueError, match=r"same number of rows.*X.shape=\(10, 4\).*labels.shape=\(9,\)"):
        logreg.fit(X, t[:9])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        logreg.fit(X, np.where(t == 1, 2, 0))
    with pytest.raises(ValueError, match="penalty must be one of"):
        logreg.fit(X, t, penalty="l3")
    with pytest.raises(ValueError, match="proximal_gradient"):
        logreg.fit(X, t, penalty="l1", solver="newton")
