"""Kohonen SOM: grids, neighbourhoods, schedules and training replayed against MiniSom; map-quality measures."""

import math
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.datasets import load_mnist, marvel_heroes
from jaxmath.unsupervised import neighbourhoods as NB
from jaxmath.unsupervised import som as S
from jaxmath.unsupervised import som_grid as G

minisom = pytest.importorskip("minisom")
KEY = jax.random.key(0)  # method="pca" checks the key but does not use it


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
    got = NB.get(name)(pos - pos[win[0] * cols + win[1]], sigma=sigma)
    assert got.shape == (rows * cols,)
    np.testing.assert_allclose(np.asarray(got).reshape(rows, cols), want, rtol=1e-12, atol=1e-12)


def test_neighbourhoods_by_hand():
    offsets = jnp.asarray([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [2.0, 0.0]], jnp.float32)
    np.testing.assert_allclose(np.asarray(NB.gaussian(offsets, sigma=1.0)), np.exp([0, -0.5, -1, -2]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(NB.mexican_hat(offsets, sigma=1.0)),
                               [1, 0, -np.exp(-1), -3 * np.exp(-2)], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(NB.bubble(offsets, sigma=2.0)), [1, 1, 1, 0])
    with pytest.raises(TypeError):
        NB.gaussian(offsets, 1.0)  # σ is keyword-only


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
    state = S.init(KEY, jnp.asarray(X), rows=4, cols=5, method="pca")
    assert state.shape == (4, 5, 6)
    m = _minisom(4, 5, 6, state, sigma=sigma, learning_rate=0.5, neighborhood_function=neighbourhood,
                 topology=topology)
    m.train(X, 100)
    new, info = S.fit(jnp.asarray(X), params=state, max_steps=100, sigma=sigma, learning_rate=0.5,
                      neighbourhood=neighbourhood, topology=topology)
    assert new.shape == (4, 5, 6) and info.winners.shape == (100,) and int(info.num_steps) == 100
    assert info.loss_history.shape == (100,) and not bool(info.converged)
    np.testing.assert_allclose(np.asarray(new), m.get_weights(), rtol=1e-7, atol=1e-7)
    qe = float(S.quantization_error(new, jnp.asarray(X)))
    assert qe == pytest.approx(m.quantization_error(X), rel=1e-6)
    te = float(S.topographic_error(new, jnp.asarray(X), topology=topology))
    assert te == pytest.approx(m.topographic_error(X), abs=1e-12)


def test_online_training_float32_close_to_minisom():
    X = _heroes(np.float32)
    state = S.init(KEY, jnp.asarray(X), rows=3, cols=3, method="pca")
    m = _minisom(3, 3, 6, state, sigma=1.0, learning_rate=0.5,
                 decay_function="linear_decay_to_zero", sigma_decay_function="linear_decay_to_one")
    m.train(X, 48)
    new, _ = S.fit(jnp.asarray(X), params=state, max_steps=48, sigma=1.0, learning_rate=0.5,
                   learning_rate_decay="linear_to_zero", sigma_decay="linear_to_one")
    assert new.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(new), m.get_weights(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_batch_training_replays_minisom_train_batch_offline(topology):
    X = _heroes()
    state = S.init(KEY, jnp.asarray(X), rows=3, cols=5, method="pca")
    m = _minisom(3, 5, 6, state, sigma=1.2, learning_rate=0.7, topology=topology)
    m.train_batch_offline(X, 15)
    new, info = S.fit_batch(jnp.asarray(X), params=state, max_steps=15, sigma=1.2, learning_rate=0.7,
                            topology=topology)
    np.testing.assert_allclose(np.asarray(new), m.get_weights(), rtol=1e-10, atol=1e-10)
    assert info.winners.shape == (15, 16) and info.loss_history.shape == (15,) and int(info.num_steps) == 15
    # the loss history is the quantization error of the weights each step starts from
    assert float(info.loss_history[0]) == pytest.approx(float(S.quantization_error(state, jnp.asarray(X))),
                                                        rel=1e-10)
    assert bool(info.converged) == bool(np.array_equal(info.winners[-1], info.winners[-2]))


def test_quantization_error_within_5_percent_of_minisom_on_mnist_independent_inits():
    images, _ = load_mnist("train[:300]")
    X = images.reshape(300, -1).astype(np.float64) / 255.0
    m = minisom.MiniSom(5, 5, 784, sigma=1.5, learning_rate=0.5, random_seed=3)
    m.random_weights_init(X)
    m.train(X, 900, random_order=True)
    state = S.init(jax.random.key(3), jnp.asarray(X), rows=5, cols=5)
    state, _ = S.fit(jnp.asarray(X), params=state, max_steps=900, sigma=1.5, learning_rate=0.5,
                     key=jax.random.key(4))
    ours = float(S.quantization_error(state, jnp.asarray(X)))
    theirs = m.quantization_error(X)
    assert abs(ours - theirs) <= 0.05 * theirs


def test_map_measures_match_minisom():
    X = _heroes()
    state = S.init(KEY, jnp.asarray(X), rows=4, cols=5, method="pca")
    state, _ = S.fit(jnp.asarray(X), params=state, max_steps=64, sigma=1.5)
    w = np.asarray(state)
    for topology in ("rectangular", "hexagonal"):
        m = _minisom(4, 5, 6, w, topology=topology)
        for scaling in ("sum", "mean"):
            u = S.u_matrix(state, topology=topology, scaling=scaling)
            assert u.shape == (4, 5)
            np.testing.assert_allclose(np.asarray(u), m.distance_map(scaling=scaling), rtol=1e-12)
    m = _minisom(4, 5, 6, w)
    bmus = np.asarray(S.best_matching_units(state, jnp.asarray(X)))
    assert bmus.shape == (16, 2)
    assert [tuple(b) for b in bmus] == [tuple(int(i) for i in m.winner(x)) for x in X]
    hits = S.winner_map(state, jnp.asarray(X))
    assert hits.shape == (4, 5) and int(hits.sum()) == 16
    np.testing.assert_array_equal(np.asarray(hits), m.activation_response(X))


def test_init_random_uses_samples_and_pca_matches_numpy():
    X = _heroes()
    state = S.init(jax.random.key(6), jnp.asarray(X), rows=3, cols=4)
    flat = np.asarray(state).reshape(12, 6)
    assert state.shape == (3, 4, 6)
    assert all((X == row).all(1).any() for row in flat)
    pca = np.asarray(S.init(KEY, jnp.asarray(X), rows=3, cols=4, method="pca"))
    vals, vecs = np.linalg.eigh(np.cov(X, rowvar=False))
    v = vecs[:, ::-1][:, :2]
    v = v * np.sign(v[np.abs(v).argmax(0), [0, 1]]) * np.sqrt(vals[::-1][:2])
    want = np.array([[X.mean(0) + a * v[:, 0] + b * v[:, 1] for b in np.linspace(-1, 1, 4)]
                     for a in np.linspace(-1, 1, 3)])
    np.testing.assert_allclose(pca, want, rtol=1e-9, atol=1e-9)


def test_training_on_heroes_lowers_quantization_error():
    X = jnp.asarray(_heroes(np.float32))
    state = S.init(KEY, X, rows=3, cols=3, method="pca")
    before = float(S.quantization_error(state, X))
    state, info = S.fit(X, params=state, max_steps=160, sigma=1.0, learning_rate=0.5)
    after = float(S.quantization_error(state, X))
    assert after < 0.9 * before
    # the online loss history (distance of each step's example to its winner) falls with it
    hist = np.asarray(info.loss_history, np.float64)
    assert hist[-16:].mean() < 0.9 * hist[:16].mean()


def test_vmap_over_shuffle_keys_matches_separate_runs():
    X = jnp.asarray(_heroes())
    state = S.init(jax.random.key(7), X, rows=3, cols=3)
    keys = jax.random.split(jax.random.key(8), 3)
    batched, _ = jax.vmap(lambda k: S.fit(X, params=state, max_steps=32, key=k))(keys)
    assert batched.shape == (3, 3, 3, 6)
    for i in range(3):
        single, _ = S.fit(X, params=state, max_steps=32, key=keys[i])
        chex.assert_trees_all_close(batched[i], single, atol=1e-12)


def test_bfloat16_stays_finite():
    X = jnp.asarray(_heroes(np.float32), jnp.bfloat16)
    state = S.init(jax.random.key(9), X, rows=3, cols=3)
    state, info = S.fit(X, params=state, max_steps=32, neighbourhood="mexican_hat")
    assert np.all(np.isfinite(np.asarray(info.loss_history, np.float32)))
    state, _ = S.fit_batch(X, params=state, max_steps=3)
    assert state.dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(state, np.float32)))
    assert np.isfinite(float(S.quantization_error(state, X)))


