"""Losses: shapes first, then values against NumPy written here and torch, gradients against jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import losses as L

TOL = {jnp.float64: 1e-10, jnp.float32: 1e-5}
REDUCTIONS = ["mean", "sum", "none"]


# ----------------------------------------------------------------------------- independent NumPy formulas


def _np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np_reduce(elementwise, reduction, per_example):
    per = per_example(elementwise.reshape(elementwise.shape[0], -1), axis=1)
    return {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]


def _np_losses(p, t, reduction):
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    mse_per = ((t - p) ** 2).reshape(len(p), -1).mean(axis=1)
    return {
        "mse": _np_reduce((t - p) ** 2, reduction, np.mean),
        "mse_half": _np_reduce(0.5 * (t - p) ** 2, reduction, np.mean),
        "sum_of_squares": _np_reduce((p - t) ** 2, reduction, np.sum),
        "rmse": np.sqrt({"mean": mse_per.mean(), "sum": mse_per.sum(), "none": mse_per}[reduction]),
        "mae": _np_reduce(np.abs(t - p), reduction, np.mean),
    }


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=shape)
    t = rng.normal(size=shape)
    return jnp.asarray(p, dtype), jnp.asarray(t, dtype)


def _probabilities(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, size=shape)
    t = (rng.uniform(size=shape) > 0.5).astype(np.float64)
    return jnp.asarray(p, dtype), jnp.asarray(t, dtype)


REGRESSION = {
    "mse": (L.mse, L.mse_gradient, {}),
    "mse_half": (L.mse, L.mse_gradient, {"half": True}),
    "sum_of_squares": (L.sum_of_squares, L.sum_of_squares_gradient, {}),
    "rmse": (L.rmse, L.rmse_gradient, {}),
    "mae": (L.mae, L.mae_gradient, {}),
}

ALL_LOSSES = {
    **REGRESSION,
    "binary_cross_entropy": (L.binary_cross_entropy, L.binary_cross_entropy_gradient, {}),
    "binary_cross_entropy_with_logits": (
        L.binary_cross_entropy_with_logits,
        L.binary_cross_entropy_with_logits_gradient,
        {},
    ),
    "categorical_cross_entropy": (L.categorical_cross_entropy, L.categorical_cross_entropy_gradient, {}),
    "softmax_cross_entropy": (L.softmax_cross_entropy, L.softmax_cross_entropy_gradient, {}),
}


def _args_for(name, shape, dtype, seed=0):
    if name in REGRESSION:
        return _data(shape, dtype, seed)
    if name == "binary_cross_entropy":
        return _probabilities(shape, dtype, seed)
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=shape)
    if name == "binary_cross_entropy_with_logits":
        return jnp.asarray(z, dtype), jnp.asarray(rng.uniform(size=shape), dtype)
    t = np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]
    if name == "categorical_cross_entropy":
        e = np.exp(z - z.max(-1, keepdims=True))
        return jnp.asarray(e / e.sum(-1, keepdims=True), dtype), jnp.asarray(t, dtype)
    return jnp.asarray(z, dtype), jnp.asarray(t, dtype)


# ----------------------------------------------------------------------------- shapes and dtypes


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_shapes_and_dtypes(name):
    loss, grad, kw = ALL_LOSSES[name]
    cases = [((6, 2, 3), jnp.float32, "none"), ((6, 2, 3), jnp.float64, "mean"), ((6, 2, 3), jnp.bfloat16, "mean")]
    cases += [((6, 2, 3), jnp.bfloat16, "none"), ((6,), jnp.float32, "none"), ((6, 4), jnp.float32, "sum")]
    for shape, dtype, reduction in cases:
        p, t = _args_for(name, shape, jnp.float32)
        p, t = p.astype(dtype), t.astype(dtype)
        out = loss(p, t, reduction=reduction, **kw)
        class_axis = name in ("softmax_cross_entropy", "categorical_cross_entropy")
        one_example = class_axis and len(shape) == 1
        assert out.shape == ((6,) if reduction == "none" and not one_example else ()), (shape, dtype, reduction)
        assert out.dtype == dtype
        assert np.all(np.isfinite(np.asarray(out, np.float32)))
        g = grad(p, t, reduction=reduction, **kw)
        assert g.shape == shape and g.dtype == dtype


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("shape", [(7,), (7, 2, 3)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_match_numpy(reduction, shape, dtype):
    p, t = _data(shape, dtype)
    expected = _np_losses(p, t, reduction)
    for name, (loss, _, kw) in REGRESSION.items():
        np.testing.assert_allclose(loss(p, t, reduction=reduction, **kw), expected[name], rtol=TOL[dtype], err_msg=name)


def test_hand_values_from_the_notes():
    y = jnp.asarray([1.0, 2.0], jnp.float64)
    t = jnp.asarray([0.0, 0.0], jnp.float64)
    # E = 1/n Σ ½ (t − y)² = ½ (½·1 + ½·4) = 1.25
    assert float(L.mse(y, t, half=True)) == 1.25
    assert float(L.mse(y, t)) == 2.5
    assert float(L.mae(y, t)) == 1.5
    np.testing.assert_allclose(L.rmse(y, t), np.sqrt(2.5), rtol=1e-15)
    # Seed 001: loss = Σ (a⁽³⁾ − expected)² over the 10 output units of one "2".
    a = jnp.full((1, 10), 0.1, jnp.float64).at[0, 2].set(0.7)
    expected = jax.nn.one_hot(jnp.asarray([2]), 10, dtype=jnp.float64)
    np.testing.assert_allclose(L.sum_of_squares(a, expected), 9 * 0.01 + 0.09, rtol=1e-14)
    # BCE of a single confident right and wrong answer.
    np.testing.assert_allclose(L.binary_cross_entropy(jnp.asarray([0.9], jnp.float64), jnp.asarray([1.0], jnp.float64)), -np.log(0.9))
    np.testing.assert_allclose(L.binary_cross_entropy(jnp.asarray([0.9], jnp.float64), jnp.asarray([0.0], jnp.float64)), -np.log(0.1))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropies_match_numpy(reduction, dtype):
    p, t = _probabilities((8, 3), dtype)
    pn, tn = np.asarray(p, np.float64), np.asarray(t, np.float64)
    bce = -(tn * np.log(pn) + (1 - tn) * np.log(1 - pn))
    np.testing.assert_allclose(L.binary_cross_entropy(p, t, reduction=reduction), _np_reduce(bce, reduction, np.sum), rtol=TOL[dtype])

    z, soft = _args_for("binary_cross_entropy_with_logits", (8, 3), dtype)
    zn, sn = np.asarray(z, np.float64), np.asarray(soft, np.float64)
    y = _np_sigmoid(zn)
    bce_logits = -(sn * np.log(y) + (1 - sn) * np.log(1 - y))
    np.testing.assert_allclose(
        L.binary_cross_entropy_with_logits(z, soft, reduction=reduction), _np_reduce(bce_logits, reduction, np.sum), rtol=TOL[dtype]
    )

    z, onehot = _args_for("softmax_cross_entropy", (8, 5), dtype)
    zn, on = np.asarray(z, np.float64), np.asarray(onehot, np.float64)
    probs = np.exp(zn) / np.exp(zn).sum(-1, keepdims=True)
    ce = -(on * np.log(probs))
    expected = _np_reduce(ce, reduction, np.sum)
    np.testing.assert_allclose(L.softmax_cross_entropy(z, onehot, reduction=reduction), expected, rtol=TOL[dtype])
    labels = jnp.asarray(on.argmax(-1), jnp.int32)
    np.testing.assert_allclose(L.softmax_cross_entropy(z, labels, reduction=reduction), expected, rtol=TOL[dtype])
    np.testing.assert_allclose(
        L.categorical_cross_entropy(jnp.asarray(probs, dtype), onehot, reduction=reduction), expected, rtol=TOL[dtype]
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_losses_match_torch(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    tt = lambda a: torch.tensor(np.asarray(a, np.float64))  # noqa: E731
    tol = dict(rtol=TOL[dtype], atol=TOL[dtype])
    p, t = _data((9, 4), dtype)
    np.testing.assert_allclose(L.mse(p, t), F.mse_loss(tt(p), tt(t)).item(), **tol)
    np.testing.assert_allclose(L.rmse(p, t), torch.sqrt(F.mse_loss(tt(p), tt(t))).item(), **tol)
    np.testing.assert_allclose(L.mae(p, t), F.l1_loss(tt(p), tt(t)).item(), **tol)
    np.testing.assert_allclose(L.sum_of_squares(p, t, reduction="sum"), F.mse_loss(tt(p), tt(t), reduction="sum").item(), **tol)
    pr, tr = _probabilities((9,), dtype)
    np.testing.assert_allclose(L.binary_cross_entropy(pr, tr), F.binary_cross_entropy(tt(pr), tt(tr)).item(), **tol)
    z, soft = _args_for("binary_cross_entropy_with_logits", (9,), dtype)
    np.testing.assert_allclose(
        L.binary_cross_entropy_with_logits(z, soft), F.binary_cross_entropy_with_logits(tt(z), tt(soft)).item(), **tol
    )
    z, onehot = _args_for("softmax_cross_entropy", (9, 6), dtype)
    labels = np.asarray(onehot).argmax(-1)
    np.testing.assert_allclose(
        L.softmax_cross_entropy(z, jnp.asarray(labels)), F.cross_entropy(tt(z), torch.tensor(labels)).item(), **tol
    )
    # probability targets (torch: class probabilities along dim 1)
    soft_targets = jax.nn.softmax(jnp.asarray(np.random.default_rng(5).normal(size=(9, 6)), dtype))
    np.testing.assert_allclose(
        L.softmax_cross_entropy(z, soft_targets), F.cross_entropy(tt(z), tt(soft_targets)).item(), **tol
    )
    # micrograd-style replay: torch autograd gives the same gradient as the hand formula
    zt = tt(z).requires_grad_(True)
    F.cross_entropy(zt, torch.tensor(labels)).backward()
    np.testing.assert_allclose(L.softmax_cross_entropy_gradient(z, jnp.asarray(labels)), zt.grad.numpy(), **tol)


# ----------------------------------------------------------------------------- gradients vs autodiff


def _extreme(name, dtype):
    """Inputs near the edges of each loss's domain."""
    if name in REGRESSION:
        p = jnp.asarray([1e4, -1e4, 1e-8, 3.0, -2.0], dtype)
        t = jnp.asarray([-1e4, 1e4, 0.0, 3.5, 1e3], dtype)
    elif name == "binary_cross_entropy":
        p = jnp.asarray([1e-6, 1 - 1e-4, 0.5, 1e-3, 0.999], dtype)
        t = jnp.asarray([1.0, 0.0, 1.0, 0.0, 1.0], dtype)
    elif name == "binary_cross_entropy_with_logits":
        p = jnp.asarray([1e4, -1e4, 50.0, -50.0, 0.0], dtype)
        t = jnp.asarray([0.0, 1.0, 1.0, 0.0, 0.3], dtype)
    elif name == "categorical_cross_entropy":
        p = jnp.asarray([[1e-6, 1 - 1e-6], [0.5, 0.5], [0.999, 0.001]], dtype)
        t = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype)
    else:
        p = jnp.asarray([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0], [50.0, -50.0, 3.0]], dtype)
        t = jnp.asarray([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype)
    return p, t


@pytest.mark.parametrize(
    "dtype,reduction",
    # "sum" and "none" share one elementwise gradient, so "none" (the gradient of the summed
    # per-example losses) covers both; the "sum" values are checked against NumPy above.
    [(jnp.float32, "mean"), (jnp.float64, "mean"), (jnp.float64, "none")],
)
@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_hand_gradient_equals_jax_grad(name, reduction, dtype):
    loss, grad, kw = ALL_LOSSES[name]
    total = (lambda a, b: jnp.sum(loss(a, b, reduction=reduction, **kw))) if reduction == "none" else (
        lambda a, b: loss(a, b, reduction=reduction, **kw)
    )
    for p, t in [_args_for(name, (6, 3), dtype, seed=4), _extreme(name, dtype)]:
        hand = grad(p, t, reduction=reduction, **kw)
        auto = jax.grad(total)(p, t)
        assert hand.shape == p.shape and hand.dtype == dtype
        scale = float(np.max(np.abs(np.asarray(auto, np.float64)))) or 1.0
        np.testing.assert_allclose(hand, auto, rtol=TOL[dtype], atol=TOL[dtype] * scale, err_msg=name)


def test_sigmoid_plus_bce_gives_error_times_input():
    # Seed 004: ∂E/∂w = (y − t) · x for y = sigmoid(x·w) and binary cross-entropy.
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.normal(size=(10, 3)), jnp.float64)
    t = jnp.asarray(rng.integers(0, 2, size=10), jnp.float64)
    w = jnp.asarray(rng.normal(size=3), jnp.float64)
    auto = jax.grad(lambda w: L.binary_cross_entropy(jax.nn.sigmoid(x @ w), t))(w)
    y = _np_sigmoid(np.asarray(x @ w))
    hand = ((y - np.asarray(t))[:, None] * np.asarray(x)).mean(axis=0)
    np.testing.assert_allclose(auto, hand, rtol=1e-10)
    np.testing.assert_allclose(x.T @ L.binary_cross_entropy_with_logits_gradient(x @ w, t), hand, rtol=1e-10)


