"""Hebbian learning: the notes' worked example, unbounded growth of plain Hebb, Oja and Sanger vs eigh."""

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
    y = H.hebb_output(w, x)
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
    state = H.init(jnp.asarray(NOTES_W, dtype))
    state, norms = H.hebb_train(state, jnp.asarray(X, dtype), learning_rate=0.1, num_epochs=25)
    assert norms.shape == (500,) and int(state.step) == 500
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
    state, norms = H.oja_train(H.init(w0), jnp.asarray(X, dtype), learning_rate=_schedule, num_epochs=20)
    assert state.weights.shape == (5,) and norms.shape == (20000,)
    w = np.asarray(state.weights, np.float64)
    assert abs(w @ vecs[:, 0]) / np.linalg.norm(w) >= 1 - 1e-3
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=1e-2)  # Oja's decay keeps ‖w‖ near 1


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_sanger_finds_first_three_components_in_order(dtype):
    X, vecs = _pca_data(3)
    W0 = jnp.asarray(np.random.default_rng(4).normal(size=(3, 5)) * 0.1, dtype)
    state, norms = H.sanger_train(H.init(W0), jnp.asarray(X, dtype), learning_rate=_schedule, num_epochs=20)
    assert state.weights.shape == (3, 5) and norms.shape == (20000, 3)
    W = np.asarray(state.weights, np.float64)
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
    state = H.init(jnp.asarray(NOTES_W, jnp.float64))
    rates = jnp.asarray([0.01, 0.1, 0.5])
    batched, norms = jax.vmap(lambda lr: H.hebb_train(state, X, learning_rate=lr))(rates)
    assert batched.weights.shape == (3, 4) and norms.shape == (3, 10)
    for i, lr in enumerate([0.01, 0.1, 0.5]):
        single, _ = H.hebb_train(state, X, learning_rate=lr)
        np.testing.assert_allclose(np.asarray(batched.weights[i]), np.asarray(single.weights), rtol=1e-12)


def test_bfloat16_stays_finite():
    X = jnp.asarray(np.random.default_rng(7).uniform(size=(50, 3)), jnp.bfloat16)
    state, norms = H.hebb_train(H.init(jnp.asarray(NOTES_W, jnp.bfloat16)), X, learning_rate=0.1, num_epochs=4)
    assert state.weights.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(norms, np.float32)))
    w0 = jnp.asarray([0.5, 0.5, 0.5], jnp.bfloat16)
    state, _ = H.oja_train(H.init(w0), X, learning_rate=0.01, num_epochs=2)
    assert np.all(np.isfinite(np.asarray(state.weights, np.float32)))


def test_bad_input_raises():
    w, x = jnp.asarray(NOTES_W), jnp.asarray(NOTES_X)
    with pytest.raises(ValueError, match=r"weights must have 4 inputs per neuron"):
        H.hebb_output(w[:3], x)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        H.hebb_rule(w, x, learning_rate=0.0)
    with pytest.raises(ValueError, match="X contains 1 non-finite"):
        H.hebb_train(H.init(w), jnp.asarray([[0.1, 0.2, jnp.nan]]))
    with pytest.raises(ValueError, match=r"state.weights must have 5 inputs per neuron \(X has 4 features plus the bias input\)"):
        H.hebb_train(H.init(w), jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="num_epochs must be >= 1"):
        H.hebb_train(H.init(w), jnp.ones((3, 3)), num_epochs=0)
    with pytest.raises(ValueError, match="state.weights must be 1-dimensional"):
        H.oja_train(H.init(jnp.ones((2, 3))), jnp.ones((5, 3)))


def test_layer_training_replays_numpy():
    rng = np.random.default_rng(8)
    W0, X = rng.normal(size=(2, 4)) * 0.1, rng.uniform(size=(6, 3))
    state, norms = H.hebb_train(H.init(jnp.asarray(W0)), jnp.asarray(X), learning_rate=0.2, beta=1.5, num_epochs=2)
    W, want = W0.copy(), []
    for _ in range(2):
        for x in X:
            xb = np.append(x, 1.0)
            W = W + 0.2 * np.outer(1 / (1 + np.exp(-1.5 * W @ xb)), xb)
            want.append(np.linalg.norm(W))
    assert state.weights.shape == (2, 4) and norms.shape == (12,)
    np.testing.assert_allclose(np.asarray(state.weights), W, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(norms), want, rtol=1e-12)