def test_bad_input_raises_before_compiling():
    X = jnp.asarray(_heroes())
    with pytest.raises(ValueError, match="rows must be >= 1"):
        S.init(jax.random.key(0), X, rows=0, cols=3)
    with pytest.raises(ValueError, match="cols must be >= 1"):
        S.init(jax.random.key(0), X, rows=3, cols=0)
    with pytest.raises(ValueError, match="rows must be >= 1"):
        S.quantization_error(jnp.zeros((0, 3, 6)), X)
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        S.init(None, X, rows=3, cols=3, method="pca")
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        S.init(jax.random.key(0), X.at[2, 2].set(jnp.nan), rows=3, cols=3)
    state = S.init(jax.random.key(0), X, rows=3, cols=3)
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        S.fit(X.at[0, 0].set(jnp.inf), params=state)
    with pytest.raises(ValueError, match="neighbourhood must be one of"):
        S.fit(X, params=state, neighbourhood="triangle")
    with pytest.raises(ValueError, match="topology must be one of"):
        S.fit_batch(X, params=state, topology="toroidal")
    with pytest.raises(ValueError, match="sigma must be > 0"):
        S.fit(X, params=state, sigma=0.0)
    with pytest.raises(ValueError, match="learning_rate_decay must be one of"):
        S.fit(X, params=state, learning_rate_decay="cosine")
    with pytest.raises(ValueError, match=r"x must have 6 features"):
        S.fit(X[:, :5], params=state)
    with pytest.raises(ValueError, match=r"x must have 6 features"):
        jax.jit(S.quantization_error)(state, X[:, :5])  # static checks also raise under an outer jit