def test_softmax_plus_ce_gives_p_minus_onehot():
    z = jnp.asarray([[2.0, 1.0, 0.1]], jnp.float64)
    p = np.exp([2.0, 1.0, 0.1]) / np.exp([2.0, 1.0, 0.1]).sum()
    np.testing.assert_allclose(L.softmax_cross_entropy_gradient(z, jnp.asarray([0])), [p - [1, 0, 0]], rtol=1e-12)


# ----------------------------------------------------------------------------- edges and errors


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.bfloat16])
def test_binary_cross_entropy_finite_at_zero_and_one(dtype):
    p = jnp.asarray([0.0, 1.0, 0.0, 1.0], dtype)
    t = jnp.asarray([1.0, 0.0, 0.0, 1.0], dtype)
    values = np.asarray(L.binary_cross_entropy(p, t, reduction="none"), np.float64)
    grads = np.asarray(L.binary_cross_entropy_gradient(p, t), np.float64)
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grads))
    assert values[0] > 4 and values[1] > 4  # confidently wrong costs a lot (−log ε; ε = 2⁻⁷ in bfloat16)
    assert values[2] < 1e-2 and values[3] < 1e-2  # right costs ~0
    assert grads[0] < 0 < grads[1]  # and the gradient points the right way
    cce = L.categorical_cross_entropy(jnp.asarray([[0.0, 1.0]], dtype), jnp.asarray([[1.0, 0.0]], dtype))
    assert np.isfinite(float(cce))


