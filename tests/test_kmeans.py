"""k-means: shapes, NumPy replays, scikit-learn's KMeans as the oracle, empty clusters, vmap, bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.unsupervised import _distances as D
from jaxmath.unsupervised import kmeans as K


def _blobs(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0, 0, 0], [5, 5, 0, 0], [0, 5, 5, 0], [5, 0, 0, 5]])
    X = np.concatenate([rng.normal(c, 1.2, (60, 4)) for c in centers] + [rng.normal(2.5, 3.0, (60, 4))])
    return X.astype(dtype)


def _np_lloyd_step(X, C):
    d = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)
    labels = d.argmin(1)
    new = np.stack([X[labels == k].mean(0) for k in range(len(C))])
    return new, labels


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_fit_shapes_and_dtypes(dtype):
    X = jnp.asarray(_blobs(), dtype)
    init = X[jnp.array([0, 60, 120, 180, 240])]
    centroids, r = K.fit(X, params=init)  # the restarts path: the MNIST test below
    assert centroids.shape == (5, 4) and centroids.dtype == dtype
    assert r.labels.shape == (300,) and r.labels.dtype == jnp.int32
    assert r.inertia.shape == () and r.num_steps.shape == () and r.converged.shape == ()
    assert r.loss_history.shape == (300,) and r.loss_history.dtype == dtype
    assert bool(r.converged)
    # loss history: the inertia each Lloyd iteration starts from, NaN after the last; Lloyd never raises it
    steps = int(r.num_steps)
    hist = np.asarray(r.loss_history, np.float64)
    assert np.all(np.isnan(hist[steps:])) and np.all(np.isfinite(hist[:steps]))
    Xn, C0 = np.asarray(X, np.float64), np.asarray(init, np.float64)
    want0 = ((Xn[:, None] - C0[None]) ** 2).sum(-1).min(1).sum()
    tol = 1e-10 if dtype == jnp.float64 else 1e-5
    np.testing.assert_allclose(hist[0], want0, rtol=tol)
    assert np.all(np.diff(hist[:steps]) <= tol * hist[0])
    assert hist[steps - 1] >= float(r.inertia) * (1 - tol)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_lloyd_step_matches_numpy(dtype):
    X = _blobs(1)
    C = X[[0, 70, 130, 190, 250]]
    new, labels = K.lloyd_step(jnp.asarray(C, dtype), jnp.asarray(X, dtype))
    assert new.shape == (5, 4) and labels.shape == (300,)
    want_new, want_labels = _np_lloyd_step(X, C)
    np.testing.assert_array_equal(np.asarray(labels), want_labels)
    tol = 1e-10 if dtype == jnp.float64 else 1e-5
    np.testing.assert_allclose(np.asarray(new), want_new, rtol=tol, atol=tol)


def test_inertia_predict_and_apply_match_numpy():
    X, C = _blobs(2), _blobs(3)[:7]
    d = ((X[:, None, :] - C[None]) ** 2).sum(-1)
    got = K.apply(jnp.asarray(C), jnp.asarray(X))
    assert got.shape == (300, 7)
    np.testing.assert_allclose(np.asarray(got), d, rtol=1e-10, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(K.predict(jnp.asarray(C), jnp.asarray(X))), d.argmin(1))
    np.testing.assert_allclose(float(K.inertia(jnp.asarray(C), jnp.asarray(X))), d.min(1).sum(), rtol=1e-10)
    labels = jnp.asarray(d.argmin(1), jnp.int32)
    np.testing.assert_allclose(float(K.inertia(jnp.asarray(C), jnp.asarray(X), labels)), d.min(1).sum(), rtol=1e-10)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_distance_trick_matches_the_plain_formula(dtype):
    # The tuned assignment (‖c‖² − 2·c·x, one matmul) against Σ_j (x_j − c_j)² on the same inputs: MNIST-like
    # scale (784 features, values in [0, 1]) where the expansion's cancellation is largest.
    rng = np.random.default_rng(15)
    X = jnp.asarray(rng.random((500, 784)), dtype)
    C = X[:10] + jnp.asarray(rng.normal(0, 0.05, (10, 784)), dtype)
    tuned, plain = D.squared_distances(X, C), D.squared_distances_reference(X, C)
    chex.assert_trees_all_close(tuned, plain, rtol=1e-10 if dtype == jnp.float64 else 1e-4, atol=0)
    ref = np.asarray(D.nearest_reference(X, C))
    got = np.asarray(K.predict(C, X))
    # labels agree except where two centroids are equally near within float rounding
    srt = np.sort(np.asarray(plain, np.float64), axis=1)
    clear = (srt[:, 1] - srt[:, 0]) > (1e-9 if dtype == jnp.float64 else 1e-3) * srt[:, 0]
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(got[clear], ref[clear])


@pytest.mark.parametrize("tol", [0.0, 1e-4])
def test_same_result_as_sklearn_from_same_initial_centroids_float64(tol):
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    X = _blobs(4)
    init = X[[0, 1, 2, 3, 4, 5]]  # poor start: several iterations before convergence
    sk = KMeans(6, init=init, n_init=1, algorithm="lloyd", tol=tol, max_iter=300).fit(X)
    centroids, r = K.fit(jnp.asarray(X), params=jnp.asarray(init), tol=tol)
    assert int(r.num_steps) == sk.n_iter_ > 2
    np.testing.assert_allclose(np.asarray(centroids), sk.cluster_centers_, rtol=0, atol=1e-5)
    np.testing.assert_allclose(float(r.inertia), sk.inertia_, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(r.labels), sk.labels_)


def test_same_result_as_sklearn_float32():
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    X = _blobs(5, np.float32)
    init = X[[10, 20, 30, 40, 50]]
    sk = KMeans(5, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=300).fit(X)
    centroids, r = K.fit(jnp.asarray(X), params=jnp.asarray(init), tol=0.0)
    assert centroids.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(centroids), sk.cluster_centers_, rtol=0, atol=1e-4)
    np.testing.assert_allclose(float(r.inertia), sk.inertia_, rtol=1e-5)


def test_empty_cluster_is_reseeded_at_farthest_point_like_sklearn():
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    X = _blobs(6)
    init = np.concatenate([X[[0, 100, 200]], np.full((1, 4), 1e3)])  # the last centroid wins no sample
    new, labels = K.lloyd_step(jnp.asarray(init), jnp.asarray(X))
    assert np.all(np.isfinite(np.asarray(new)))
    # NumPy replay: the farthest sample from its own centroid becomes the empty cluster's centroid.
    d = ((X[:, None] - init[None, :3]) ** 2).sum(-1)
    far = d.min(1).argmax()
    np.testing.assert_allclose(np.asarray(new[3]), X[far], rtol=1e-12)
    sk = KMeans(4, init=init, n_init=1, algorithm="lloyd", tol=0.0).fit(X)
    centroids, r = K.fit(jnp.asarray(X), params=jnp.asarray(init), tol=0.0)
    np.testing.assert_allclose(np.asarray(centroids), sk.cluster_centers_, atol=1e-5)
    np.testing.assert_allclose(float(r.inertia), sk.inertia_, rtol=1e-6)


def test_kmeans_plus_plus_picks_distinct_samples_one_per_separated_blob():
    rng = np.random.default_rng(7)
    centers = np.array([[0.0, 0], [100, 0], [0, 100], [100, 100]])
    X = np.concatenate([rng.normal(c, 1.0, (50, 2)) for c in centers])
    C = np.asarray(K.init(jax.random.key(1), jnp.asarray(X), num_clusters=4))
    assert C.shape == (4, 2)
    rows = [np.flatnonzero((X == c).all(1)) for c in C]
    assert all(len(r) == 1 for r in rows)  # every centroid is a sample of X
    blobs = sorted(int(r[0]) // 50 for r in rows)
    assert blobs == [0, 1, 2, 3]


def test_ten_restarts_within_one_percent_of_sklearn_on_mnist_slice():
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    from jaxmath.datasets import load_mnist

    threadpool_limits = pytest.importorskip("threadpoolctl").threadpool_limits

    images, _ = load_mnist("train[:400]")
    X = images.reshape(400, -1).astype(np.float64) / 255.0
    with threadpool_limits(1):  # the CI box has 2 cores; OpenMP oversubscription only slows it down
        sk = KMeans(10, n_init=10, random_state=0, algorithm="lloyd").fit(X)
    centroids, r = K.fit_restarts(jax.random.key(0), jnp.asarray(X), num_clusters=10, num_restarts=10)
    assert centroids.shape == (10, 784) and r.labels.shape == (400,) and r.inertia.shape == ()
    assert bool(r.converged)
    assert float(r.inertia) <= 1.01 * sk.inertia_
    # and the restarts help: the best of ten is no worse than a single run from the same first key
    _, one = K.fit_restarts(jax.random.key(0), jnp.asarray(X), num_clusters=10, num_restarts=1)
    assert float(r.inertia) <= float(one.inertia) + 1e-9
    # fit from k-means++'s init of the same key is the single-restart run
    first = jax.random.split(jax.random.key(0), 1)[0]
    _, single = K.fit(jnp.asarray(X), params=K.init(first, jnp.asarray(X), num_clusters=10))
    np.testing.assert_allclose(float(single.inertia), float(one.inertia), rtol=1e-9)


def test_vmap_over_datasets_matches_separate_runs():
    Xs = jnp.stack([jnp.asarray(_blobs(s)) for s in (8, 9, 10)])
    inits = Xs[:, :5]
    batched, info = jax.vmap(lambda X, C: K.fit(X, params=C))(Xs, inits)
    assert batched.shape == (3, 5, 4) and info.loss_history.shape == (3, 300)
    for i in range(3):
        single = K.fit(Xs[i], params=inits[i])
        chex.assert_trees_all_close((batched[i], jax.tree_util.tree_map(lambda a: a[i], info)), single,
                                    atol=1e-10)


def test_works_under_jit():
    X = jnp.asarray(_blobs(11))
    got = jax.jit(lambda X: K.fit(X, params=X[:4])[1].inertia)(X)
    np.testing.assert_allclose(float(got), float(K.fit(X, params=X[:4])[1].inertia), rtol=1e-12)


def test_bfloat16_stays_finite():
    X = jnp.asarray(_blobs(12), jnp.bfloat16)
    init = K.init(jax.random.key(0), X, num_clusters=4)
    centroids, r = K.fit(X, params=init, max_steps=20)
    assert centroids.dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(centroids, np.float32))) and np.isfinite(float(r.inertia))


def test_bad_input_raises_before_compiling():
    X = jnp.asarray(_blobs(13)[:10])
    with pytest.raises(ValueError, match="num_clusters"):
        K.fit_restarts(jax.random.key(0), X, num_clusters=11)
    with pytest.raises(ValueError, match="num_clusters"):
        K.init(jax.random.key(0), X, num_clusters=11)
    with pytest.raises(ValueError, match="num_clusters"):
        K.fit(X, params=jnp.zeros((11, 4)))
    with pytest.raises(ValueError, match=r"x contains 1 non-finite"):
        K.fit_restarts(jax.random.key(0), X.at[3, 2].set(jnp.nan), num_clusters=2)
    with pytest.raises(ValueError, match=r"params contains 1 non-finite"):
        K.fit(X, params=X[:2].at[0, 0].set(jnp.inf))
    with pytest.raises(ValueError, match=r"params \(centroids\) must have x's 4 features"):
        K.fit(X, params=jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"params \(centroids\) must have x's 4 features"):
        jax.jit(K.predict)(jnp.zeros((2, 3)), X)  # static checks also raise under an outer jit
    with pytest.raises(ValueError, match="tol"):
        K.fit_restarts(jax.random.key(0), X, num_clusters=2, tol=-1.0)
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        K.fit_restarts(jax.random.key(0), X[0], num_clusters=2)
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        K.init(0, X, num_clusters=2)
    with pytest.raises(TypeError):
        K.init(jax.random.key(0), X, 2)  # hyperparameters are keyword-only


def test_two_empty_clusters_take_the_two_farthest_samples():
    X = _blobs(14)
    init = np.concatenate([X[[0, 100]], np.full((1, 4), 1e3), np.full((1, 4), -1e3)])
    new, _ = K.lloyd_step(jnp.asarray(init), jnp.asarray(X))
    new = np.asarray(new)
    d = ((X[:, None] - init[None, :2]) ** 2).sum(-1)
    labels, far = d.argmin(1), np.argsort(-d.min(1))[:2]
    np.testing.assert_allclose(new[2], X[far[0]], rtol=1e-12)
    np.testing.assert_allclose(new[3], X[far[1]], rtol=1e-12)
    # the donors' means no longer count the two samples they gave away
    keep = np.ones(len(X), bool)
    keep[far] = False
    for k in range(2):
        np.testing.assert_allclose(new[k], X[keep & (labels == k)].mean(0), rtol=1e-10)


def test_warm_start_continues_lloyd_where_it_stopped():
    # Lloyd is deterministic: 2 iterations, then a fit from those centroids, equals the run that never stopped.
    X = jnp.asarray(_blobs(16))
    init = X[jnp.array([0, 1, 2, 3, 4])]
    full, info = K.fit(X, params=init, tol=0.0)
    part, part_info = K.fit(X, params=init, max_steps=2, tol=0.0)
    assert int(part_info.num_steps) == 2 and not bool(part_info.converged)
    rest, rest_info = K.fit(X, params=part, tol=0.0)
    assert int(rest_info.num_steps) == int(info.num_steps) - 2
    chex.assert_trees_all_close((rest, rest_info.inertia), (full, info.inertia), rtol=1e-12)
    # the restarted history is the tail of the uninterrupted one
    chex.assert_trees_all_close(rest_info.loss_history[: int(rest_info.num_steps)],
                                info.loss_history[2: int(info.num_steps)], rtol=1e-12)


def test_lloyd_loop_is_not_traced_again_for_new_data_of_the_same_shape():
    # The compiled Lloyd loop is reused: count the traces of the assignment inside it.
    chex.clear_trace_counter()
    X = jnp.asarray(_blobs(17))
    counted = chex.assert_max_traces(K._assign_update, n=1)
    original = K._assign_update
    try:
        K._assign_update = counted
        K._fit.clear_cache()
        a, _ = K.fit(X, params=X[:3], max_steps=7)
        b, _ = K.fit(X * 2 + 1, params=X[5:8], max_steps=7)  # new data and centroids, same shapes
        with pytest.raises(AssertionError, match="traced > 1 times"):  # the guard does see a new shape
            K.fit(X[:100], params=X[:3], max_steps=7)
    finally:
        K._assign_update = original
        K._fit.clear_cache()
    assert not np.allclose(np.asarray(a), np.asarray(b))


# ---- degenerate data and non-finite iterations ------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_identical_rows_with_k_above_1_warn_instead_of_a_silent_converged(dtype):
    # Ten copies of one point cannot make 3 clusters: every centroid ends on the point. Decision: warn (as
    # scikit-learn does), return the fixed point Lloyd's algorithm reaches; the warning says how many.
    X = jnp.ones((10, 2), dtype)
    with pytest.warns(RuntimeWarning, match=r"kmeans\.fit: only 1 distinct cluster\(s\) found for num_clusters=3"):
        C, info = K.fit(X, params=X[:3])
    np.testing.assert_array_equal(np.asarray(C), np.ones((3, 2)))
    assert not bool(info.nonfinite) and float(info.inertia) == 0.0
    if dtype == jnp.float32:  # the restarts share the check; one dtype is enough
        with pytest.warns(RuntimeWarning, match=r"kmeans\.fit_restarts: only 1 distinct cluster"):
            K.fit_restarts(jax.random.key(0), X, num_clusters=3, num_restarts=2)
    # two distinct points, repeated: k = 2 is fine and silent, k = 3 warns with 2
    X2 = jnp.asarray(np.repeat([[0.0, 0.0], [4.0, 1.0]], 5, axis=0), dtype)
    with pytest.warns(RuntimeWarning, match="only 2 distinct"):
        K.fit(X2, params=X2[jnp.array([0, 1, 5])])
    import warnings as _w

    with _w.catch_warnings():
        _w.simplefilter("error")
        C2, info2 = K.fit(X2, params=X2[jnp.array([0, 5])])
        K.fit(X, params=X[:1])  # k = 1 on identical rows is a valid clustering
    np.testing.assert_array_equal(np.sort(np.asarray(C2)[:, 0]), [0.0, 4.0])
    assert bool(info2.converged)


def test_an_overflowing_lloyd_iteration_is_not_taken():
    # Finite float32 samples near the top of the range: the cluster sum 3e38 + 3e38 (accumulated in float32)
    # is inf, so the first iteration's centroids are not finite. The fit keeps its starting centroids, says so.
    X = jnp.asarray([[3e38], [3e38], [0.0], [1.0]], jnp.float32)
    start = jnp.asarray([[3e38], [0.0]], jnp.float32)
    with pytest.warns(RuntimeWarning, match=r"kmeans\.fit: Lloyd iteration 0 made the centroids non-finite"):
        C, info = K.fit(X, params=start)
    np.testing.assert_array_equal(np.asarray(C), np.asarray(start))
    assert bool(info.nonfinite) and not bool(info.converged)
    assert int(info.num_steps) == 0 and int(info.first_nonfinite_step) == 0
    assert np.all(np.isnan(np.asarray(info.loss_history)))
    # the same data in float64 is an ordinary problem
    C64, info64 = K.fit(jnp.asarray(X, jnp.float64), params=jnp.asarray(start, jnp.float64))
    assert not bool(info64.nonfinite) and int(info64.first_nonfinite_step) == -1 and bool(info64.converged)
    np.testing.assert_allclose(np.sort(np.asarray(C64)[:, 0]), [0.5, 3e38], rtol=1e-7)