def test_new_data_and_hyperparameters_reuse_the_compiled_epoch_and_public_call_works_under_jit():
    X = jnp.asarray(_heroes())
    state = S.init(KEY, X, rows=3, cols=3, method="pca")

    def decay(p0, s, T):  # the library calls it only while tracing its jitted epoch
        return p0 / (1 + s / (T / 2))

    chex.clear_trace_counter()
    counted = chex.assert_max_traces(decay, n=1)
    rng = np.random.default_rng(0)
    outs = []
    for lr, sig in [(0.5, 1.0), (0.3, 1.2), (0.1, 2.0)]:  # new data of the same shape and new η(0), σ(0)
        x = X + jnp.asarray(rng.normal(0, 0.1, X.shape))
        outs.append(S.fit(x, params=state, max_steps=16, learning_rate=lr, sigma=sig,
                          learning_rate_decay=counted)[0])
    assert not np.allclose(np.asarray(outs[0]), np.asarray(outs[1]))
    with pytest.raises(AssertionError, match="traced > 1 times"):  # a new static shape does retrace
        S.fit(X, params=state, max_steps=17, learning_rate_decay=counted)
    jitted = jax.jit(lambda X, W: S.quantization_error(S.fit(X, params=W, max_steps=16)[0], X))
    want = S.quantization_error(S.fit(X, params=state, max_steps=16)[0], X)
    np.testing.assert_allclose(float(jitted(X, state)), float(want), rtol=1e-12)