def test_softmax_cross_entropy_finite_for_huge_logits():
    for dtype in (jnp.float32, jnp.bfloat16):
        z = jnp.asarray([[1e4, -1e4, 0.0]], dtype)
        assert float(L.softmax_cross_entropy(z, jnp.asarray([0]))) == 0.0
        np.testing.assert_allclose(float(L.softmax_cross_entropy(z, jnp.asarray([2]))), 1e4, rtol=1e-2)
        assert np.all(np.isfinite(np.asarray(L.softmax_cross_entropy_gradient(z, jnp.asarray([1])), np.float32)))


def test_shape_mismatch_and_bad_arguments_raise_clear_errors():
    p = jnp.zeros((4, 3), jnp.float32)
    with pytest.raises(ValueError, match=r"predictions\.shape=\(4, 3\) and targets\.shape=\(4,\)"):
        L.mse(p, jnp.zeros(4, jnp.float32))
    with pytest.raises(ValueError, match=r"predictions\.shape=\(4, 3\) and targets\.shape=\(3,\)"):
        L.mae_gradient(p, jnp.zeros(3, jnp.float32))
    with pytest.raises(ValueError, match=r"probabilities\.shape=\(4, 3\) and targets\.shape=\(1, 3\)"):
        L.binary_cross_entropy(p, jnp.zeros((1, 3), jnp.float32))
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.mse(p, p, reduction="average")
    with pytest.raises(ValueError, match=r"logits\.shape=\(4, 3\) and labels\.shape=\(3,\)"):
        L.softmax_cross_entropy(p, jnp.asarray([0, 1, 2]))
    with pytest.raises(ValueError, match=r"logits must have a class axis"):
        L.softmax_cross_entropy_gradient(jnp.float32(1.0), jnp.asarray(0))


