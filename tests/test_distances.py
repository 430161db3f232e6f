"""Distances: shapes first, then values against scipy / scikit-learn / NumPy, gradients against jax.grad."""

import math

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import distances as D

TOL = {jnp.float64: 1e-10, jnp.float32: 1e-5}
FLOATS = [jnp.float32, jnp.float64, jnp.bfloat16]


def _points(dtype, n=6, m=5, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(n, d)), dtype), jnp.asarray(rng.normal(size=(m, d)), dtype)


# name -> (jaxmath function, kwargs, scipy cdist metric and kwargs)
SCIPY = {
    "euclidean": (D.euclidean, {}, ("euclidean", {})),
    "squared_euclidean": (D.squared_euclidean, {}, ("sqeuclidean", {})),
    "manhattan": (D.manhattan, {}, ("cityblock", {})),
    "chebyshev": (D.chebyshev, {}, ("chebyshev", {})),
    "minkowski": (D.minkowski, {"p": 3.0}, ("minkowski", {"p": 3.0})),
    "cosine": (D.cosine, {}, ("cosine", {})),
}


@pytest.mark.parametrize("dtype", FLOATS)
def test_shapes_broadcasting_and_dtypes(dtype):
    x = jnp.ones((2, 3, 4), dtype)
    y = jnp.zeros((3, 4), dtype)
    for name, (f, kw, _) in SCIPY.items():
        out = f(x, y, **kw)
        assert out.shape == (2, 3) and out.dtype == dtype, name
    assert D.jaccard(x, y).shape == (2, 3)
    assert D.great_circle(jnp.ones((5, 2), dtype), jnp.zeros((2,), dtype)).shape == (5,)
    X, Y = _points(dtype)
    for metric in ("euclidean", "manhattan", "cosine"):
        out = D.pairwise_distances(X, Y, metric=metric)
        assert out.shape == (6, 5) and out.dtype == dtype
    assert D.pairwise_distances(X).shape == (6, 6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_distances_match_scipy(dtype):
    from scipy.spatial import distance as sd

    X, Y = _points(dtype)
    Xn, Yn = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    for name, (f, kw, (sname, skw)) in SCIPY.items():
        expected = sd.cdist(Xn, Yn, sname, **skw)
        np.testing.assert_allclose(f(X[:, None, :], Y[None, :, :], **kw), expected, rtol=TOL[dtype], atol=TOL[dtype], err_msg=name)
        np.testing.assert_allclose(
            D.pairwise_distances(X, Y, metric=name, **kw), expected, rtol=10 * TOL[dtype], atol=10 * TOL[dtype], err_msg=name
        )
    # Jaccard on boolean sets, against scipy's boolean Jaccard
    rng = np.random.default_rng(1)
    A, B = rng.integers(0, 2, size=(6, 8)).astype(bool), rng.integers(0, 2, size=(5, 8)).astype(bool)
    A[0] = B[0] = False  # two empty sets: distance 0 by definition (scipy agrees)
    expected = sd.cdist(A, B, "jaccard")
    np.testing.assert_allclose(D.pairwise_distances(jnp.asarray(A), jnp.asarray(B), metric="jaccard"), expected, rtol=1e-6)
    np.testing.assert_allclose(D.jaccard(jnp.asarray(A, dtype)[:, None], jnp.asarray(B, dtype)[None]), expected, rtol=TOL[dtype])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_pairwise_matches_scikit_learn(dtype):
    from sklearn.metrics import pairwise as skp

    X, Y = _points(dtype, n=7, m=9, d=3, seed=2)
    Xn, Yn = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    tol = dict(rtol=10 * TOL[dtype], atol=10 * TOL[dtype])
    np.testing.assert_allclose(D.pairwise_distances(X, Y), skp.euclidean_distances(Xn, Yn), **tol)
    np.testing.assert_allclose(D.pairwise_distances(X, Y, metric="squared_euclidean"), skp.euclidean_distances(Xn, Yn, squared=True), **tol)
    np.testing.assert_allclose(D.pairwise_distances(X, Y, metric="manhattan"), skp.manhattan_distances(Xn, Yn), **tol)
    np.testing.assert_allclose(D.pairwise_distances(X, Y, metric="cosine"), skp.cosine_distances(Xn, Yn), **tol)
    # haversine: scikit-learn takes (lat, lon) in radians on the unit sphere
    rng = np.random.default_rng(3)
    P = np.stack([rng.uniform(-np.pi / 2, np.pi / 2, 6), rng.uniform(-np.pi, np.pi, 6)], axis=1)
    Q = np.stack([rng.uniform(-np.pi / 2, np.pi / 2, 4), rng.uniform(-np.pi, np.pi, 4)], axis=1)
    expected = skp.haversine_distances(P, Q)
    got = D.pairwise_distances(jnp.asarray(P, dtype), jnp.asarray(Q, dtype), metric="great_circle", radius=1.0, degrees=False)
    np.testing.assert_allclose(got, expected, **tol)
    np.testing.assert_allclose(
        D.great_circle(jnp.asarray(np.rad2deg(P), dtype)[:, None], jnp.asarray(np.rad2deg(Q), dtype)[None]),
        D.EARTH_RADIUS_KM * expected,
        rtol=10 * TOL[dtype],
    )


def test_pairwise_euclidean_never_builds_an_n_m_d_intermediate():
    X, Y = _points(jnp.float32, n=64, m=48, d=32)
    jaxpr = jax.make_jaxpr(lambda a, b: D.pairwise_distances(a, b))(X, Y)
    shapes = set()

    def walk(jp):
        for eqn in jp.eqns:
            for var in eqn.outvars:
                shapes.add(tuple(var.aval.shape))
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jaxpr.jaxpr)
    assert (64, 48) in shapes
    assert not any(len(s) == 3 for s in shapes), shapes