def _fit_both(params, x, *, max_steps, key=None, learning_rate=0.5, **kw):
    args = (params, x, learning_rate, 2.0, key if key is not None else KEY, max_steps, kw.get("neighbourhood", "gaussian"),
            kw.get("topology", "rectangular"), G.decay("asymptotic"), G.decay("asymptotic"), key is not None, None)
    return S._fit_online(*args), S._fit_online_reference(*args)


@pytest.mark.parametrize("neighbourhood,topology", [("gaussian", "rectangular"), ("bubble", "hexagonal")])
def test_tuned_online_epoch_matches_the_plain_update(neighbourhood, topology):
    # 10 x 10 x 784 float64 is 627 KiB: on CPU the tuned epoch splits the neurons into 3 blocks, and 301 steps
    # make 2 chunks of 151 with one padded step, so ‖w‖² is carried, refreshed once, and padding is dropped.
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.random((120, 784)))
    params = x[:100].reshape(10, 10, 784) + jnp.asarray(rng.normal(0, 0.05, (10, 10, 784)))
    if jax.default_backend() == "cpu":
        assert len(S._row_blocks(100, 784, 8)) == 3
    (w, winners, dists, bad), (w_ref, winners_ref, dists_ref, bad_ref) = _fit_both(
        params, x, max_steps=301, key=jax.random.key(2), neighbourhood=neighbourhood, topology=topology)
    assert int(bad) == int(bad_ref) == -1
    assert w.shape == (10, 10, 784) and winners.shape == dists.shape == (301,)
    np.testing.assert_array_equal(np.asarray(winners), np.asarray(winners_ref))
    chex.assert_trees_all_close((w, dists), (w_ref, dists_ref), rtol=1e-9, atol=1e-9)
    # and the public fit runs the tuned epoch
    new, info = S.fit(x, params=params, max_steps=301, learning_rate=0.5, sigma=2.0, key=jax.random.key(2),
                      neighbourhood=neighbourhood, topology=topology)
    chex.assert_trees_all_close((new, info.winners, info.loss_history), (w, winners, dists), rtol=0, atol=0)


def test_apply_and_predict_match_numpy():
    X = _heroes()
    W = np.asarray(S.init(KEY, jnp.asarray(X), rows=2, cols=3, method="pca"))
    d = np.sqrt(((X[:, None] - W.reshape(6, 6)[None]) ** 2).sum(-1))
    got = S.apply(jnp.asarray(W), jnp.asarray(X))
    assert got.shape == (16, 2, 3)
    np.testing.assert_allclose(np.asarray(got).reshape(16, 6), d, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(S.predict(jnp.asarray(W), jnp.asarray(X))), d.argmin(1))


def test_warm_start_batch_fit_continues_the_same_schedule():
    # With constant η and σ, two batch fits of 3 steps are one of 6: the second starts from the first's weights.
    X = jnp.asarray(_heroes())
    state = S.init(KEY, X, rows=3, cols=3, method="pca")
    kw = dict(learning_rate=0.5, sigma=1.0, learning_rate_decay="constant", sigma_decay="constant")
    six, _ = S.fit_batch(X, params=state, max_steps=6, **kw)
    three, _ = S.fit_batch(X, params=state, max_steps=3, **kw)
    again, _ = S.fit_batch(X, params=three, max_steps=3, **kw)
    chex.assert_trees_all_close(again, six, rtol=1e-12)


# ---- non-finite steps and degenerate maps ------------------------------------------------------------------


