"""Winner takes all / winner takes most: the notes' worked example, NumPy replays, batch forms, vmap."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.datasets import marvel_heroes
from jaxmath.unsupervised import competitive as C


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_notes_worked_example(dtype):
    # Seed 000: weights (3, 2, 2), example (1, 2, 3): d = w − x = (2, 0, −1), distance √5, η = 0.1,
    # step η·d = (0.2, 0, −0.1), new weights (2.8, 2.0, 2.1). A second, far neuron must not move.
    params = jnp.asarray([[3.0, 2.0, 2.0], [9.0, 9.0, 9.0]], dtype)
    x = jnp.asarray([1.0, 2.0, 3.0], dtype)
    dist = C.apply(params, x)
    assert dist.shape == (2,)
    assert float(dist[0]) == pytest.approx(np.sqrt(5), rel=1e-6)
    assert int(C.predict(params, x)) == 0
    new, best = C.update(params, x, learning_rate=0.1)
    assert int(best) == 0 and new.dtype == dtype
    np.testing.assert_allclose(np.round(np.asarray(new[0], np.float64), 1), [2.8, 2.0, 2.1])
    np.testing.assert_allclose(np.asarray(new[0]), [2.8, 2.0, 2.1], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(new[1]), [9.0, 9.0, 9.0])


def test_apply_and_predict_on_a_batch_match_numpy():
    rng = np.random.default_rng(0)
    W, X = rng.normal(size=(4, 3)), rng.normal(size=(7, 3))
    d = np.sqrt(((X[:, None] - W[None]) ** 2).sum(-1))
    got = C.apply(jnp.asarray(W), jnp.asarray(X))
    assert got.shape == (7, 4)
    np.testing.assert_allclose(np.asarray(got), d, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(C.predict(jnp.asarray(W), jnp.asarray(X))), d.argmin(1))


def _np_online(W, X, eta, sigma=None, epochs=1):
    W = W.copy()
    winners, dists = [], []
    for _ in range(epochs):
        for x in X:
            d = W - x
            sq = (d ** 2).sum(1)
            best = int(np.argmin(sq))
            if sigma is None:
                theta = (np.arange(len(W)) == best).astype(float)
            else:
                theta = np.exp(-((np.arange(len(W)) - best) ** 2) / (2 * sigma ** 2))
            W = W - eta * theta[:, None] * d
            winners.append(best)
            dists.append(np.sqrt(sq[best]))
    return W, winners, np.asarray(dists).reshape(epochs, -1).mean(1)


def _heroes():
    v = np.asarray(marvel_heroes().values, np.float64)
    return (v - v.mean(0)) / v.std(0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_online_wta_and_wtm_replay_numpy_on_marvel_heroes(dtype):
    X = _heroes()
    W0 = X[[0, 4, 6, 8]] + 0.01
    tol = 1e-10 if dtype == jnp.float64 else 1e-5
    new, info = C.fit(jnp.asarray(X, dtype), params=jnp.asarray(W0, dtype), learning_rate=0.2, max_steps=3)
    want, want_winners, want_loss = _np_online(W0, X, 0.2, epochs=3)
    assert new.shape == (4, 6) and info.winners.shape == (48,) and int(info.num_steps) == 3
    assert info.loss_history.shape == (3,) and info.converged.shape == ()
    np.testing.assert_array_equal(np.asarray(info.winners), want_winners)
    np.testing.assert_allclose(np.asarray(new), want, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.asarray(info.loss_history), want_loss, rtol=tol)
    # converged: the third pass picked the same winners as the second
    same = want_winners[16:32] == want_winners[32:]
    assert bool(info.converged) == same
    new, info = C.fit(jnp.asarray(X, dtype), params=jnp.asarray(W0, dtype), learning_rate=0.2, sigma=0.8,
                      neighbourhood="gaussian", max_steps=3)
    want, want_winners, _ = _np_online(W0, X, 0.2, sigma=0.8, epochs=3)
    np.testing.assert_array_equal(np.asarray(info.winners), want_winners)
    np.testing.assert_allclose(np.asarray(new), want, rtol=tol, atol=tol)


def test_warm_start_continues_where_the_first_fit_stopped():
    X = jnp.asarray(_heroes())
    W0 = X[jnp.array([0, 4, 6])]
    two, _ = C.fit(X, params=W0, learning_rate=0.2, max_steps=2)
    one, _ = C.fit(X, params=W0, learning_rate=0.2, max_steps=1)
    again, _ = C.fit(X, params=one, learning_rate=0.2, max_steps=1)
    chex.assert_trees_all_close(again, two, rtol=1e-12)


def test_wtm_moves_neighbours_by_the_neighbourhood_function():
    params = jnp.asarray([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    x = jnp.asarray([0.0, 1.0])
    pos = jnp.asarray([[0.0], [1.0], [3.0]])
    new, best = C.update(params, x, learning_rate=0.5, sigma=1.0, neighbourhood="bubble", positions=pos * 0.9)
    # bubble with σ = 1: neurons at chain offsets 0 and 0.9 learn fully, the one at 2.7 not at all
    assert int(best) == 0
    np.testing.assert_allclose(np.asarray(new), [[0.0, 0.5], [0.5, 0.5], [5.0, 5.0]], rtol=1e-12)
    new, _ = C.update(params, x, learning_rate=0.5, sigma=1.0, neighbourhood="gaussian", positions=pos)
    theta = np.exp(-np.array([0.0, 1.0, 9.0]) / 2)
    want = np.array([[0, 0], [1, 0], [5, 5]]) - 0.5 * theta[:, None] * (np.array([[0, 0], [1, 0], [5, 5]]) - [0, 1])
    np.testing.assert_allclose(np.asarray(new), want, rtol=1e-12)


def test_batch_wta_is_a_lloyd_step_and_batch_wtm_matches_numpy():
    X = _heroes()
    W0 = X[[1, 3, 5]]
    new, info = C.fit_batch(jnp.asarray(X), params=jnp.asarray(W0), learning_rate=1.0, max_steps=1)
    assert info.winners.shape == (1, 16) and not bool(info.converged)
    d = ((X[:, None] - W0[None]) ** 2).sum(-1)
    labels = d.argmin(1)
    want = np.stack([X[labels == k].mean(0) for k in range(3)])
    np.testing.assert_allclose(np.asarray(new), want, rtol=1e-10)
    np.testing.assert_allclose(float(info.loss_history[0]), np.sqrt(d.min(1)).mean(), rtol=1e-10)
    new, info = C.fit_batch(jnp.asarray(X), params=jnp.asarray(W0), learning_rate=0.5, sigma=1.0,
                            neighbourhood="gaussian", max_steps=2)
    W = W0.copy()
    for _ in range(2):
        best = ((X[:, None] - W[None]) ** 2).sum(-1).argmin(1)
        theta = np.exp(-((np.arange(3)[None, :] - best[:, None]) ** 2) / 2)  # (n, m)
        target = theta.T @ X / theta.sum(0)[:, None]
        W = W - 0.5 * (W - target)
    np.testing.assert_allclose(np.asarray(new), W, rtol=1e-10)
    # batch WTA at η = 1 reaches a fixed point: converged once the assignment repeats
    _, info = C.fit_batch(jnp.asarray(X), params=jnp.asarray(W0), max_steps=30)
    assert bool(info.converged)


def test_vmap_over_initial_weights():
    X = jnp.asarray(_heroes())
    W0s = jnp.stack([X[jnp.array([0, 1, 2])], X[jnp.array([3, 4, 5])]])
    fit = lambda W: C.fit(X, params=W, learning_rate=0.1, neighbourhood="gaussian")  # noqa: E731
    batched, info = jax.vmap(fit)(W0s)
    assert batched.shape == (2, 3, 6) and info.winners.shape == (2, 16)
    for i in range(2):
        single, _ = fit(W0s[i])
        chex.assert_trees_all_close(batched[i], single, rtol=1e-12)


def test_init_picks_distinct_samples_and_bfloat16_stays_finite():
    X = jnp.asarray(_heroes(), jnp.bfloat16)
    params = C.init(jax.random.key(0), X, num_neurons=5)
    assert params.shape == (5, 6)
    rows = {tuple(np.asarray(r, np.float32)) for r in params}
    assert len(rows) == 5
    assert all((np.asarray(X, np.float32) == np.array(r)).all(1).any() for r in rows)
    params, _ = C.fit(X, params=params, learning_rate=0.3, max_steps=2, neighbourhood="mexican_hat")
    params, info = C.fit_batch(X, params=params, max_steps=2)
    assert params.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(params, np.float32)))
    assert np.all(np.isfinite(np.asarray(info.loss_history, np.float32)))


def test_bad_input_raises():
    X = jnp.asarray(_heroes())
    with pytest.raises(ValueError, match="num_neurons must be <= the number of samples"):
        C.init(jax.random.key(0), X, num_neurons=17)
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        C.init(0, X, num_neurons=3)
    params = X[:3]
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        C.fit(X.at[1, 1].set(jnp.nan), params=params)
    with pytest.raises(ValueError, match="x must have 6 features"):
        C.fit(X[:, :4], params=params)
    with pytest.raises(ValueError, match="x must have 6 features"):
        C.update(params, X[0, :4])
    with pytest.raises(ValueError, match="neighbourhood must be one of"):
        C.fit(X, params=params, neighbourhood="cone")
    with pytest.raises(ValueError, match="positions must have one row per neuron"):
        C.fit(X, params=params, neighbourhood="gaussian", positions=jnp.zeros((4, 1)))
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        C.fit(X, params=params, learning_rate=-0.1)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        C.fit_batch(X, params=params, max_steps=0)
    with pytest.raises(TypeError):
        C.update(params, X[0], 0.1)  # hyperparameters are keyword-only


# ---- non-finite updates ----------------------------------------------------------------------------------


def _np_wta_guarded(W, X, eta, passes):
    """Online WTA in W's dtype, stopping before the first update whose squared weight norms overflow:
    (weights, update index or -1)."""
    W = W.copy()
    for u in range(passes * len(X)):
        x = X[u % len(X)]
        with np.errstate(over="ignore", invalid="ignore"):
            d = W - x
            best = int(np.argmin((d.astype(np.float64) ** 2).sum(1)))
            cand = W.copy()
            cand[best] = W[best] - eta * d[best]
        with np.errstate(over="ignore", invalid="ignore"):
            norms = (cand * cand).sum(1)  # in W's dtype, as the winner search squares distances
        if not np.all(np.isfinite(norms)):
            return W, u
        W = cand
    return W, -1


def test_online_fit_with_learning_rate_100_stops_before_the_first_overflow():
    # Each WTA update multiplies the winner's offset from its example by 1 − η = −99: float32 overflows
    # within a few passes. The fit used to return NaN weights without a word.
    X = _heroes().astype(np.float32)
    W0 = X[[0, 4, 6, 8]] + np.float32(0.01)
    want, bad_update = _np_wta_guarded(W0, X, np.float32(100.0), passes=10)
    assert bad_update > 0
    n = len(X)
    with pytest.warns(RuntimeWarning, match=rf"competitive\.fit: pass {bad_update // n} made the weights"):
        w, info = C.fit(jnp.asarray(X), params=jnp.asarray(W0), learning_rate=100.0, max_steps=10)
    assert w.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(w)))
    np.testing.assert_allclose(np.asarray(w), want, rtol=1e-4)
    assert bool(info.nonfinite) and not bool(info.converged)
    assert int(info.first_nonfinite_step) == int(info.num_steps) == bad_update // n
    winners = np.asarray(info.winners)
    assert np.all(winners[:bad_update] >= 0) and np.all(winners[bad_update:] == -1)
    loss = np.asarray(info.loss_history)
    assert np.all(np.isfinite(loss[: bad_update // n])) and np.all(np.isnan(loss[bad_update // n:]))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_batch_fit_stops_before_an_overflowing_pass(dtype):
    # η = 1e15: pass 0 moves each winner to about 1e15·(mean − w), ‖w‖² about 1e30, finite; pass 1 to about
    # 1e30, whose square leaves float32 and bfloat16.
    X = jnp.asarray(_heroes(), dtype)
    W0 = X[jnp.array([0, 4, 6, 8])]
    with pytest.warns(RuntimeWarning, match=r"competitive\.fit_batch: pass 1 made the weights non-finite"):
        w, info = C.fit_batch(X, params=W0, learning_rate=1e15, max_steps=3)
    one, one_info = C.fit_batch(X, params=W0, learning_rate=1e15, max_steps=1)
    assert not bool(one_info.nonfinite)
    np.testing.assert_array_equal(np.asarray(w, np.float32), np.asarray(one, np.float32))
    assert int(info.num_steps) == 1 and int(info.first_nonfinite_step) == 1 and not bool(info.converged)
    assert np.all(np.asarray(info.winners)[1:] == -1) and np.all(np.asarray(info.winners)[0] >= 0)


def test_wtm_with_vanishing_sigma_is_wta_not_nan():
    # σ = 1e-20: 2σ² underflows to 0 in float32; Θ must be the σ → 0 limit (the winner alone), which is WTA.
    X = jnp.asarray(_heroes(), jnp.float32)
    W0 = X[jnp.array([0, 4, 6, 8])] + 0.01
    wtm, _ = C.fit(X, params=W0, learning_rate=0.3, neighbourhood="gaussian", sigma=1e-20, max_steps=2)
    want, _, _ = _np_online(np.asarray(W0, np.float64), np.asarray(X, np.float64), 0.3, epochs=2)
    np.testing.assert_allclose(np.asarray(wtm), want, rtol=1e-5, atol=1e-6)
