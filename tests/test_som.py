"""Kohonen SOM: grids, neighbourhoods, schedules and training replayed against MiniSom; map-quality measures."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.datasets import load_mnist, marvel_heroes
from jaxmath.unsupervised import neighbourhoods as NB
from jaxmath.unsupervised import som as S
from jaxmath.unsupervised import som_grid as G

minisom = pytest.importorskip("minisom")


def _heroes(dtype=np.float64):
    v = np.asarray(marvel_heroes().values, np.float64)
    return ((v - v.mean(0)) / v.std(0)).astype(dtype)


def _minisom(rows, cols, d, weights, **kw):
    m = minisom.MiniSom(rows, cols, d, random_seed=0, **kw)
    m._weights = np.array(weights, np.float64, copy=True)
    return m


def test_grid_coordinates_rectangular_and_hexagonal():
    rect = G.grid_coordinates(2, 3)
    assert rect.shape == (6, 2)
    np.testing.assert_array_equal(rect, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    hexa = G.grid_coordinates(3, 3, topology="hexagonal")
    h = math.sqrt(3) / 2
    np.testing.assert_allclose(hexa[:3], [[0, 0], [0.5, h], [0, 2 * h]])
    # interior hexagonal neuron (1, 1) has exactly six neighbours at distance 1
    assert G.adjacency(3, 3, topology="hexagonal")[4].sum() == 6
    assert G.adjacency(3, 3)[4].sum() == 8
    # MiniSom's hexagonal layout is the same up to a translation when cols is odd
    m = minisom.MiniSom(4, 5, 2, topology="hexagonal")
    xx, yy = m.get_euclidean_coordinates()
    theirs = np.stack([xx.ravel(), yy.ravel()], 1)
    ours = G.grid_coordinates(4, 5, topology="hexagonal")
    np.testing.assert_allclose(ours - ours[0], theirs - theirs[0], atol=1e-12)


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
@pytest.mark.parametrize("name", ["gaussian", "mexican_hat", "bubble"])
def test_neighbourhoods_match_minisom(topology, name):
    rows, cols, win = 4, 5, (2, 1)
    sigma = 2.0 if name == "bubble" else 1.7  # MiniSom wants an integer σ for bubble
    m = minisom.MiniSom(rows, cols, 2, sigma=sigma, neighborhood_function=name, topology=topology)
    want = m.neighborhood(win, sigma)
    pos = G.grid_indices(rows, cols) if name == "bubble" else G.grid_coordinates(rows, cols, topology=topology)
    pos = jnp.asarray(pos, jnp.float64)
    got = NB.get(name)(pos - pos[win[0] * cols + win[1]], sigma)
    assert got.shape == (rows * cols,)
    np.testing.assert_allclose(np.asarray(got).reshape(rows, cols), want, rtol=1e-12, atol=1e-12)


def test_neighbourhoods_by_hand():
    offsets = jnp.asarray([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [2.0, 0.0]], jnp.float32)
    np.testing.assert_allclose(np.asarray(NB.gaussian(offsets, 1.0)), np.exp([0, -0.5, -1, -2]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(NB.mexican_hat(offsets, 1.0)),
                               [1, 0, -np.exp(-1), -3 * np.exp(-2)], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(NB.bubble(offsets, 2.0)), [1, 1, 1, 0])


@pytest.mark.parametrize("name", ["asymptotic", "linear_to_zero", "inverse_to_zero", "linear_to_one",
                                  "inverse_to_one"])
def test_decays_match_minisom(name):
    m = minisom.MiniSom(2, 2, 1)
    theirs = {"asymptotic": m._asymptotic_decay, "linear_to_zero": m._linear_decay_to_zero,
              "inverse_to_zero": m._inverse_decay_to_zero, "linear_to_one": m._linear_decay_to_one,
              "inverse_to_one": m._inverse_decay_to_one}[name]
    for t in (0, 3, 50, 99):
        assert G.decay(name)(2.5, t, 100) == pytest.approx(theirs(2.5, t, 100), rel=1e-12)


@pytest.mark.parametrize("topology,neighbourhood,sigma", [
    ("rectangular", "gaussian", 1.5), ("rectangular", "bubble", 2.0), ("rectangular", "mexican_hat", 1.0),
    ("hexagonal", "gaussian", 1.5), ("hexagonal", "bubble", 2.0),
])
def test_online_training_replays_minisom_float64(topology, neighbourhood, sigma):
    X = _heroes()
    # PCA init: distinct prototypes, so no exact ties in the winner search (random init may pick a sample twice)
    state = S.init(None, jnp.asarray(X), 4, 5, method="pca")
    assert state.weights.shape == (4, 5, 6)
    m = _minisom(4, 5, 6, state.weights, sigma=sigma, learning_rate=0.5, neighborhood_function=neighbourhood,
                 topology=topology)
    m.train(X, 100)
    new, winners = S.train(state, jnp.asarray(X), num_iterations=100, sigma=sigma, learning_rate=0.5,
                           neighbourhood=neighbourhood, topology=topology)
    assert new.weights.shape == (4, 5, 6) and winners.shape == (100,) and int(new.step) == 100
    np.testing.assert_allclose(np.asarray(new.weights), m.get_weights(), rtol=1e-7, atol=1e-7)
    qe = float(S.quantization_error(new.weights, jnp.asarray(X)))
    assert qe == pytest.approx(m.quantization_error(X), rel=1e-6)
    te = float(S.topographic_error(new.weights, jnp.asarray(X), topology=topology))
    assert te == pytest.approx(m.topographic_error(X), abs=1e-12)


def test_online_training_float32_close_to_minisom():
    X = _heroes(np.float32)
    state = S.init(None, jnp.asarray(X), 3, 3, method="pca")
    m = _minisom(3, 3, 6, state.weights, sigma=1.0, learning_rate=0.5,
                 decay_function="linear_decay_to_zero", sigma_decay_function="linear_decay_to_one")
    m.train(X, 48)
    new, _ = S.train(state, jnp.asarray(X), num_iterations=48, sigma=1.0, learning_rate=0.5,
                     learning_rate_decay="linear_to_zero", sigma_decay="linear_to_one")
    assert new.weights.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(new.weights), m.get_weights(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_batch_training_replays_minisom_train_batch_offline(topology):
    X = _heroes()
    state = S.init(None, jnp.asarray(X), 3, 5, method="pca")
    m = _minisom(3, 5, 6, state.weights, sigma=1.2, learning_rate=0.7, topology=topology)
    m.train_batch_offline(X, 15)
    new = S.train_batch(state, jnp.asarray(X), num_iterations=15, sigma=1.2, learning_rate=0.7, topology=topology)
    np.testing.assert_allclose(np.asarray(new.weights), m.get_weights(), rtol=1e-10, atol=1e-10)


def test_quantization_error_within_5_percent_of_minisom_on_mnist_independent_inits():
    images, _ = load_mnist("test[:300]")
    X = images.reshape(300, -1).astype(np.float64) / 255.0
    m = minisom.MiniSom(5, 5, 784, sigma=1.5, learning_rate=0.5, random_seed=3)
    m.random_weights_init(X)
    m.train(X, 900, random_order=True)
    state = S.init(jax.random.key(3), jnp.asarray(X), 5, 5)
    state, _ = S.train(state, jnp.asarray(X), num_iterations=900, sigma=1.5, learning_rate=0.5,
                       key=jax.random.key(4))
    ours = float(S.quantization_error(state.weights, jnp.asarray(X)))
    theirs = m.quantization_error(X)
    assert abs(ours - theirs) <= 0.05 * theirs


def test_map_measures_match_minisom():
    X = _heroes()
    state = S.init(None, jnp.asarray(X), 4, 5, method="pca")
    state, _ = S.train(state, jnp.asarray(X), num_iterations=64, sigma=1.5)
    w = np.asarray(state.weights)
    for topology in ("rectangular", "hexagonal"):
        m = _minisom(4, 5, 6, w, topology=topology)
        for scaling in ("sum", "mean"):
            u = S.u_matrix(state.weights, topology=topology, scaling=scaling)
            assert u.shape == (4, 5)
            np.testing.assert_allclose(np.asarray(u), m.distance_map(scaling=scaling), rtol=1e-12)
    m = _minisom(4, 5, 6, w)
    bmus = np.asarray(S.best_matching_units(state.weights, jnp.asarray(X)))
    assert bmus.shape == (16, 2)
    assert [tuple(b) for b in bmus] == [tuple(int(i) for i in m.winner(x)) for x in X]
    hits = S.winner_map(state.weights, jnp.asarray(X))
    assert hits.shape == (4, 5) and int(hits.sum()) == 16
    np.testing.assert_array_equal(np.asarray(hits), m.activation_response(X))


def test_init_random_uses_samples_and_pca_matches_numpy():
    X = _heroes()
    state = S.init(jax.random.key(6), jnp.asarray(X), 3, 4)
    flat = np.asarray(state.weights).reshape(12, 6)
    assert all((X == row).all(1).any() for row in flat)
    pca = np.asarray(S.init(None, jnp.asarray(X), 3, 4, method="pca").weights)
    vals, vecs = np.linalg.eigh(np.cov(X, rowvar=False))
    v = vecs[:, ::-1][:, :2]
    v = v * np.sign(v[np.abs(v).argmax(0), [0, 1]]) * np.sqrt(vals[::-1][:2])
    want = np.array([[X.mean(0) + a * v[:, 0] + b * v[:, 1] for b in np.linspace(-1, 1, 4)]
                     for a in np.linspace(-1, 1, 3)])
    np.testing.assert_allclose(pca, want, rtol=1e-9, atol=1e-9)


def test_training_on_heroes_lowers_quantization_error():
    X = jnp.asarray(_heroes(np.float32))
    state = S.init(None, X, 3, 3, method="pca")
    before = float(S.quantization_error(state.weights, X))
    state, _ = S.train(state, X, num_iterations=160, sigma=1.0, learning_rate=0.5)
    after = float(S.quantization_error(state.weights, X))
    assert after < 0.9 * before


def test_vmap_over_shuffle_keys_matches_separate_runs():
    X = jnp.asarray(_heroes())
    state = S.init(jax.random.key(7), X, 3, 3)
    keys = jax.random.split(jax.random.key(8), 3)
    batched, _ = jax.vmap(lambda k: S.train(state, X, num_iterations=32, key=k))(keys)
    assert batched.weights.shape == (3, 3, 3, 6)
    for i in range(3):
        single, _ = S.train(state, X, num_iterations=32, key=keys[i])
        np.testing.assert_allclose(np.asarray(batched.weights[i]), np.asarray(single.weights), atol=1e-12)


def test_bfloat16_stays_finite():
    X = jnp.asarray(_heroes(np.float32), jnp.bfloat16)
    state = S.init(jax.random.key(9), X, 3, 3)
    state, _ = S.train(state, X, num_iterations=32, neighbourhood="mexican_hat")
    state = S.train_batch(state, X, num_iterations=3)
    assert state.weights.dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(state.weights, np.float32)))
    assert np.isfinite(float(S.quantization_error(state.weights, X)))


def test_bad_input_raises_before_compiling():
    X = jnp.asarray(_heroes())
    with pytest.raises(ValueError, match="rows must be >= 1"):
        S.init(jax.random.key(0), X, 0, 3)
    with pytest.raises(ValueError, match="cols must be >= 1"):
        S.init(jax.random.key(0), X, 3, 0)
    with pytest.raises(ValueError, match="rows must be >= 1"):
        S.quantization_error(jnp.zeros((0, 3, 6)), X)
    with pytest.raises(ValueError, match="X contains 1 non-finite"):
        S.init(jax.random.key(0), X.at[2, 2].set(jnp.nan), 3, 3)
    state = S.init(jax.random.key(0), X, 3, 3)
    with pytest.raises(ValueError, match="X contains 1 non-finite"):
        S.train(state, X.at[0, 0].set(jnp.inf))
    with pytest.raises(ValueError, match="neighbourhood must be one of"):
        S.train(state, X, neighbourhood="triangle")
    with pytest.raises(ValueError, match="topology must be one of"):
        S.train(state, X, topology="toroidal")
    with pytest.raises(ValueError, match="sigma must be > 0"):
        S.train(state, X, sigma=0.0)
    with pytest.raises(ValueError, match="learning_rate_decay must be one of"):
        S.train(state, X, learning_rate_decay="cosine")
    with pytest.raises(ValueError, match=r"X must have 6 features"):
        S.train(state, X[:, :5])


def test_new_hyperparameter_values_reuse_the_compiled_epoch_and_public_call_works_under_jit():
    X = jnp.asarray(_heroes())
    state = S.init(None, X, 3, 3, method="pca")
    traces = []

    def counting_decay(p0, s, T):  # runs only while tracing
        traces.append(1)
        return p0 / (1 + s / (T / 2))

    outs = [S.train(state, X, num_iterations=16, learning_rate=lr, sigma=sig, learning_rate_decay=counting_decay)[0]
            for lr, sig in [(0.5, 1.0), (0.3, 1.2), (0.1, 2.0)]]
    assert len(traces) == 1  # η(0) and σ(0) are traced arguments: one compilation for all three
    assert not np.allclose(np.asarray(outs[0].weights), np.asarray(outs[1].weights))
    jitted = jax.jit(lambda X: S.quantization_error(S.train(state, X, num_iterations=16)[0].weights, X))
    want = S.quantization_error(S.train(state, X, num_iterations=16)[0].weights, X)
    np.testing.assert_allclose(float(jitted(X)), float(want), rtol=1e-12)