def _np_online_guarded(W, X, etas, sigmas, pos):
    """Online SOM in NumPy (gaussian Θ, sequential order), stopping before the first step that takes some
    ‖w_i‖² past the range of the dtype it is accumulated in (at least float32) or some weight past its own
    dtype's range: returns (weights, index of that step or -1)."""
    W = W.reshape(-1, W.shape[-1]).copy()
    big = float(np.finfo(W.dtype).max)
    limit = min(big * big, float(np.finfo(np.float64 if W.dtype == np.float64 else np.float32).max))
    for s in range(len(etas)):
        x = X[s % len(X)]
        best = int(np.argmin(((W.astype(np.float64) - x) ** 2).sum(1)))
        off = ((pos - pos[best]) ** 2).sum(1)
        theta = np.exp(-off / (2 * sigmas[s] ** 2)).astype(W.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            cand = W + (etas[s] * theta)[:, None] * (x - W)
            norms = (cand.astype(np.float64) ** 2).sum(1)
        if not np.all(norms <= limit) or not np.all(np.isfinite(cand)):
            return W, s
        W = cand
    return W, -1


def test_online_fit_with_learning_rate_100_stops_before_the_first_overflow_and_says_which_step():
    # float32: each step multiplies the winner's distance to its example by about η − 1 ≈ 99, so ‖w‖² leaves
    # float32 after a few dozen steps (the reproducer gave NaN weights without a word).
    X = _heroes(np.float32)
    W0 = S.init(KEY, jnp.asarray(X), rows=3, cols=3, method="pca")
    T, lr = 60, 100.0
    s = np.arange(T, dtype=np.float32)
    etas, sigmas = (lr / (1 + s / (T / 2))).astype(np.float32), (1.0 / (1 + s / (T / 2))).astype(np.float32)
    want, want_step = _np_online_guarded(np.asarray(W0), X, etas, sigmas, G.grid_coordinates(3, 3))
    assert 0 < want_step < T
    with pytest.warns(RuntimeWarning, match=rf"som\.fit: step {want_step} made the weights non-finite"):
        w, info = S.fit(jnp.asarray(X), params=W0, max_steps=T, learning_rate=lr, sigma=1.0)
    assert w.shape == (3, 3, 6) and w.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(w)))
    assert bool(info.nonfinite) and not bool(info.converged)
    assert int(info.first_nonfinite_step) == int(info.num_steps) == want_step
    np.testing.assert_allclose(np.asarray(w).reshape(9, 6), want, rtol=1e-4)
    loss = np.asarray(info.loss_history)
    assert np.all(np.isfinite(loss[:want_step])) and np.all(np.isnan(loss[want_step:]))
    assert np.all(np.asarray(info.winners)[want_step:] == -1)
    # the plain reference (σ = 2 here) stops at the same step as the tuned epoch, with the same weights
    (wt, _, _, bad), (wr, _, _, bad_ref) = _fit_both(W0, jnp.asarray(X), max_steps=T, learning_rate=lr)
    assert 0 < int(bad) == int(bad_ref) < T
    np.testing.assert_allclose(np.asarray(wt), np.asarray(wr), rtol=1e-4)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.bfloat16])
def test_online_fit_rejects_a_first_step_out_of_range_and_returns_the_start(dtype):
    X = jnp.asarray(_heroes(), dtype)
    W0 = S.init(KEY, X, rows=2, cols=2, method="pca")
    lr = 1e200 if dtype == jnp.float64 else 1e30  # either way η·(x − w) squared leaves the dtype at step 0
    with pytest.warns(RuntimeWarning, match="step 0 made the weights non-finite"):
        w, info = S.fit(X, params=W0, max_steps=5, learning_rate=lr)
    assert w.dtype == dtype
    np.testing.assert_array_equal(np.asarray(w, np.float64), np.asarray(W0, np.float64))
    assert int(info.num_steps) == 0 and int(info.first_nonfinite_step) == 0 and bool(info.nonfinite)


