"""Property tests (hypothesis) over the bare math: activations, losses, distances, regularizers, stats.

The contract (docs/conventions.md, docs/reliability.md): every call either returns a result of the documented
shape and dtype, finite wherever its inputs are finite and in the domain, or raises a ValueError / TypeError
whose message names the offending argument. Never a raw XLA error, never a NaN from finite in-domain inputs.
Math functions do not look at values, so a NaN or Inf *input* may give NaN out; these tests then check that it
stays where it was put (other elements, rows or examples stay finite).

Shapes, dtypes (float16, bfloat16, float32, float64), magnitudes and the placement of NaN / ±Inf are drawn by
hypothesis; the values themselves come from NumPy seeded by hypothesis (hypothesis cannot draw bfloat16).
Magnitudes are bounded per dtype so that the true result is representable (a sum of squares of 1e3-sized
float16 values is not). Empty axes, where a mean or a max has no value, are tested apart at the end: they
must raise a ValueError naming the argument.
"""

from __future__ import annotations

import math
import re

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxmath import activations as A
from jaxmath import distances as D
from jaxmath import losses as L
from jaxmath import regularizers as R
from jaxmath import stats as S

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
DTYPES = (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)
SPECIALS = (None, None, math.nan, math.inf, -math.inf)  # half the draws are all finite

dtypes = st.sampled_from(DTYPES)
seeds = st.integers(0, 2**32 - 1)
specials = st.sampled_from(SPECIALS)


def _np(a) -> np.ndarray:
    """A float64 NumPy copy (bfloat16 included)."""
    return np.asarray(jnp.asarray(a).astype(jnp.float64))


def _values(seed, shape, dtype, *, low, high):
    return jnp.asarray(np.random.default_rng(seed).uniform(low, high, shape), dtype)


def _spoil(seed, a, special):
    """Put ``special`` at one random position of ``a``; returns (array, bool mask of that position)."""
    mask = np.zeros(a.shape, bool)
    if special is None or a.size == 0:
        return a, mask
    flat = int(np.random.default_rng(seed + 1).integers(a.size))
    mask.reshape(-1)[flat] = True
    return jnp.where(jnp.asarray(mask), jnp.asarray(special, a.dtype), a), mask


def _call(fn, names):
    """fn() or None when it raised ValueError / TypeError naming one of ``names``; anything else fails."""
    try:
        return fn()
    except (ValueError, TypeError) as err:
        named = any(re.search(rf"\b{re.escape(n)}\b", str(err)) for n in names)
        assert named, f"the error does not name any of {names}: {err!r}"
        return None


def _mag(dtype, big):
    """Largest magnitude drawn: ``big`` bounded so that sums of squares of a few values fit the dtype."""
    return min(big, 8.0) if dtype == jnp.float16 else big


def _assert_finite_where(out, ok_mask, what):
    vals = _np(out)
    assert np.all(np.isfinite(vals[ok_mask])), f"{what}: non-finite output from finite in-domain input"


# --------------------------------------------------------------------------------------------- activations

ELEMENTWISE = {
    "relu": A.relu, "relu_derivative": A.relu_derivative, "sigmoid": A.sigmoid,
    "sigmoid_derivative": A.sigmoid_derivative, "tanh": A.tanh, "tanh_derivative": A.tanh_derivative,
    "leaky_relu": A.leaky_relu, "leaky_relu_derivative": A.leaky_relu_derivative, "identity": A.identity,
    "identity_derivative": A.identity_derivative,
}
ANY_SHAPE = ((), (1,), (5,), (3, 4), (2, 3, 2), (0,), (2, 0))


@SETTINGS
@given(name=st.sampled_from(sorted(ELEMENTWISE)), shape=st.sampled_from(ANY_SHAPE), dtype=dtypes, seed=seeds,
       special=specials, big=st.sampled_from((1.0, 1e3, 1e30)))
def test_elementwise_activations_keep_shape_dtype_and_finiteness(name, shape, dtype, seed, special, big):
    big = min(big, float(jnp.finfo(dtype).max) / 4)  # the whole range: these are stable elementwise forms
    z, bad = _spoil(seed, _values(seed, shape, dtype, low=-big, high=big), special)
    out = _call(lambda: ELEMENTWISE[name](z), ["z"])
    assert out is not None, f"{name} refused a valid input"
    assert out.shape == shape and out.dtype == dtype, name
    _assert_finite_where(out, ~bad, name)


@SETTINGS
@given(shape=st.sampled_from(((), (1,), (4,), (3, 5), (2, 2, 3))), dtype=dtypes, seed=seeds, special=specials,
       name=st.sampled_from(("softmax", "log_softmax", "softmax_jacobian", "log_softmax_jacobian")),
       big=st.sampled_from((1.0, 50.0, 1e4)))
