"""Property tests (hypothesis) over the host entry points and forward passes: the models' ``fit`` / ``apply``
and the unsupervised ``fit`` / ``apply`` functions.

Host entry points check values (docs/conventions.md): NaN or Inf in ``x``, ``y``, ``params``; no samples;
mismatched lengths; a wrong rank — each is a ValueError (or TypeError) naming the argument, before any compiled
work. Finite in-domain inputs give finite params of the documented shape and dtype and an ``info`` with
``converged`` and ``num_steps``. Forward passes (``apply``) keep the documented shape and stay finite on finite
input. dtypes: float16, bfloat16, float32, float64. Data shapes are drawn from a few values so the compiled
fits are reused across examples (a new shape recompiles).
"""

from __future__ import annotations

import math
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxmath.models import lasso, linear_regression, logistic_regression, mcculloch_pitts, mlp, perceptron, ridge
from jaxmath.models import sigmoid_neuron
from jaxmath.unsupervised import competitive, hebbian, kmeans, som

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
DTYPES = (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)
KEY = jax.random.key(0)

dtypes = st.sampled_from(DTYPES)
seeds = st.integers(0, 2**32 - 1)
# what is wrong with the call: nothing, a NaN / Inf somewhere in an argument, no samples, a length mismatch
faults = st.sampled_from(("none", "none", "nan_x", "inf_x", "nan_y", "empty", "short_y", "rank"))


def _np(a) -> np.ndarray:
    return np.asarray(jnp.asarray(a).astype(jnp.float64))


def _all_finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(_np(leaf)))) for leaf in jax.tree_util.tree_leaves(tree)
               if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact))