def test_batch_fit_stops_before_an_overflowing_step():
    # η = 1e15, constant: step 0 moves w to about 1e15·(target − w) (‖w‖² about 1e30, in float32's range),
    # step 1 to about 1e30, whose square is not.
    X = jnp.asarray(_heroes(np.float32))
    W0 = S.init(KEY, X, rows=2, cols=2, method="pca")
    kw = dict(learning_rate=1e15, learning_rate_decay="constant", sigma_decay="constant")
    with pytest.warns(RuntimeWarning, match=r"som\.fit_batch: step 1 made the weights non-finite"):
        w, info = S.fit_batch(X, params=W0, max_steps=4, **kw)
    one, one_info = S.fit_batch(X, params=W0, max_steps=1, **kw)
    assert not bool(one_info.nonfinite) and int(one_info.first_nonfinite_step) == -1
    np.testing.assert_array_equal(np.asarray(w), np.asarray(one))
    assert int(info.num_steps) == 1 and bool(info.nonfinite) and not bool(info.converged)
    assert np.isfinite(float(info.loss_history[0])) and np.all(np.isnan(np.asarray(info.loss_history[1:])))
    # one step by hand: w ← (1 − η)·w + η·(Θ-weighted mean of x), Θ gaussian with σ = 1 on the grid
    Xn, Wn = np.asarray(X, np.float64), np.asarray(W0, np.float64).reshape(4, 6)
    best = ((Xn[:, None] - Wn[None]) ** 2).sum(-1).argmin(1)
    pos = G.grid_coordinates(2, 2)
    theta = np.exp(-((pos[best][:, None] - pos[None]) ** 2).sum(-1) / 2)
    hand = (1 - 1e15) * Wn + 1e15 * (theta.T @ Xn) / theta.sum(0)[:, None]
    np.testing.assert_allclose(np.asarray(one, np.float64).reshape(4, 6), hand, rtol=1e-4)


@pytest.mark.parametrize("neighbourhood", ["gaussian", "mexican_hat"])
@pytest.mark.parametrize("sigma", [1e-19, 1e-20, 1e-30])
def test_vanishing_sigma_is_the_winner_only_limit_not_nan(neighbourhood, sigma):
    # 2σ² underflows to 0 in float32 below about 1e-19: Θ is then 1 at the winner and 0 elsewhere (σ → 0).
    fn = NB.get(neighbourhood)
    offsets = jnp.asarray(G.grid_coordinates(3, 3) - G.grid_coordinates(3, 3)[4], jnp.float32)
    theta = np.asarray(fn(offsets, sigma=sigma))
    np.testing.assert_array_equal(theta, (np.arange(9) == 4).astype(np.float32))
    X = _heroes(np.float32)
    W0 = S.init(KEY, jnp.asarray(X), rows=3, cols=3, method="pca")
    w, info = S.fit(jnp.asarray(X), params=W0, max_steps=20, sigma=sigma, neighbourhood=neighbourhood)
    T = 20
    s = np.arange(T, dtype=np.float32)
    etas = (0.5 / (1 + s / (T / 2))).astype(np.float32)
    W = np.asarray(W0).reshape(9, 6).copy()
    for step in range(T):  # only the winner moves
        x = X[step % len(X)]
        best = int(np.argmin(((W - x) ** 2).sum(1)))
        W[best] += etas[step] * (x - W[best])
    assert not bool(info.nonfinite)
    np.testing.assert_allclose(np.asarray(w).reshape(9, 6), W, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("shape", [(3, 4, 2), (1, 1, 3)])
def test_u_matrix_of_a_zero_spread_map_is_zero_not_nan(dtype, shape):
    # Every neuron at the same point (or a 1 × 1 map): no neighbour is any distance away, so there are no
    # boundaries; MiniSom's normalisation by the largest value would be 0/0.
    W = jnp.full(shape, 0.7, dtype)
    with pytest.warns(RuntimeWarning, match=f"u_matrix: the {shape[0]}x{shape[1]} map has no spread"):
        u = S.u_matrix(W)
        jax.effects_barrier()  # the warning comes from the compiled function's host callback
    assert u.shape == shape[:2] and u.dtype == dtype
    np.testing.assert_array_equal(np.asarray(u), np.zeros(shape[:2]))
    # one neuron moved away: the map has spread again, the largest entry is 1, and nothing is said
    W = W.at[0, 0].set(1.7)
    if shape != (1, 1, 3):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            u = np.asarray(S.u_matrix(W))
            jax.effects_barrier()
        assert u.max() == 1.0 and u[0, 0] == 1.0 and np.all(np.isfinite(u))
