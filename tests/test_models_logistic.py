"""Logistic regression (binary and multinomial, L2/L1) against scikit-learn's LogisticRegression, the notes'
gradient (ŷ − t) x and jax.grad."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.models import logistic_regression as logreg
from jaxmath.models import logistic_solvers as solvers


def _binary(seed=0, n=300, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    t = (x @ np.array([1.5, -1.0, 0.5, 0.0]) + 0.3 + rng.normal(size=n) > 0).astype(np.int32)
    return x.astype(dtype), t


def _multiclass(seed=1, n=300, k=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    W = rng.normal(size=(4, k))
    labels = np.argmax(x @ W + rng.gumbel(size=(n, k)), axis=1).astype(np.int32)
    return x.astype(dtype), labels


def _sklearn(C, **kw):
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    return sklearn_lm.LogisticRegression(C=C, tol=1e-12, max_iter=10_000, **kw)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("C", [0.1, 1.0])
def test_binary_l2_matches_sklearn_same_C(dtype, C):
    x, t = _binary()
    ref = _sklearn(C).fit(x, t)
    params, info = logreg.fit(jnp.asarray(x, dtype), jnp.asarray(t), penalty="l2", alpha=1.0 / (C * len(t)))
    assert params["w"].shape == (4,) and params["b"].shape == () and params["w"].dtype == dtype
    assert bool(info.converged) and int(info.num_steps) < 20
    np.testing.assert_allclose(params["w"], ref.coef_[0], atol=1e-3)
    np.testing.assert_allclose(params["b"], ref.intercept_[0], atol=1e-3)
    proba = logreg.predict_proba(params, jnp.asarray(x, dtype))
    assert proba.shape == (300, 2)
    np.testing.assert_allclose(np.asarray(proba).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(proba, ref.predict_proba(x), atol=1e-4)
    np.testing.assert_array_equal(logreg.predict(params, jnp.asarray(x, dtype)), ref.predict(x))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_multinomial_l2_matches_sklearn_and_probabilities_sum_to_one(dtype):
    x, labels = _multiclass()
    C = 0.5
    ref = _sklearn(C).fit(x, labels)
    params, info = logreg.fit(jnp.asarray(x, dtype), jnp.asarray(labels),
                              alpha=1.0 / (C * len(labels)))
    assert params["w"].shape == (4, 3) and params["b"].shape == (3,)
    np.testing.assert_allclose(params["w"], ref.coef_.T, atol=1e-3)
    np.testing.assert_allclose(params["b"], ref.intercept_, atol=1e-3)
    proba = logreg.predict_proba(params, jnp.asarray(x, dtype))
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(np.asarray(proba, np.float64).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(proba, ref.predict_proba(x), atol=1e-4)


@pytest.mark.parametrize("multinomial, dtype", [(False, jnp.float32), (True, jnp.float64)])
def test_lbfgs_matches_sklearn(multinomial, dtype):
    x, labels = _multiclass() if multinomial else _binary()
    C = 0.5
    ref = _sklearn(C).fit(x, labels)
    params, info = logreg.fit(jnp.asarray(x, dtype), jnp.asarray(labels), num_classes=3 if multinomial else 2,
                              alpha=1.0 / (C * len(labels)), solver="lbfgs")
    coef = ref.coef_.T if multinomial else ref.coef_[0]
    assert params["w"].shape == coef.shape
    np.testing.assert_allclose(params["w"], coef, atol=1e-3)
    np.testing.assert_allclose(params["b"], ref.intercept_ if multinomial else ref.intercept_[0], atol=1e-3)
    assert int(info.num_steps) < 100


def test_multinomial_proximal_gradient_agrees_with_newton():
    x, labels = _multiclass()
    x = jnp.asarray(x)
    newton, _ = logreg.fit(x, jnp.asarray(labels), alpha=0.01)
    fista, info = logreg.fit(x, jnp.asarray(labels), num_classes=3, alpha=0.01, solver="proximal_gradient",
                             max_steps=3000, tol=1e-12)
    np.testing.assert_allclose(fista["w"], newton["w"], atol=1e-6)


def test_binary_l1_matches_sklearn_saga_with_exact_zeros():
    x, t = _binary()
    x = np.c_[x, np.random.default_rng(5).normal(size=(len(t), 2))]  # two useless features
    C = 0.05
    ref = _sklearn(C, solver="saga", l1_ratio=1.0).fit(x, t)
    params, info = logreg.fit(jnp.asarray(x), jnp.asarray(t), penalty="l1", alpha=1.0 / (C * len(t)),
                              max_steps=20_000, tol=1e-12)
    np.testing.assert_allclose(params["w"], ref.coef_[0], atol=1e-3)
    np.testing.assert_allclose(params["b"], ref.intercept_[0], atol=1e-3)
    zeros = np.asarray(params["w"]) == 0.0
    assert zeros.sum() >= 1
    np.testing.assert_array_equal(zeros, ref.coef_[0] == 0)


def test_gradient_is_the_notes_y_hat_minus_t_times_x():
    x, t = _binary()
    params = {"w": jnp.asarray([0.3, -0.2, 0.1, 0.4]), "b": jnp.asarray(-0.1)}
    alpha = 0.05
    g = jax.grad(logreg.loss)(params, jnp.asarray(x), jnp.asarray(t), penalty="l2", alpha=alpha)
    y_hat = 1 / (1 + np.exp(-(x @ np.asarray(params["w"]) - 0.1)))
    np.testing.assert_allclose(g["w"], x.T @ (y_hat - t) / len(t) + alpha * np.asarray(params["w"]), atol=1e-12)
    np.testing.assert_allclose(g["b"], np.mean(y_hat - t), atol=1e-12)


def test_loss_values_match_sklearn_log_loss():
    metrics = pytest.importorskip("sklearn.metrics")
    x, labels = _multiclass()
    params = {"w": jnp.asarray(np.random.default_rng(0).normal(size=(4, 3))), "b": jnp.asarray([0.1, 0.0, -0.1])}
    value = logreg.loss(params, jnp.asarray(x), jnp.asarray(labels), penalty=None)
    proba = np.asarray(logreg.predict_proba(params, jnp.asarray(x)))
    np.testing.assert_allclose(value, metrics.log_loss(labels, proba), rtol=1e-10)


def test_fit_under_vmap_over_datasets_and_penalties():
    data = [_binary(seed=s, n=100) for s in range(3)]
    xs = jnp.asarray(np.stack([d[0] for d in data]))
    ts = jnp.asarray(np.stack([d[1] for d in data]))
    alphas = jnp.asarray([0.01, 0.1, 1.0])
    batched, info = jax.vmap(lambda x, t, a: logreg.fit(x, t, num_classes=2, alpha=a))(xs, ts, alphas)
    assert batched["w"].shape == (3, 4) and info.loss_history.shape == (3, 100)
    for i in range(3):
        single, _ = logreg.fit(xs[i], ts[i], alpha=float(alphas[i]))
        np.testing.assert_allclose(batched["w"][i], single["w"], atol=1e-10)


def test_bfloat16_stays_finite():
    x, t = _binary()
    params, info = logreg.fit(jnp.asarray(x, jnp.bfloat16), jnp.asarray(t), alpha=0.01, max_steps=20)
    assert params["w"].dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(params["w"], np.float32)))
    acc = np.mean(np.asarray(logreg.predict(params, jnp.asarray(x, jnp.bfloat16))) == t)
    assert acc > 0.75


def test_bad_input():
    x, t = _binary(n=10)
    Xn = x.copy()
    Xn[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"x contains 1 non-finite value.*index \(4, 0\)"):
        logreg.fit(Xn, t)
    with pytest.raises(ValueError, match=r"same number of rows.*x.shape=\(10, 4\).*labels.shape=\(9,\)"):
        logreg.fit(x, t[:9])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        logreg.fit(x, np.where(t == 1, 2, 0), num_classes=2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        logreg.fit(x, np.where(t == 1, 3, 0), params=logreg.init(jax.random.key(0), 4, num_classes=3))
    with pytest.raises(ValueError, match="penalty must be one of"):
        logreg.fit(x, t, penalty="l3")
    with pytest.raises(ValueError, match="proximal_gradient"):
        logreg.fit(x, t, penalty="l1", solver="newton")


# ---------------------------------------------------------------- one model kind, decided in one place


def test_init_with_three_classes_then_fit_works_on_labels_0_to_2():
    x, labels = _multiclass()
    params = logreg.init(jax.random.key(0), 4, num_classes=3, dtype=jnp.float64)
    assert params["w"].shape == (4, 3) and params["b"].shape == (3,)
    fitted, info = logreg.fit(x, labels, params=params, alpha=0.01)
    inferred, _ = logreg.fit(x, labels, alpha=0.01)  # three classes read from the labels
    assert fitted["w"].shape == (4, 3) and bool(info.converged)
    chex.assert_trees_all_close(fitted, inferred, atol=1e-8)
    binary = logreg.init(jax.random.key(0), 4)
    assert binary["w"].shape == (4,) and binary["b"].shape == ()
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        logreg.init(4, 4)


def test_num_classes_contradicting_params_or_missing_under_vmap_is_refused():
    x, labels = _multiclass(n=30)
    params = logreg.init(jax.random.key(0), 4, num_classes=3)
    with pytest.raises(ValueError, match=r"num_classes=2 contradicts params\['w'\].shape=\(4, 3\)"):
        logreg.fit(x, labels, num_classes=2, params=params)
    with pytest.raises(ValueError, match="num_classes .* must be given"):
        jax.vmap(lambda lab: logreg.fit(x, lab))(jnp.stack([labels, labels]))
    with pytest.raises(TypeError):
        logreg.fit(x, labels, "l2")  # hyperparameters are keyword-only


@pytest.mark.parametrize("solver", ["newton", "lbfgs", "proximal_gradient"])
def test_warm_start_from_the_solution_stays_there(solver):
    x, t = _binary()
    kw = dict(alpha=0.01, solver=solver, max_steps=5000)
    cold, cold_info = logreg.fit(x, t, **kw)
    warm, warm_info = logreg.fit(x, t, params=cold, **kw)
    assert int(warm_info.num_steps) < max(int(cold_info.num_steps), 2)
    chex.assert_trees_all_close(warm, cold, atol=1e-6)
    n = int(warm_info.num_steps)
    np.testing.assert_allclose(warm_info.loss_history[0], logreg.loss(cold, x, t, alpha=0.01), rtol=1e-10)
    assert np.all(np.isnan(np.asarray(warm_info.loss_history[n + 1:])))


def test_apply_is_probabilities_logits_are_z_and_predict_thresholds():
    x, _ = _binary(n=7)
    params = {"w": jnp.asarray([0.3, -0.2, 0.1, 0.4]), "b": jnp.asarray(-0.1)}
    z = x @ np.asarray(params["w"]) - 0.1
    assert logreg.apply(params, x).shape == (7,)
    np.testing.assert_allclose(logreg.logits(params, x), z, rtol=1e-12)
    np.testing.assert_allclose(logreg.apply(params, x), 1 / (1 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_array_equal(logreg.predict(params, x), (z >= 0).astype(np.int32))
    with pytest.raises(ValueError, match=r"x must have 4 features"):
        logreg.apply(params, x[:, :3])


# ---------------------------------------------------------------- the streamed value-and-gradient vs the plain formula


@pytest.mark.parametrize("dtype, fit_intercept, penalty", [(jnp.float32, True, "l2"), (jnp.float64, False, None),
                                                           (jnp.float64, True, "l2")])
def test_blocked_value_and_gradient_matches_the_plain_formula(dtype, fit_intercept, penalty):
    n, d = 20_000, 8  # n ≥ 2 blocks plus a remainder: the streamed path
    rows = solvers._block_rows(d, dtype)
    assert n // rows >= 2 and n % rows, (n, rows)
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(n, d)), dtype)
    T = jnp.asarray(rng.integers(0, 2, size=(n, 1)), dtype)
    D = d + fit_intercept
    theta = jnp.asarray(rng.normal(size=(D, 1)) * 0.3, dtype)
    mask = jnp.ones((D, 1), dtype).at[-1].set(0 if fit_intercept else 1)
    kw = dict(alpha=jnp.asarray(0.05, dtype), mask=mask, penalty=penalty, binary=True, precision="highest",
              fit_intercept=fit_intercept)
    tuned = jax.jit(lambda th: solvers._value_and_gradient(th, x, T, **kw))(theta)
    reference = solvers._value_and_grad_reference(theta, x, T, **kw)
    tol = 1e-12 if dtype == jnp.float64 else 2e-5
    chex.assert_trees_all_close(tuned, reference, rtol=tol, atol=tol)
    # and both are the autodiff gradient of the loss written out in NumPy-like jnp here
    def plain(th):
        z = x @ th[:d, 0] + (th[d, 0] if fit_intercept else 0)
        ce = jnp.mean(jnp.logaddexp(0, z) - T[:, 0] * z)
        return ce + (0.5 * 0.05 * jnp.sum((th * mask) ** 2) if penalty == "l2" else 0)
    chex.assert_trees_all_close(reference[1], jax.grad(plain)(theta), rtol=tol, atol=tol)


def test_lbfgs_on_the_streamed_path_agrees_with_newton():
    rng = np.random.default_rng(4)
    n, d = 20_000, 8
    assert n // solvers._block_rows(d, jnp.float64) >= 2
    x = rng.normal(size=(n, d))
    t = (x @ rng.normal(size=d) + rng.logistic(size=n) > 0).astype(np.int32)
    lbfgs, info = logreg.fit(x, t, alpha=1e-3, solver="lbfgs")
    newton, _ = logreg.fit(x, t, alpha=1e-3, solver="newton")
    # L-BFGS stops when no step lowers E in float64 any more: by then it sits on Newton's answer.
    assert int(info.num_steps) < 100 and not bool(info.nonfinite)
    chex.assert_trees_all_close(lbfgs, newton, atol=1e-6)