def test_hand_values():
    # Seed 000: w = (3, 2, 2), x = (1, 2, 3) → d = (2, 0, −1), Euclidean distance √5.
    w = jnp.asarray([3.0, 2.0, 2.0], jnp.float64)
    x = jnp.asarray([1.0, 2.0, 3.0], jnp.float64)
    np.testing.assert_allclose(D.euclidean(w, x), math.sqrt(5), rtol=1e-15)
    np.testing.assert_allclose(D.squared_euclidean(w, x), 5.0, rtol=1e-15)
    assert float(D.manhattan(w, x)) == 3.0 and float(D.chebyshev(w, x)) == 2.0
    np.testing.assert_allclose(D.minkowski(w, x, p=3), 9.0 ** (1 / 3), rtol=1e-15)
    assert float(D.minkowski(w, x, p=math.inf)) == 2.0
    np.testing.assert_allclose(D.minkowski(w, x, p=1), 3.0, rtol=1e-15)
    np.testing.assert_allclose(D.minkowski(w, x, p=2), math.sqrt(5), rtol=1e-15)
    # Jaccard: {0, 1} vs {0, 2} share 1 of 3 → distance 2/3; weighted: Σmin/Σmax = (1 + 0)/(2 + 3) → 0.8
    np.testing.assert_allclose(D.jaccard(jnp.asarray([1, 1, 0, 0]), jnp.asarray([1, 0, 1, 0])), 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(D.jaccard(jnp.asarray([1.0, 0.0], jnp.float64), jnp.asarray([2.0, 3.0], jnp.float64)), 0.8, rtol=1e-15)
    assert float(D.jaccard(jnp.zeros(4, jnp.float32), jnp.zeros(4, jnp.float32))) == 0.0  # 0/0 → distance 0
    # Cosine: orthogonal 1, opposite 2, parallel 0, zero vectors by convention
    e1, e2 = jnp.asarray([1.0, 0.0], jnp.float64), jnp.asarray([0.0, 1.0], jnp.float64)
    assert float(D.cosine(e1, e2)) == 1.0 and float(D.cosine(e1, -e1)) == 2.0 and float(D.cosine(e1, 5 * e1)) == 0.0
    z = jnp.zeros(2, jnp.float64)
    assert float(D.cosine(z, e1)) == 1.0 and float(D.cosine(z, z)) == 0.0


@pytest.mark.parametrize("dtype", FLOATS)
def test_great_circle_is_exact_for_identical_and_antipodal_points(dtype):
    half_circumference = math.pi * D.EARTH_RADIUS_KM
    pts = jnp.asarray([[0.0, 0.0], [90.0, 0.0], [45.0, 30.0], [-33.9, 151.2]], dtype)
    antipodes = jnp.asarray([[0.0, 180.0], [-90.0, 0.0], [-45.0, -150.0], [33.9, -28.8]], dtype)
    rtol = 1e-2 if dtype == jnp.bfloat16 else TOL[dtype]
    np.testing.assert_array_equal(np.asarray(D.great_circle(pts, pts), np.float64), 0.0)
    got = np.asarray(D.great_circle(pts, antipodes), np.float64)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, half_circumference, rtol=rtol)
    # radians and a unit sphere
    np.testing.assert_allclose(
        D.great_circle(jnp.asarray([0.0, 0.0], dtype), jnp.asarray([0.0, math.pi / 2], dtype), radius=1.0, degrees=False),
        math.pi / 2,
        rtol=rtol,
    )
    # Oslo → London, the familiar ~1150 km
    np.testing.assert_allclose(
        D.great_circle(jnp.asarray([59.9139, 10.7522], dtype), jnp.asarray([51.5074, -0.1278], dtype)), 1153.0, rtol=max(rtol, 1e-2)
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_distance_gradients_match_hand_derivatives(dtype):
    x = jnp.asarray([0.3, -1.2, 2.0], dtype)
    y = jnp.asarray([1.0, 0.5, -0.7], dtype)
    d = np.asarray(x - y, np.float64)
    tol = dict(rtol=TOL[dtype], atol=TOL[dtype])
    # ∂‖x − y‖/∂x = (x − y)/‖x − y‖, ∂Σ(x − y)²/∂x = 2(x − y), ∂Σ|x − y|/∂x = sign(x − y)
    np.testing.assert_allclose(jax.grad(D.euclidean)(x, y), d / np.linalg.norm(d), **tol)
    np.testing.assert_allclose(jax.grad(D.squared_euclidean)(x, y), 2 * d, **tol)
    np.testing.assert_allclose(jax.grad(D.manhattan)(x, y), np.sign(d), **tol)
    p = 3.0
    np.testing.assert_allclose(
        jax.grad(lambda a: D.minkowski(a, y, p=p))(x), np.sign(d) * (np.abs(d) / (np.abs(d) ** p).sum() ** (1 / p)) ** (p - 1), **tol
    )
    # at x = y the root's kink gives 0, not NaN
    np.testing.assert_array_equal(jax.grad(D.euclidean)(x, x), 0.0)
    assert np.all(np.isfinite(jax.grad(D.cosine)(x, x)))


def test_pairwise_diagonal_is_exactly_zero_and_jit_vmap_work():
    X, _ = _points(jnp.float32, n=10, d=3)
    for metric in ("euclidean", "squared_euclidean", "manhattan", "cosine"):
        Dm = D.pairwise_distances(X, metric=metric)
        np.testing.assert_array_equal(np.diag(np.asarray(Dm)), 0.0)
        np.testing.assert_allclose(Dm, Dm.T, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jax.jit(D.pairwise_distances)(X, X), D.pairwise_distances(X, X), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(D.euclidean, in_axes=(0, None))(X, X[0]), D.euclidean(X, X[0]), rtol=1e-6)
    np.testing.assert_allclose(
        D.pairwise_distances(X, X, precision="highest"), D.pairwise_distances(X, X, precision=jax.lax.Precision.HIGHEST), rtol=0
    )


def test_bad_input():
    with pytest.raises(ValueError, match=r"x\.shape=\(3,\) and y\.shape=\(4,\)"):
        D.euclidean(jnp.zeros(3, jnp.float32), jnp.zeros(4, jnp.float32))
    with pytest.raises(ValueError, match=r"x\.shape=\(2, 3\) and y\.shape=\(4, 3\)"):
        D.manhattan(jnp.zeros((2, 3), jnp.float32), jnp.zeros((4, 3), jnp.float32))
    with pytest.raises(ValueError, match=r"x must be 2-dimensional, got x\.shape=\(3,\)"):
        D.pairwise_distances(jnp.zeros(3, jnp.float32))
    with pytest.raises(ValueError, match=r"x\.shape=\(2, 3\) and y\.shape=\(4, 2\)"):
        D.pairwise_distances(jnp.zeros((2, 3), jnp.float32), jnp.zeros((4, 2), jnp.float32))
    with pytest.raises(ValueError, match="metric must be one of"):
        D.pairwise_distances(jnp.zeros((2, 3), jnp.float32), metric="hamming")
    with pytest.raises(TypeError, match="metric='minkowski' needs the keyword p="):
        D.pairwise_distances(jnp.zeros((2, 3), jnp.float32), metric="minkowski")
    with pytest.raises(TypeError, match="metric='cosine' does not take p="):
        D.pairwise_distances(jnp.zeros((2, 3), jnp.float32), metric="cosine", p=2.0)
    with pytest.raises(TypeError, match="p must be a real number"):
        D.minkowski(jnp.zeros(3, jnp.float32), jnp.ones(3, jnp.float32), p=None)
    with pytest.raises(TypeError, match="path p"):
        D.minkowski(jnp.zeros(3, jnp.float32), jnp.ones(3, jnp.float32), p="3")
    with pytest.raises(TypeError):
        D.minkowski(jnp.zeros(3, jnp.float32), jnp.ones(3, jnp.float32), 3.0)  # p is keyword-only
    with pytest.raises(ValueError, match=r"latitude, longitude.*x\.shape=\(3,\)"):
        D.great_circle(jnp.zeros(3, jnp.float32), jnp.zeros(3, jnp.float32))
    with pytest.raises(TypeError, match="radius must be a real number"):
        D.great_circle(jnp.zeros(2, jnp.float32), jnp.zeros(2, jnp.float32), radius=None)


def test_static_errors_raise_under_an_outer_jit_and_vmap():
    with pytest.raises(ValueError, match=r"x\.shape=\(3,\) and y\.shape=\(4,\)"):
        jax.jit(D.euclidean)(jnp.zeros(3, jnp.float32), jnp.zeros(4, jnp.float32))
    with pytest.raises(ValueError, match=r"x\.shape=\(3,\) and y\.shape=\(2,\)"):
        jax.vmap(lambda a, b: D.minkowski(a, b, p=3.0))(jnp.zeros((5, 3), jnp.float32), jnp.zeros((5, 2), jnp.float32))
    with pytest.raises(ValueError, match=r"x must be 2-dimensional, got x\.shape=\(3,\)"):
        jax.vmap(D.pairwise_distances)(jnp.zeros((2, 3), jnp.float32))
    with pytest.raises(ValueError, match="latitude, longitude"):
        jax.jit(lambda a: D.pairwise_distances(a, metric="great_circle"))(jnp.zeros((2, 3), jnp.float32))


def test_public_functions_are_jitted_and_p_is_traced():
    for name in D.__all__:
        if name != "EARTH_RADIUS_KM":
            assert hasattr(getattr(D, name), "lower"), name
    x, y = _points(jnp.float32, n=4, m=4, d=3)
    # p is traced: new orders reuse one compiled executable, and p = inf needs no special call.
    if hasattr(D.minkowski, "_cache_size"):
        D.minkowski(x, y, p=1.5)
        start = D.minkowski._cache_size()
        for p in (2.0, 3.0, math.inf):
            D.minkowski(x, y, p=p)
        assert D.minkowski._cache_size() == start
    np.testing.assert_allclose(D.minkowski(x, y, p=math.inf), D.chebyshev(x, y), rtol=1e-6)
    np.testing.assert_allclose(D.minkowski(x, y, p=2.0), D.euclidean(x, y), rtol=1e-5)
    # the gradient in x at p = inf is Chebyshev's (finite), at p traced too
    g = jax.grad(lambda a, q: D.minkowski(a, y[0], p=q))(x[0], jnp.float32(math.inf))
    np.testing.assert_allclose(g, jax.grad(D.chebyshev)(x[0], y[0]), atol=1e-6)
    # values are not checked here: NaN propagates (the entry points check finiteness)
    assert np.isnan(float(D.euclidean(jnp.asarray([jnp.nan, 0.0]), jnp.zeros(2))))