def test_softmax_family_normalises_finite_rows_and_names_z(shape, dtype, seed, special, name, big):
    z, bad = _spoil(seed, _values(seed, shape, dtype, low=-big, high=big), special)
    out = _call(lambda: getattr(A, name)(z), ["z"])
    if len(shape) == 0:
        assert out is None, f"{name} of a 0-d z must be refused"
        return
    jac = name.endswith("jacobian")
    assert out.shape == (shape + shape[-1:] if jac else shape) and out.dtype == dtype, name
    good_rows = ~bad.any(axis=-1)  # a NaN/Inf logit may spoil its own row, never another one
    vals = _np(out)
    assert np.all(np.isfinite(vals[good_rows])), name
    if name == "softmax":
        tol = {jnp.float16: 1e-2, jnp.bfloat16: 2e-2}.get(dtype, 1e-5)
        np.testing.assert_allclose(vals[good_rows].sum(-1), 1.0, atol=tol)


# --------------------------------------------------------------------------------------------------- losses

REGRESSION = ("mse", "mae", "rmse", "sum_of_squares")
PROBABILITY = ("binary_cross_entropy", "binary_cross_entropy_with_logits", "categorical_cross_entropy")
# Non-empty shapes here; empty batches are tested at the end (a mean over no examples is refused by name).
LOSS_SHAPES = ((), (1,), (4,), (3, 2), (2, 3, 2))


def _per_example_shape(shape, reduction, *, class_axis=False):
    if reduction != "none" or len(shape) == 0 or (class_axis and len(shape) == 1):
        return ()
    return shape[:1]


@SETTINGS
@given(name=st.sampled_from(REGRESSION + PROBABILITY), gradient=st.booleans(),
       shape=st.sampled_from(LOSS_SHAPES), dtype=dtypes, seed=seeds, special=specials,
       reduction=st.sampled_from(("mean", "sum", "none")))
def test_losses_and_gradients_return_documented_shapes_and_stay_finite(name, gradient, shape, dtype, seed,
                                                                       special, reduction):
    class_axis = name == "categorical_cross_entropy"
    if class_axis and not shape:
        shape = (3,)
    fn = getattr(L, name + ("_gradient" if gradient else ""))
    if name in REGRESSION:
        p = _values(seed, shape, dtype, low=-_mag(dtype, 30.0), high=_mag(dtype, 30.0))
        t = _values(seed + 7, shape, dtype, low=-_mag(dtype, 30.0), high=_mag(dtype, 30.0))
    elif name == "binary_cross_entropy_with_logits":
        p = _values(seed, shape, dtype, low=-1e3, high=1e3)  # logits: the stable form takes any size
        t = _values(seed + 7, shape, dtype, low=0, high=1)
    else:  # probabilities strictly inside (0, 1) as the loss clips; targets one-hot or 0/1
        p = _values(seed, shape, dtype, low=0.02, high=0.98)
        if class_axis:
            p = p / jnp.sum(p, axis=-1, keepdims=True)
            t = jnp.asarray(np.eye(shape[-1])[np.random.default_rng(seed).integers(shape[-1], size=shape[:-1])],
                            dtype)
        else:
            t = jnp.asarray(np.random.default_rng(seed).integers(0, 2, shape), dtype)
    p, bad = _spoil(seed, p, special)
    out = _call(lambda: fn(p, t, reduction=reduction), ["predictions", "probabilities", "logits", "targets"])
    assert out is not None, f"{fn.__name__} refused a valid input"
    if gradient:
        assert out.shape == shape and out.dtype == dtype, fn.__name__
        # an elementwise gradient may be spoiled only inside the spoiled example (rmse couples an example)
        if special is None:
            _assert_finite_where(out, np.ones(shape, bool), fn.__name__)
        return
    want = _per_example_shape(shape, reduction, class_axis=class_axis)
    assert out.shape == want and out.dtype == dtype, (fn.__name__, out.shape, want)
    if special is None:
        _assert_finite_where(out, np.ones(want, bool), fn.__name__)
        assert np.all(_np(out) >= 0), f"{fn.__name__} is negative"
    elif reduction == "none" and want:
        _assert_finite_where(out, ~bad.reshape(shape[0], -1).any(axis=1), fn.__name__)
    # a mismatched target is refused, naming both arguments
    t_bad = jnp.zeros(shape + (2,), dtype)
    assert _call(lambda: fn(p, t_bad, reduction=reduction), ["targets"]) is None, "a mismatched target passed"
    with pytest.raises(ValueError, match="reduction"):
        fn(p, t, reduction="average")