def test_static_errors_raise_at_trace_time_under_an_outer_jit_and_vmap():
    p = jnp.zeros((4, 3), jnp.float32)
    with pytest.raises(ValueError, match=r"predictions\.shape=\(4, 3\) and targets\.shape=\(4,\)"):
        jax.jit(L.mse)(p, jnp.zeros(4, jnp.float32))
    with pytest.raises(ValueError, match="reduction must be one of"):
        jax.jit(lambda a: L.sum_of_squares_gradient(a, a, reduction="avg"))(p)
    with pytest.raises(ValueError, match=r"logits\.shape=\(3,\) and labels\.shape=\(2,\)"):
        jax.vmap(L.softmax_cross_entropy)(p, jnp.zeros((4, 2), jnp.int32))
    with pytest.raises(ValueError, match=r"probabilities\.shape=\(3,\) and targets\.shape=\(2,\)"):
        jax.vmap(L.binary_cross_entropy)(p, jnp.zeros((4, 2), jnp.float32))


def test_public_losses_are_themselves_jitted_and_keep_their_docstrings():
    for name in L.__all__:
        f = getattr(L, name)
        assert hasattr(f, "lower"), f"{name} is not a jax.jit function"
        assert f.__name__ == name and "Returns:" in f.__doc__, name


def test_values_are_not_checked_here():
    # Value checks (finite, probabilities in [0, 1], labels in range) belong to the host entry points;
    # the losses compute on what they get.
    nan = jnp.asarray([jnp.nan, 1.0], jnp.float64)
    assert np.isnan(float(L.mse(nan, jnp.zeros(2, jnp.float64))))
    assert np.isnan(float(L.softmax_cross_entropy(jnp.asarray([[jnp.nan, 0.0]]), jnp.asarray([0]))))
    # p = 1.5 is clipped to 1 − ε like p = 1: the same large finite loss for target 0.
    out_of_range = L.binary_cross_entropy(jnp.asarray([1.5], jnp.float64), jnp.asarray([0.0], jnp.float64))
    np.testing.assert_allclose(out_of_range, -np.log(np.finfo(np.float64).eps), rtol=1e-6)
    # A label outside [0, C) one-hot encodes to a zero row: a loss of 0, which is why run_epoch
    # and evaluate check the label range before training.
    assert float(L.softmax_cross_entropy(jnp.zeros((1, 3), jnp.float64), jnp.asarray([3]))) == 0.0