def _call(fn, names):
    """fn() or None when it raised ValueError / TypeError naming one of ``names`` (as a word); else fail."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return fn()
    except (ValueError, TypeError) as err:
        named = any(re.search(rf"\b{re.escape(n)}\b", str(err)) for n in names)
        assert named, f"the error does not name any of {names}: {err!r}"
        return None


def _spoil(seed, a, value):
    flat = np.asarray(jnp.asarray(a).astype(jnp.float64)).reshape(-1).copy()
    flat[int(np.random.default_rng(seed).integers(flat.size))] = value
    return jnp.asarray(flat.reshape(a.shape), a.dtype)


def _data(seed, fault, dtype, *, n=6, d=2):
    """(x, n): x (n, d) standard normal, spoiled or reshaped as ``fault`` says."""
    rng = np.random.default_rng(seed)
    if fault == "empty":
        n = 0
    x = jnp.asarray(rng.normal(size=(n, d)), dtype)
    if fault in ("nan_x", "inf_x"):
        x = _spoil(seed, x, math.nan if fault == "nan_x" else -math.inf)
    if fault == "rank":
        x = x.reshape(-1)
    return x, n


# ----------------------------------------------------------------------------------------- supervised models

SUPERVISED = {
    "linear_regression": lambda x, y, lab: linear_regression.fit(x, y, max_steps=20),
    "ridge": lambda x, y, lab: ridge.fit(x, y, alpha=0.5, max_steps=20),
    "lasso": lambda x, y, lab: lasso.fit(x, y, alpha=0.1, max_steps=20),
    "logistic_regression": lambda x, y, lab: logistic_regression.fit(x, lab, max_steps=10),
    "perceptron": lambda x, y, lab: perceptron.fit(x, lab, max_steps=10),
    "sigmoid_neuron": lambda x, y, lab: sigmoid_neuron.fit(x, lab, max_steps=10),
}
APPLY = {"linear_regression": linear_regression, "ridge": ridge, "lasso": lasso,
         "logistic_regression": logistic_regression, "perceptron": perceptron, "sigmoid_neuron": sigmoid_neuron}
REGRESSION = ("linear_regression", "ridge", "lasso")


@SETTINGS
@given(name=st.sampled_from(sorted(SUPERVISED)), dtype=dtypes, seed=seeds, fault=faults)
def test_supervised_fits_refuse_bad_data_by_name_and_fit_good_data_finitely(name, dtype, seed, fault):
    x, n = _data(seed, fault, dtype)
    rng = np.random.default_rng(seed + 1)
    y = jnp.asarray(rng.normal(size=n), dtype)
    labels = jnp.asarray(np.arange(n) % 2, jnp.int32)
    if fault == "nan_y":
        y = _spoil(seed, y, math.nan)
        labels = labels.at[0].set(7)  # out of a binary problem's range: also a value fault
    if fault == "short_y":
        y, labels = y[:-1], labels[:-1]
    out = _call(lambda: SUPERVISED[name](x, y, labels), ["x", "y", "labels", "targets"])
    if fault == "nan_y" and name in ("perceptron", "logistic_regression"):
        # label 7 with labels otherwise 0/1: logistic regression reads it as an 8-class problem, which is valid
        if out is None:
            return
    elif fault != "none":
        assert out is None, f"{name} accepted fault={fault}"
        return
    assert out is not None, f"{name} refused valid data"
    params, info = out
    assert {"converged", "num_steps"} <= set(info._fields)
    if fault != "none":
        return
    assert _all_finite(params), f"{name}: non-finite params from finite data"
    w = params["w"]
    assert w.shape[0] == 2 and w.dtype == dtype, (name, w.shape, w.dtype)
    pred = APPLY[name].apply(params, x)
    assert pred.shape[0] == n and _all_finite(pred), name


@settings(SETTINGS, max_examples=10)  # each example builds a new network: the costliest compile here
@given(sizes=st.sampled_from(((2, 3), (4, 5, 3))), dtype=dtypes, seed=seeds,
       activation=st.sampled_from(("sigmoid", "relu", "tanh")), n=st.sampled_from((0, 5)),
       wrong_width=st.booleans())
def test_mlp_apply_shape_finiteness_and_width_check(sizes, dtype, seed, activation, n, wrong_width):
    model = mlp.make(sizes, activation=activation, dtype=np.dtype(dtype).name if dtype != jnp.bfloat16 else "bfloat16")
    params = model.init(jax.random.key(seed % 1000))
    width = sizes[0] + (1 if wrong_width else 0)
    x = jnp.asarray(np.random.default_rng(seed).normal(size=(n, width)) * 10, dtype)
    out = _call(lambda: model.apply(params, x), ["x", "params"])
    if wrong_width:
        assert out is None, "a wrong input width must be refused"
        return
    assert out is not None and out.shape == (n, sizes[-1]) and out.dtype == dtype
    assert _all_finite(out)


@SETTINGS
@given(num_inputs=st.sampled_from((1, 3)), seed=seeds, n=st.sampled_from((0, 4)))
def test_mcculloch_pitts_apply_is_binary(num_inputs, seed, n):
    params = mcculloch_pitts.init(num_inputs, threshold=1)
    x = jnp.asarray(np.random.default_rng(seed).integers(0, 2, (n, num_inputs)), jnp.int32)
    out = mcculloch_pitts.apply(params, x)
    assert out.shape == (n,) and set(np.unique(np.asarray(out))) <= {0, 1}


# ---------------------------------------------------------------------------------------------- unsupervised

def _kmeans(x, p):
    return kmeans.fit(x, params=p, max_steps=10)


def _som(x, p):
    return som.fit(x, params=p.reshape(2, 2, -1), max_steps=8)


def _som_batch(x, p):
    return som.fit_batch(x, params=p.reshape(2, 2, -1), max_steps=3)


UNSUPERVISED = {
    "kmeans.fit": _kmeans,
    "som.fit": _som,
    "som.fit_batch": _som_batch,
    "competitive.fit": lambda x, p: competitive.fit(x, params=p, max_steps=2),
    "competitive.fit_batch": lambda x, p: competitive.fit_batch(x, params=p, max_steps=2),
    "hebbian.fit_sanger": lambda x, p: hebbian.fit_sanger(x, params=p[:2], learning_rate=0.01, max_steps=2),
    "hebbian.fit_oja": lambda x, p: hebbian.fit_oja(x, params=p[0], learning_rate=0.01, max_steps=2),
    "hebbian.fit_hebb": lambda x, p: hebbian.fit_hebb(x, params=p[:2], bias=False, max_steps=2),
}


@SETTINGS
@given(name=st.sampled_from(sorted(UNSUPERVISED)), dtype=dtypes, seed=seeds,
       fault=st.sampled_from(("none", "none", "nan_x", "inf_x", "nan_params", "empty", "rank", "width")))
def test_unsupervised_fits_refuse_bad_data_by_name_and_stay_finite_on_good_data(name, dtype, seed, fault):
    if dtype == jnp.bfloat16 and fault in ("nan_x", "inf_x", "nan_params"):
        dtype = jnp.float16  # see test_unsupervised_fits_see_nan_in_bfloat16
    x, n = _data(seed, fault, dtype, n=8, d=3)
    p = jnp.asarray(np.random.default_rng(seed + 2).normal(size=(4, 3)), dtype)
    if fault == "nan_params":
        p = p.at[0, int(seed % 3)].set(jnp.nan)  # row 0: every fit uses it (Oja takes p[0], Sanger p[:2])
    if fault == "width":
        p = jnp.concatenate([p, p[:, :1]], axis=1)
    out = _call(lambda: UNSUPERVISED[name](x, p), ["x", "params"])
    if fault != "none":
        assert out is None, f"{name} accepted fault={fault}"
        return
    assert out is not None, f"{name} refused valid data"
    params, info = out
    assert {"converged", "num_steps", "nonfinite", "first_nonfinite_step"} <= set(info._fields)
    assert params.dtype == dtype and _all_finite(params), name
    assert not bool(info.nonfinite) and int(info.first_nonfinite_step) == -1, name


MEASURES = {
    "som.apply": (lambda w, x: som.apply(w, x), lambda n, r, m: (n, r, 2)),
    "som.predict": (lambda w, x: som.predict(w, x), lambda n, r, m: (n,)),
    "som.u_matrix": (lambda w, x: som.u_matrix(w), lambda n, r, m: (r, 2)),
    "som.quantization_error": (lambda w, x: som.quantization_error(w, x), lambda n, r, m: ()),
    "som.topographic_error": (lambda w, x: som.topographic_error(w, x), lambda n, r, m: ()),
    "som.winner_map": (lambda w, x: som.winner_map(w, x), lambda n, r, m: (r, 2)),
    "kmeans.apply": (lambda w, x: kmeans.apply(w.reshape(-1, w.shape[-1])[: x.shape[0]], x),
                     lambda n, r, m: (n, min(m, n))),
    "competitive.apply": (lambda w, x: competitive.apply(w.reshape(-1, w.shape[-1]), x), lambda n, r, m: (n, m)),
}


@pytest.mark.filterwarnings("ignore:u_matrix. the .* map has no spread:RuntimeWarning")  # same=True draws one
@SETTINGS
@given(name=st.sampled_from(sorted(MEASURES)), dtype=dtypes, seed=seeds, n=st.sampled_from((1, 5)),
       rows=st.sampled_from((1, 2)), d=st.sampled_from((1, 3)), same=st.booleans())
def test_unsupervised_apply_and_measures_shapes_and_finiteness(name, dtype, seed, n, rows, d, same):
    # same=True: every neuron at one point (a zero-spread map: the U-matrix is then 0, not 0/0)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(n, d)), dtype)
    w = jnp.asarray(np.zeros((rows, 2, d)) if same else rng.normal(size=(rows, 2, d)), dtype)
    fn, shape = MEASURES[name]
    out = fn(w, x)
    assert out.shape == shape(n, rows, rows * 2), (name, out.shape)
    assert _all_finite(out), f"{name}: non-finite output from finite input"
    if name == "som.u_matrix":
        u = _np(out)
        assert np.all((u >= 0) & (u <= 1)) and (u.max() == 1 or (same and u.max() == 0))
    # a wrong width is refused, naming the arguments
    if name != "som.u_matrix":
        assert _call(lambda: fn(w, jnp.zeros((n, d + 1), dtype)), ["x", "params"]) is None


# ------------------------------------------------------------------ known bugs in files these tests do not own

# One representative per family: the fault is in the one shared check (every fit calls it).
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ["perceptron"])
def test_supervised_fits_see_nan_in_bfloat16(name):
    x = jnp.asarray([[0.0, 1.0], [1.0, math.nan], [2.0, 0.5], [3.0, 1.0]], jnp.bfloat16)
    with pytest.raises(ValueError, match=r"\bx\b"):
        SUPERVISED[name](x, jnp.ones(4, jnp.bfloat16), jnp.asarray([0, 1, 0, 1]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ["competitive.fit"])
def test_unsupervised_fits_see_nan_in_bfloat16(name):
    x = jnp.asarray(np.arange(24.0).reshape(8, 3), jnp.bfloat16).at[3, 1].set(jnp.nan)
    with pytest.raises(ValueError, match=r"\bx\b"):
        UNSUPERVISED[name](x, jnp.ones((4, 3), jnp.bfloat16))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(SUPERVISED))
def test_supervised_fits_refuse_an_empty_x(name):
    x = jnp.zeros((0, 2), jnp.float32)
    with pytest.raises(ValueError, match=r"\bx\b"):
        SUPERVISED[name](x, jnp.zeros((0,), jnp.float32), jnp.zeros((0,), jnp.int32))