@SETTINGS
@given(k=st.sampled_from((2, 5)), dtype=dtypes, seed=seeds, special=specials, integer_labels=st.booleans(),
       reduction=st.sampled_from(("mean", "none")), big=st.sampled_from((1.0, 1e3, 3e4)), gradient=st.booleans())
def test_softmax_cross_entropy_is_finite_for_any_finite_logits(k, dtype, seed, special, integer_labels,
                                                               reduction, big, gradient):
    n = 4
    z, bad = _spoil(seed, _values(seed, (n, k), dtype, low=-big, high=big), special)
    labels = np.random.default_rng(seed).integers(k, size=n)
    y = jnp.asarray(labels, jnp.int32) if integer_labels else jnp.asarray(np.eye(k)[labels], dtype)
    for fn in (L.softmax_cross_entropy_gradient if gradient else L.softmax_cross_entropy,):
        out = _call(lambda: fn(z, y, reduction=reduction), ["logits", "labels"])
        assert out is not None
        grad = fn is L.softmax_cross_entropy_gradient
        want = (n, k) if grad else ((n,) if reduction == "none" else ())
        assert out.shape == want and out.dtype == dtype
        rows = ~bad.any(axis=1)
        vals = _np(out)
        if grad or reduction == "none":
            assert np.all(np.isfinite(vals[rows])), fn.__name__
        elif special is None:
            assert np.isfinite(vals) and vals >= 0, fn.__name__
    with pytest.raises(ValueError, match="labels"):
        L.softmax_cross_entropy(z, jnp.zeros((n + 1,), jnp.int32))


# ------------------------------------------------------------------------------------------------ distances

PAIR = ("euclidean", "squared_euclidean", "manhattan", "chebyshev", "cosine", "jaccard", "minkowski")


@SETTINGS
@given(name=st.sampled_from(PAIR), lead=st.sampled_from(((), (3,))), d=st.sampled_from((1, 4)),
       dtype=dtypes, seed=seeds, special=specials)
def test_distances_are_finite_non_negative_and_zero_on_the_diagonal(name, lead, d, dtype, seed, special):
    low = 0.0 if name == "jaccard" else -_mag(dtype, 1e3)
    x, bad = _spoil(seed, _values(seed, lead + (d,), dtype, low=low, high=_mag(dtype, 1e3)), special)
    y = _values(seed + 3, lead + (d,), dtype, low=low, high=_mag(dtype, 1e3))
    kw = {"p": 3.0} if name == "minkowski" else {}
    fn = getattr(D, name)
    out = _call(lambda: fn(x, y, **kw), ["x", "y"])
    assert out is not None and out.shape == lead and out.dtype == dtype, name
    vals = _np(out)
    good = ~bad.any(axis=-1)
    assert np.all(np.isfinite(vals[good])) and np.all(vals[good] >= -1e-6), name
    if special is None:
        same = _np(fn(y, y, **kw))
        tol = 1e-2 if dtype in (jnp.float16, jnp.bfloat16) else 1e-5
        assert np.all(np.abs(same) <= tol * max(1.0, float(np.abs(_np(y)).max()) ** (2 if "squared" in name else 1)))
    # mismatched feature axes are refused, naming the arguments
    assert _call(lambda: fn(x, jnp.zeros(lead + (d + 1,), dtype), **kw), ["x", "y"]) is None, name


@SETTINGS
@given(metric=st.sampled_from(("euclidean", "squared_euclidean", "manhattan", "chebyshev", "cosine",
                               "minkowski", "jaccard")),
       n=st.sampled_from((0, 3)), m=st.sampled_from((1, 4)), d=st.sampled_from((1, 3)), dtype=dtypes,
       seed=seeds, with_y=st.booleans())
def test_pairwise_distances_shape_and_finiteness(metric, n, m, d, dtype, seed, with_y):
    low = 0.0 if metric == "jaccard" else -_mag(dtype, 1e3)
    x = _values(seed, (n, d), dtype, low=low, high=_mag(dtype, 1e3))
    y = _values(seed + 1, (m, d), dtype, low=low, high=_mag(dtype, 1e3)) if with_y else None
    kw = {"p": 3.0} if metric == "minkowski" else {}
    out = _call(lambda: D.pairwise_distances(x, y, metric=metric, **kw), ["x", "y", "metric"])
    assert out is not None, metric
    assert out.shape == (n, m if with_y else n) and out.dtype == dtype
    assert np.all(np.isfinite(_np(out))), metric
    with pytest.raises(ValueError, match="metric"):
        D.pairwise_distances(x, y, metric="hamming")