def test_softmax_cross_entropy_does_not_recompile_for_new_values():
    chex = pytest.importorskip("chex")

    chex.clear_trace_counter()  # chex keys its counter on the source, shared across parametrized runs

    @jax.jit
    @chex.assert_max_traces(n=1)
    def objective(w, x, labels, lam):
        return L.softmax_cross_entropy(x @ w, labels) + lam * L.mse(w, jnp.zeros_like(w))

    grad = jax.grad(objective)
    w = jnp.zeros((5, 3), jnp.float32)
    for i in range(4):
        rng = np.random.default_rng(i)
        x = jnp.asarray(rng.normal(size=(8, 5)), jnp.float32)
        labels = jnp.asarray(rng.integers(0, 3, 8), jnp.int32)
        w = w - 0.1 * jax.jit(grad)(w, x, labels, jnp.float32(0.1 * i))
        objective(w, x, labels, jnp.float32(0.1 * i))
    if hasattr(L.softmax_cross_entropy, "_cache_size"):
        z = jnp.ones((6, 4), jnp.float32)
        L.softmax_cross_entropy(z, jnp.zeros(6, jnp.int32))
        start = L.softmax_cross_entropy._cache_size()
        for i in range(3):
            L.softmax_cross_entropy(z * i, jnp.full(6, i, jnp.int32))
        assert L.softmax_cross_entropy._cache_size() == start


def test_losses_work_under_jit_vmap_and_per_example_grads():
    z, labels = _args_for("softmax_cross_entropy", (6, 4), jnp.float32)
    int_labels = jnp.argmax(labels, -1)
    eager = L.softmax_cross_entropy(z, int_labels, reduction="none")
    np.testing.assert_allclose(jax.jit(lambda a, b: L.softmax_cross_entropy(a, b, reduction="none"))(z, int_labels), eager, rtol=1e-6)
    # vmap over examples: each call sees one example (1-D logits, 0-d label).
    np.testing.assert_allclose(jax.vmap(L.softmax_cross_entropy)(z, int_labels), eager, rtol=1e-6)
    per_example_grads = jax.vmap(jax.grad(L.softmax_cross_entropy))(z, int_labels)
    np.testing.assert_allclose(per_example_grads, L.softmax_cross_entropy_gradient(z, int_labels, reduction="sum"), rtol=1e-5, atol=1e-7)
    p, t = _data((6, 2), jnp.float32)
    np.testing.assert_allclose(jax.vmap(L.mse)(p, t), L.mse(p, t, reduction="none"), rtol=1e-6)
