"""Winner takes all / winner takes most: the notes' worked example, NumPy replays, batch forms, vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.datasets import marvel_heroes
from jaxmath.unsupervised import competitive as C


def _state(weights, dtype=jnp.float64):
    return C.CompetitiveState(jnp.asarray(weights, dtype), jnp.zeros((), jnp.int32))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_notes_worked_example(dtype):
    # Seed 000: weights (3, 2, 2), example (1, 2, 3): d = w − x = (2, 0, −1), distance √5, η = 0.1,
    # step η·d = (0.2, 0, −0.1), new weights (2.8, 2.0, 2.1). A second, far neuron must not move.
    state = _state([[3.0, 2.0, 2.0], [9.0, 9.0, 9.0]], dtype)
    x = jnp.asarray([1.0, 2.0, 3.0], dtype)
    dist = C.distances(state.weights, x)
    assert dist.shape == (2,)
    assert float(dist[0]) == pytest.approx(np.sqrt(5), rel=1e-6)
    new, best = C.wta_step(state, x, learning_rate=0.1)
    assert int(best) == 0 and int(new.step) == 1 and new.weights.dtype == dtype
    np.testing.assert_allclose(np.round(np.asarray(new.weights[0], np.float64), 1), [2.8, 2.0, 2.1])
    np.testing.assert_allclose(np.asarray(new.weights[0]), [2.8, 2.0, 2.1], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(new.weights[1]), [9.0, 9.0, 9.0])


def _np_online(W, X, eta, sigma=None, epochs=1):
    W = W.copy()
    winners = []
    for _ in range(epochs):
        for x in X:
            d = W - x
            best = int(np.argmin((d ** 2).sum(1)))
            if sigma is None:
                theta = (np.arange(len(W)) == best).astype(float)
            else:
                theta = np.exp(-((np.arange(len(W)) - best) ** 2) / (2 * sigma ** 2))
            W = W - eta * theta[:, None] * d
            winners.append(best)
    return W, winners


def _heroes():
    v = np.asarray(marvel_heroes().values, np.float64)
    return (v - v.mean(0)) / v.std(0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_online_wta_and_wtm_replay_numpy_on_marvel_heroes(dtype):
    X = _heroes()
    W0 = X[[0, 4, 6, 8]] + 0.01
    tol = 1e-10 if dtype == jnp.float64 else 1e-5
    new, winners = C.wta_train(_state(W0, dtype), jnp.asarray(X, dtype), learning_rate=0.2, num_epochs=3)
    want, want_winners = _np_online(W0, X, 0.2, epochs=3)
    assert new.weights.shape == (4, 6) and winners.shape == (48,) and int(new.step) == 48
    np.testing.assert_array_equal(np.asarray(winners), want_winners)
    np.testing.assert_allclose(np.asarray(new.weights), want, rtol=tol, atol=tol)
    new, winners = C.wtm_train(_state(W0, dtype), jnp.asarray(X, dtype), learning_rate=0.2, sigma=0.8,
                               num_epochs=3)
    want, want_winners = _np_online(W0, X, 0.2, sigma=0.8, epochs=3)
    np.testing.assert_array_equal(np.asarray(winners), want_winners)
    np.testing.assert_allclose(np.asarray(new.weights), want, rtol=tol, atol=tol)


def test_wtm_moves_neighbours_by_the_neighbourhood_function():
    state = _state([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    x = jnp.asarray([0.0, 1.0])
    pos = jnp.asarray([[0.0], [1.0], [3.0]])
    new, best = C.wtm_step(state, x, learning_rate=0.5, sigma=1.0, neighbourhood="bubble", positions=pos * 0.9)
    # bubble with σ = 1: neurons at chain offsets 0 and 0.9 learn fully, the one at 2.7 not at all
    assert int(best) == 0
    np.testing.assert_allclose(np.asarray(new.weights), [[0.0, 0.5], [0.5, 0.5], [5.0, 5.0]], rtol=1e-12)
    new, _ = C.wtm_step(state, x, learning_rate=0.5, sigma=1.0, positions=pos)
    theta = np.exp(-np.array([0.0, 1.0, 9.0]) / 2)
    want = np.array([[0, 0], [1, 0], [5, 5]]) - 0.5 * theta[:, None] * (np.array([[0, 0], [1, 0], [5, 5]]) - [0, 1])
    np.testing.assert_allclose(np.asarray(new.weights), want, rtol=1e-12)


def test_batch_wta_is_a_lloyd_step_and_batch_wtm_matches_numpy():
    X = _heroes()
    W0 = X[[1, 3, 5]]
    new, winners = C.wta_train_batch(_state(W0), jnp.asarray(X), learning_rate=1.0, num_iterations=1)
    assert winners.shape == (1, 16)
    labels = ((X[:, None] - W0[None]) ** 2).sum(-1).argmin(1)
    want = np.stack([X[labels == k].mean(0) for k in range(3)])
    np.testing.assert_allclose(np.asarray(new.weights), want, rtol=1e-10)
    new, _ = C.wtm_train_batch(_state(W0), jnp.asarray(X), learning_rate=0.5, sigma=1.0, num_iterations=2)
    W = W0.copy()
    for _ in range(2):
        best = ((X[:, None] - W[None]) ** 2).sum(-1).argmin(1)
        theta = np.exp(-((np.arange(3)[None, :] - best[:, None]) ** 2) / 2)  # (n, m)
        target = theta.T @ X / theta.sum(0)[:, None]
        W = W - 0.5 * (W - target)
    np.testing.assert_allclose(np.asarray(new.weights), W, rtol=1e-10)


def test_vmap_over_initial_weights():
    X = jnp.asarray(_heroes())
    W0s = jnp.stack([X[jnp.array([0, 1, 2])], X[jnp.array([3, 4, 5])]])
    batched, winners = jax.vmap(lambda W: C.wtm_train(_state(W), X, learning_rate=0.1))(W0s)
    assert batched.weights.shape == (2, 3, 6) and winners.shape == (2, 16)
    for i in range(2):
        single, _ = C.wtm_train(_state(W0s[i]), X, learning_rate=0.1)
        np.testing.assert_allclose(np.asarray(batched.weights[i]), np.asarray(single.weights), rtol=1e-12)


def test_init_picks_distinct_samples_and_bfloat16_stays_finite():
    X = jnp.asarray(_heroes(), jnp.bfloat16)
    state = C.init(jax.random.key(0), X, 5)
    assert state.weights.shape == (5, 6)
    rows = {tuple(np.asarray(r, np.float32)) for r in state.weights}
    assert all((np.asarray(X, np.float32) == np.array(r)).all(1).any() for r in rows)
    state, _ = C.wtm_train(state, X, learning_rate=0.3, num_epochs=2, neighbourhood="mexican_hat")
    state, _ = C.wta_train_batch(state, X, num_iterations=2)
    assert state.weights.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(state.weights, np.float32)))


def test_bad_input_raises():
    X = jnp.asarray(_heroes())
    with pytest.raises(ValueError, match="num_neurons must be <= the number of samples"):
        C.init(jax.random.key(0), X, 17)
    state = _state(X[:3])
    with pytest.raises(ValueError, match="X contains 1 non-finite"):
        C.wta_train(state, X.at[1, 1].set(jnp.nan))
    with pytest.raises(ValueError, match="X must have 6 features"):
        C.wta_train(state, X[:, :4])
    with pytest.raises(ValueError, match="x must have 6 features"):
        C.wta_step(state, X[0, :4])
    with pytest.raises(ValueError, match="neighbourhood must be one of"):
        C.wtm_train(state, X, neighbourhood="cone")
    with pytest.raises(ValueError, match="positions must have one row per neuron"):
        C.wtm_train(state, X, positions=jnp.zeros((4, 1)))
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        C.wta_train(state, X, learning_rate=-0.1)