@SETTINGS
@given(lead=st.sampled_from(((), (3,))), dtype=dtypes, seed=seeds, degrees=st.booleans())
def test_great_circle_is_finite_within_half_the_circumference(lead, dtype, seed, degrees):
    scale = 1.0 if degrees else math.pi / 180
    rng = np.random.default_rng(seed)
    pts = [np.stack([rng.uniform(-90, 90, lead), rng.uniform(-180, 180, lead)], -1) * scale for _ in range(2)]
    x, y = (jnp.asarray(p, dtype) for p in pts)
    out = _call(lambda: D.great_circle(x, y, degrees=degrees), ["x", "y"])
    assert out is not None and out.shape == lead and out.dtype == dtype
    vals = _np(out)
    assert np.all(np.isfinite(vals)) and np.all(vals >= 0) and np.all(vals <= 6371.0088 * math.pi * 1.01)


# --------------------------------------------------------------------------------------------- regularizers

NORMS = ("l1", "l2", "squared_l2", "elastic_net", "p_norm")


@SETTINGS
@given(name=st.sampled_from(NORMS), gradient=st.booleans(), shape=st.sampled_from(ANY_SHAPE), dtype=dtypes,
       seed=seeds, special=specials)
def test_regularizers_and_their_gradients(name, gradient, shape, dtype, seed, special):
    w, bad = _spoil(seed, _values(seed, shape, dtype, low=-_mag(dtype, 1e3), high=_mag(dtype, 1e3)), special)
    suffix = ("_subgradient" if name in ("l1", "elastic_net") else "_gradient") if gradient else ""
    fn = getattr(R, name + suffix)
    kw = {"p": 3.0} if name == "p_norm" else {}
    out = _call(lambda: fn(w, **kw), ["params", "p"])
    assert out is not None, fn.__name__
    assert out.shape == (shape if gradient else ()) and out.dtype == dtype, fn.__name__
    if special is None:
        vals = _np(out)
        assert np.all(np.isfinite(vals)), fn.__name__
        if not gradient:
            assert vals >= 0
        if gradient and name == "l2" and w.size:
            assert np.all(np.abs(vals) <= 1 + 1e-2)  # a unit vector's entries


@SETTINGS
@given(shape=st.sampled_from(ANY_SHAPE), dtype=dtypes, seed=seeds, threshold=st.sampled_from((0.0, 0.5, 1e3)))
def test_soft_threshold_shrinks_towards_zero(shape, dtype, seed, threshold):
    w = _values(seed, shape, dtype, low=-10, high=10)
    out = R.soft_threshold(w, threshold=threshold)
    assert out.shape == shape and out.dtype == dtype
    a, b = _np(w), _np(out)
    assert np.all(np.isfinite(b)) and np.all(np.abs(b) <= np.abs(a) + 1e-6) and np.all(a * b >= 0)


# ---------------------------------------------------------------------------------------------------- stats


@SETTINGS
@given(shape=st.sampled_from(((), (5,), (4, 3), (0,))), dtype=dtypes, seed=seeds, special=specials,
       sigma=st.sampled_from((0.5, 3.0, 100.0)))
def test_normal_density_and_likelihood(shape, dtype, seed, special, sigma):
    x, bad = _spoil(seed, _values(seed, shape, dtype, low=-5, high=5), special)
    logp = S.normal_logpdf(x, mu=0.5, sigma=sigma)
    p = S.normal_pdf(x, mu=0.5, sigma=sigma)
    for out in (logp, p):
        assert out.shape == shape and out.dtype == dtype
        _assert_finite_where(out, ~bad, "normal density")
    assert np.all(_np(p)[~bad] >= 0)
    if len(shape) >= 1 and special is None:
        ll = _call(lambda: S.log_likelihood(x, mu=0.5, sigma=sigma), ["x"])
        if ll is not None:
            assert ll.shape == shape[1:] and np.all(np.isfinite(_np(ll)))


@SETTINGS
@given(shape=st.sampled_from(((1,), (6,), (5, 2), (0,), (0, 2), ())), dtype=dtypes, seed=seeds,
       special=specials, unbiased=st.booleans())
