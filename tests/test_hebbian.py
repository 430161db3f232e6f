"""Hebbian learning: the notes' worked example, unbounded growth of plain Hebb, Oja and Sanger vs eigh."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.unsupervised import hebbian as H

# Seed 000: inputs 0.2, 0.3, 0.1 and the bias input 1; weights 0.230, 0.010, 0.900 and w_0 = 0.110.
NOTES_X = [0.2, 0.3, 0.1]
NOTES_W = [0.230, 0.010, 0.900, 0.110]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_notes_worked_example(dtype):
    w, x = jnp.asarray(NOTES_W, dtype), jnp.asarray(NOTES_X, dtype)
    # weighted inputs 0.046, 0.003, 0.090, 0.110 sum to 0.249; the sigmoid gives 0.562
    assert float(jnp.sum(w * H.with_bias_input(x))) == pytest.approx(0.249, abs=1e-6)
    y = H.apply(w, x)
    assert y.shape == () and y.dtype == dtype
    assert round(float(y), 3) == 0.562
    # η = 0.1: Δw = 0.1 · (0.2, 0.3, 0.1, 1) · 0.5619 = (0.01124, 0.01686, 0.00562, 0.05619); the slide prints
    # them cut to three decimals: +0.011, +0.016, +0.005, +0.056.
    delta, y2 = H.hebb_rule(w, x, learning_rate=0.1)
    assert delta.shape == (4,) and float(y2) == float(y)
    np.testing.assert_allclose(np.floor(np.asarray(delta, np.float64) * 1000 + 1e-9) / 1000,
                               [0.011, 0.016, 0.005, 0.056], atol=1e-12)
    np.testing.assert_allclose(np.asarray(delta), 0.1 * np.array([0.2, 0.3, 0.1, 1.0]) / (1 + np.exp(-0.249)),
                               rtol=1e-6)


def test_layer_of_neurons_matches_numpy():
    rng = np.random.default_rng(0)
    W, x = rng.normal(size=(3, 5)), rng.normal(size=4)
    delta, y = H.hebb_rule(jnp.asarray(W), jnp.asarray(x), learning_rate=0.3, beta=2.0)
    xb = np.append(x, 1.0)
    want_y = 1 / (1 + np.exp(-2.0 * W @ xb))
    assert delta.shape == (3, 5) and y.shape == (3,)
    np.testing.assert_allclose(np.asarray(y), want_y, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(delta), 0.3 * np.outer(want_y, xb), rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_plain_hebb_replays_numpy_and_weight_norm_grows_without_bound(dtype):
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, size=(20, 3))
    w0 = jnp.asarray(NOTES_W, dtype)
    _, info = H.fit_hebb(jnp.asarray(X, dtype), params=w0, learning_rate=0.1, max_steps=25)
    norms = info.norms
    assert norms.shape == (500,) and int(info.num_steps) == 25 and not bool(info.converged)
    w = np.array(NOTES_W)
    want = []
    for _ in range(25):
        for x in X:
            xb = np.append(x, 1.0)
            w = w + 0.1 * xb / (1 + np.exp(-w @ xb))
            want.append(np.linalg.norm(w))
    tol = 1e-10 if dtype == jnp.float64 else 1e-4
    np.testing.assert_allclose(np.asarray(norms), want, rtol=tol)
    norms = np.asarray(norms, np.float64)
    assert np.all(np.diff(norms) > 0)  # every step makes the weights longer
    per_epoch = np.diff(norms[19::20])
    assert per_epoch.min() > 0.9 * per_epoch[0] > 0  # no slowing down: linear growth, ad infinitum
    assert norms[-1] > 20 * np.linalg.norm(NOTES_W)


def _pca_data(seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    X = rng.normal(size=(1000, 5)) * np.sqrt([4, 2, 1, 0.5, 0.25]) @ Q.T + 3.0
    vals, vecs = np.linalg.eigh(np.cov(X, rowvar=False))
    return X, vecs[:, ::-1]


def _schedule(step):
    return 0.05 / (1 + step / 300)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_oja_converges_to_first_principal_component(dtype):
    X, vecs = _pca_data()
    w0 = jnp.asarray(np.random.default_rng(2).normal(size=5) * 0.1, dtype)
    w, info = H.fit_oja(jnp.asarray(X, dtype), params=w0, learning_rate=_schedule, max_steps=20)
    assert w.shape == (5,) and info.norms.shape == (20000,)
    w = np.asarray(w, np.float64)
    assert abs(w @ vecs[:, 0]) / np.linalg.norm(w) >= 1 - 1e-3
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=1e-2)  # Oja's decay keeps ‖w‖ near 1


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_sanger_finds_first_three_components_in_order(dtype):
    X, vecs = _pca_data(3)
    W0 = jnp.asarray(np.random.default_rng(4).normal(size=(3, 5)) * 0.1, dtype)
    W, info = H.fit_sanger(jnp.asarray(X, dtype), params=W0, learning_rate=_schedule, max_steps=20)
    assert W.shape == (3, 5) and info.norms.shape == (20000, 3)
    W = np.asarray(W, np.float64)
    for i in range(3):
        assert abs(W[i] @ vecs[:, i]) / np.linalg.norm(W[i]) >= 1 - 1e-3


def test_oja_and_sanger_rules_match_numpy():
    rng = np.random.default_rng(5)
    w, W, x = rng.normal(size=4), rng.normal(size=(3, 4)), rng.normal(size=4)
    y = w @ x
    np.testing.assert_allclose(np.asarray(H.oja_rule(jnp.asarray(w), jnp.asarray(x), learning_rate=0.1)),
                               0.1 * y * (x - y * w), rtol=1e-12)
    Y = W @ x
    want = 0.1 * (np.outer(Y, x) - np.tril(np.outer(Y, Y)) @ W)
    got = H.sanger_rule(jnp.asarray(W), jnp.asarray(x), learning_rate=0.1)
    assert got.shape == (3, 4)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    # Sanger's first row is Oja's rule
    np.testing.assert_allclose(np.asarray(got[0]),
                               np.asarray(H.oja_rule(jnp.asarray(W[0]), jnp.asarray(x), learning_rate=0.1)),
                               rtol=1e-12)


def test_vmap_over_learning_rates_matches_separate_runs():
    X = jnp.asarray(np.random.default_rng(6).uniform(size=(10, 3)), jnp.float64)
    w0 = jnp.asarray(NOTES_W, jnp.float64)
    rates = jnp.asarray([0.01, 0.1, 0.5])
    batched, info = jax.vmap(lambda lr: H.fit_hebb(X, params=w0, learning_rate=lr))(rates)
    assert batched.shape == (3, 4) and info.norms.shape == (3, 10)
    for i, lr in enumerate([0.01, 0.1, 0.5]):
        single = H.fit_hebb(X, params=w0, learning_rate=lr)
        chex.assert_trees_all_close((batched[i], info.norms[i]), (single[0], single[1].norms), rtol=1e-12)


def test_bfloat16_stays_finite():
    X = jnp.asarray(np.random.default_rng(7).uniform(size=(50, 3)), jnp.bfloat16)
    w, info = H.fit_hebb(X, params=jnp.asarray(NOTES_W, jnp.bfloat16), learning_rate=0.1, max_steps=4)
    assert w.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(info.norms, np.float32)))
    w0 = jnp.asarray([0.5, 0.5, 0.5], jnp.bfloat16)
    w, _ = H.fit_oja(X, params=w0, learning_rate=0.01, max_steps=2)
    assert w.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(w, np.float32)))


def test_bad_input_raises():
    w, x = jnp.asarray(NOTES_W), jnp.asarray(NOTES_X)
    with pytest.raises(ValueError, match=r"params must have 4 inputs per neuron"):
        H.apply(w[:3], x)
    with pytest.raises(ValueError, match=r"params must have 4 inputs per neuron"):
        jax.jit(H.hebb_rule)(w[:3], x)  # static checks also raise under an outer jit
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        H.fit_hebb(jnp.ones((3, 3)), params=w, learning_rate=0.0)
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        H.fit_hebb(jnp.asarray([[0.1, 0.2, jnp.nan]]), params=w)
    with pytest.raises(ValueError, match=r"params must have 5 inputs per neuron \(x has 4 features plus the bias input\)"):
        H.fit_hebb(jnp.ones((3, 4)), params=w)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        H.fit_hebb(jnp.ones((3, 3)), params=w, max_steps=0)
    with pytest.raises(ValueError, match="params must be 1-dimensional"):
        H.fit_oja(jnp.ones((5, 3)), params=jnp.ones((2, 3)))
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        H.init(0, 4)
    with pytest.raises(TypeError):
        H.hebb_rule(w, x, 0.1)  # hyperparameters are keyword-only


def test_layer_training_replays_numpy():
    rng = np.random.default_rng(8)
    W0, X = rng.normal(size=(2, 4)) * 0.1, rng.uniform(size=(6, 3))
    W_fit, info = H.fit_hebb(jnp.asarray(X), params=jnp.asarray(W0), learning_rate=0.2, beta=1.5, max_steps=2)
    W, want = W0.copy(), []
    for _ in range(2):
        for x in X:
            xb = np.append(x, 1.0)
            W = W + 0.2 * np.outer(1 / (1 + np.exp(-1.5 * W @ xb)), xb)
            want.append(np.linalg.norm(W))
    assert W_fit.shape == (2, 4) and info.norms.shape == (12,)
    np.testing.assert_allclose(np.asarray(W_fit), W, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(info.norms), want, rtol=1e-12)
    # apply on a batch: every sample through every neuron, y = σ(β·(W·[x, 1]))
    Y = H.apply(jnp.asarray(W0), jnp.asarray(X), beta=1.5)
    assert Y.shape == (6, 2)
    np.testing.assert_allclose(np.asarray(Y), 1 / (1 + np.exp(-1.5 * np.c_[X, np.ones(6)] @ W0.T)), rtol=1e-12)


def test_init_shapes_dtype_and_scale():
    w = H.init(jax.random.key(0), 4)
    W = H.init(jax.random.key(1), 200, num_outputs=50, scale=0.5, dtype=jnp.float64)
    assert w.shape == (4,) and w.dtype == jnp.float32
    assert W.shape == (50, 200) and W.dtype == jnp.float64
    assert np.std(np.asarray(W)) == pytest.approx(0.5, rel=0.05)
    assert abs(np.mean(np.asarray(W))) < 0.02


def test_warm_start_and_the_schedule_reuse_the_compiled_loop():
    # Two fits of one pass from where the previous stopped equal one fit of two passes (constant η), and a
    # second call with new data of the same shape does not trace the jitted loop again (the schedule, a static
    # argument, is only called while tracing).
    X, _ = _pca_data(9)
    X = jnp.asarray(X[:200])
    w0 = H.init(jax.random.key(3), 5, dtype=jnp.float64)
    two, _ = H.fit_oja(X, params=w0, learning_rate=0.01, max_steps=2)
    one, _ = H.fit_oja(X, params=w0, learning_rate=0.01, max_steps=1)
    again, _ = H.fit_oja(X, params=one, learning_rate=0.01, max_steps=1, center=True)
    chex.assert_trees_all_close(again, two, rtol=1e-12)
    chex.clear_trace_counter()
    schedule = chex.assert_max_traces(lambda step: 0.01 / (1 + step / 100), n=1)
    a, _ = H.fit_oja(X, params=w0, learning_rate=schedule, max_steps=2)
    b, _ = H.fit_oja(X[::-1] * 2.0, params=w0, learning_rate=schedule, max_steps=2)
    assert not np.allclose(np.asarray(a), np.asarray(b))
    with pytest.raises(AssertionError, match="traced > 1 times"):  # the guard does see a new shape
        H.fit_oja(X[:100], params=w0, learning_rate=schedule, max_steps=2)


# ---- non-finite updates ----------------------------------------------------------------------------------


def _np_oja_guarded(w, X, eta, passes):
    """Oja's rule in w's dtype on centred X, stopping before the first update whose weights or norm are not
    finite: (weights, update index or -1)."""
    X = X - X.mean(0)
    for u in range(passes * len(X)):
        x = X[u % len(X)]
        with np.errstate(over="ignore", invalid="ignore"):
            y = w @ x
            cand = w + eta * y * (x - y * w)
            norm = np.sqrt((cand * cand).sum())
        if not (np.all(np.isfinite(cand)) and np.isfinite(norm)):
            return w, u
        w = cand
    return w, -1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_oja_with_learning_rate_10_stops_before_the_first_nonfinite_update(dtype):
    # η = 10 on unit-variance data: y·(x − y·w) feeds back cubically, ‖w‖ explodes within a few updates
    # (the fit used to return NaN weights without a word).
    X, _ = _pca_data()
    X = X[:50].astype(dtype)
    w0 = np.full(5, 0.3, dtype)
    want, bad_update = _np_oja_guarded(w0, X, dtype(10.0), passes=2)
    assert bad_update >= 0
    with pytest.warns(RuntimeWarning, match=r"hebbian\.fit_oja: pass 0 made the weights non-finite"):
        w, info = H.fit_oja(jnp.asarray(X), params=jnp.asarray(w0), learning_rate=10.0, max_steps=2)
    assert w.shape == (5,) and w.dtype == dtype and bool(jnp.all(jnp.isfinite(w)))
    np.testing.assert_allclose(np.asarray(w), want, rtol=1e-4 if dtype == np.float32 else 1e-10)
    assert bool(info.nonfinite) and int(info.first_nonfinite_step) == 0 and int(info.num_steps) == 0
    norms = np.asarray(info.norms)
    assert norms.shape == (100,)
    assert np.all(np.isfinite(norms[:bad_update])) and np.all(np.isnan(norms[bad_update:]))
    np.testing.assert_allclose(norms[bad_update - 1], np.linalg.norm(want), rtol=1e-4)


def test_sanger_and_plain_hebb_stop_and_name_the_pass():
    X, _ = _pca_data()
    X = jnp.asarray(X[:20], jnp.float32)
    W0 = jnp.full((2, 5), 0.3, jnp.float32)
    with pytest.warns(RuntimeWarning, match=r"hebbian\.fit_sanger: pass 0 made the weights non-finite"):
        W, info = H.fit_sanger(X, params=W0, learning_rate=10.0, max_steps=3)
    assert W.shape == (2, 5) and bool(jnp.all(jnp.isfinite(W))) and bool(info.nonfinite)
    assert info.norms.shape == (60, 2)
    # The plain rule adds η·y·x per update: with η = 1e30 the first update's weights are finite (about 1e30)
    # but their norm is not in float32 (‖w‖² about 1e60), so nothing is applied and the start comes back.
    w0 = jnp.full(6, 0.1, jnp.float32)
    with pytest.warns(RuntimeWarning, match=r"hebbian\.fit_hebb: pass 0 made the weights non-finite"):
        w, info = H.fit_hebb(X, params=w0, learning_rate=1e30, max_steps=2)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(w0))
    assert int(info.num_steps) == 0 and not bool(info.converged) and int(info.first_nonfinite_step) == 0
    assert np.all(np.isnan(np.asarray(info.norms)))
    # with η = 1e15 the norm stays in range (about 1e16 after 40 updates): no stop, no warning
    w, info = H.fit_hebb(X, params=w0, learning_rate=1e15, max_steps=2)
    assert not bool(info.nonfinite) and np.all(np.isfinite(np.asarray(info.norms)))


def test_finite_fits_report_no_nonfinite_step():
    X, _ = _pca_data()
    w, info = H.fit_oja(jnp.asarray(X[:100]), params=jnp.full(5, 0.3), learning_rate=0.001, max_steps=2)
    assert not bool(info.nonfinite) and int(info.first_nonfinite_step) == -1 and int(info.num_steps) == 2
    assert np.all(np.isfinite(np.asarray(info.norms)))