def test_mle_normal_and_fit_normal(shape, dtype, seed, special, unbiased):
    x, bad = _spoil(seed, _values(seed, shape, dtype, low=-3, high=3), special)
    est = _call(lambda: S.mle_normal(x, unbiased=unbiased), ["x"])
    need = 2 if unbiased else 1
    if len(shape) == 0 or shape[0] < need:
        assert est is None, f"mle_normal must refuse x.shape={shape}"
    else:
        mu, sd = est
        assert mu.shape == sd.shape == shape[1:]
        if special is None:
            assert np.all(np.isfinite(_np(mu))) and np.all(np.isfinite(_np(sd))) and np.all(_np(sd) >= 0)
    # fit_normal is a host entry point: it checks values, so NaN / Inf in x is a ValueError naming x
    fitted = _call(lambda: S.fit_normal(x, max_steps=20), ["x"])
    if len(shape) == 0 or shape[0] == 0 or special is not None:
        assert fitted is None, f"fit_normal must refuse x.shape={shape} special={special}"
    elif fitted is not None:
        (mu, sd), info = fitted
        assert mu.shape == sd.shape == shape[1:]
        assert np.all(np.isfinite(_np(mu))) and np.all(np.isfinite(_np(sd)))


# ------------------------------------------------------------------------------------ values that are not arrays

NOT_ARRAYS = ("0.5", None, object())
CALLS = {  # function -> (call with a bad first argument, the name the error must give)
    **{f"A.{n}": (lambda bad, n=n: getattr(A, n)(bad), "z") for n in sorted(ELEMENTWISE) + ["softmax"]},
    **{f"L.{n}": (lambda bad, n=n: getattr(L, n)(bad, jnp.ones(3)), "predictions") for n in REGRESSION},
    "L.softmax_cross_entropy": (lambda bad: L.softmax_cross_entropy(bad, jnp.zeros(2, jnp.int32)), "logits"),
    **{f"D.{n}": (lambda bad, n=n: getattr(D, n)(bad, jnp.ones(3)), "x") for n in PAIR if n != "minkowski"},
    "D.pairwise_distances": (lambda bad: D.pairwise_distances(bad), "x"),
    **{f"R.{n}": (lambda bad, n=n: getattr(R, n)(bad), "params") for n in ("l1", "l2", "squared_l2")},
    "R.p_norm(p=...)": (lambda bad: R.p_norm(jnp.ones(3), p=bad), "p"),
    "S.normal_pdf(sigma=...)": (lambda bad: S.normal_pdf(jnp.ones(3), mu=0.0, sigma=bad), "sigma"),
    "S.fit_normal": (lambda bad: S.fit_normal(bad), "x"),
}


def _not_array_cases():
    for name in sorted(CALLS):
        for bad, label in zip(NOT_ARRAYS, ("str", "None", "object")):
            if name.startswith("R.") and bad is None and "(" not in name:
                continue  # params is a pytree: None is the empty tree, whose norm is 0
            yield pytest.param(name, bad, id=f"{name}-{label}")


@pytest.mark.parametrize("name,bad", list(_not_array_cases()))
def test_arguments_that_are_not_arrays_are_type_or_value_errors_naming_them(name, bad):
    call, arg = CALLS[name]
    with pytest.raises((TypeError, ValueError)) as err:
        call(bad)
    assert re.search(rf"\b{arg}\b", str(err.value)), f"{name}: {err.value!r} does not name {arg}"


# ------------------------------------------------------------------ empty axes: refused by name (bugs these tests found)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmax_jacobian"])
def test_softmax_of_an_empty_class_axis_names_z_or_returns_empty(name):
    z = jnp.zeros((2, 0), jnp.float32)
    out = _call(lambda: getattr(A, name)(z), ["z"])
    assert out is None or out.shape[:2] == (2, 0)


def test_chebyshev_of_zero_features_names_the_argument():
    out = _call(lambda: D.chebyshev(jnp.zeros((0,)), jnp.zeros((0,))), ["x", "y"])
    assert out is None or float(out) == 0.0


def test_softmax_cross_entropy_of_zero_classes_names_logits():
    _call(lambda: L.softmax_cross_entropy(jnp.zeros((2, 0)), jnp.zeros((2,), jnp.int32)), ["logits"])


@pytest.mark.parametrize("name,shape", [(n, s) for n in ("mse", "mae", "rmse", "sum_of_squares", "binary_cross_entropy",
                                                        "binary_cross_entropy_with_logits") for s in ((0,), (0, 3))]
                         + [(n, (2, 0)) for n in ("mse", "mae", "rmse")])
def test_mean_losses_of_empty_inputs_raise_instead_of_nan(name, shape):
    p = jnp.full(shape, 0.5, jnp.float32)
    out = _call(lambda: getattr(L, name)(p, p), ["predictions", "probabilities", "logits"])
    assert out is None or np.isfinite(float(out))


def test_host_value_checks_see_nan_in_bfloat16():
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        S.fit_normal(jnp.asarray([1.0, math.nan], jnp.bfloat16), max_steps=5)
