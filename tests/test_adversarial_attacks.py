"""Attacks of jaxmath.adversarial against independent references.

References: hand values (the CW margin with all-negative logits), NumPy with a hand-written gradient (FGSM on
a linear softmax model), torch autograd (FGSM and PGD replayed step by step on a small MLP), the documented
random-start draws and restart rule replayed in NumPy, and, on an MLP trained here on MNIST, the orderings
any correct attack must show (clean >= FGSM >= PGD, accuracy falling to ~0 as eps grows).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch  # the oracle for gradients with respect to the input (test-only)

from jaxmath import adversarial, losses, optim, training
from jaxmath.adversarial import robust as robust_module
from jaxmath.datasets import load_mnist
from jaxmath.models import mlp

KEY = jax.random.key(0)


def _linear_apply(params, x):
    w, b = params
    return x.reshape(x.shape[0], -1) @ w + b


def _linear(d=6, k=4, n=5, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(d, k)), rng.normal(size=k)
    x = rng.uniform(0.05, 0.95, size=(n, d))
    labels = rng.integers(0, k, n)
    return (jnp.asarray(w, dtype), jnp.asarray(b, dtype)), jnp.asarray(x, dtype), jnp.asarray(labels, jnp.int32)


_MODELS = {}


def _small_mlp(dtype="float64", sizes=(12, 16, 10), n=8, seed=0):
    """A 12-16-10 relu MLP and data; one Model object per dtype, so tests share the compiled attacks."""
    model = _MODELS.setdefault((dtype, sizes), mlp.make(sizes, activation="relu", dtype=dtype))
    params = model.init(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.uniform(0, 1, size=(n, sizes[0])), dtype)
    labels = jnp.asarray(rng.integers(0, sizes[-1], n), jnp.int32)
    return model, params, x, labels


# --------------------------------------------------------------------------- shapes and losses


def test_attacks_return_the_shape_and_dtype_of_x():
    shape = (5, 2, 3)  # images with a trailing shape: the attacks never flatten x themselves
    params, x, labels = _linear()
    x = x.reshape(shape).astype(jnp.float32)
    params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), params)
    for out in (
        adversarial.fgsm(_linear_apply, params, x, labels, eps=0.1),
        adversarial.pgd(_linear_apply, params, x, labels, KEY, eps=0.5, step_size=0.1, num_steps=3, norm="l2",
                        num_restarts=2, loss="cw_margin", targeted=True),
    ):
        assert out.shape == shape and out.dtype == jnp.float32
    assert adversarial.cross_entropy(jnp.zeros((3, 4)), jnp.zeros(3, jnp.int32)).shape == (3,)
    assert adversarial.cw_margin(jnp.zeros((3, 4)), jnp.zeros(3, jnp.int32)).shape == (3,)


def test_cross_entropy_matches_numpy_and_the_library_loss_and_stays_finite_for_huge_logits():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(7, 5)) * 3
    labels = rng.integers(0, 5, 7)
    expected = -np.log(np.exp(z[np.arange(7), labels]) / np.exp(z).sum(axis=1))
    got = adversarial.cross_entropy(jnp.asarray(z, jnp.float64), jnp.asarray(labels))
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    np.testing.assert_allclose(
        got, losses.softmax_cross_entropy(jnp.asarray(z), jnp.asarray(labels), reduction="none"), rtol=1e-10)
    big = adversarial.cross_entropy(jnp.asarray([[1e4, 0.0, -1e4]], jnp.float32), jnp.asarray([1]))
    np.testing.assert_allclose(big, [1e4], rtol=1e-6)


def test_cw_margin_hand_values_including_all_negative_logits():
    z = jnp.asarray([[-1.0, -3.0, -2.0],    # all negative, y = 1: max(-1, -2) - (-3) = 2 (a 0 mask gives 3)
                     [2.0, 0.5, 1.0],       # correct and confident: max(0.5, 1) - 2 = -1
                     [-5.0, -4.0, -6.0],    # all negative, y = 0: max(-4, -6) - (-5) = 1 (a 0 mask gives 5)
                     [0.0, 3.0, -1.0]], jnp.float64)
    labels = jnp.asarray([1, 0, 0, 2])
    np.testing.assert_allclose(adversarial.cw_margin(z, labels), [2.0, -1.0, 1.0, 4.0], rtol=0, atol=1e-12)
    # the gradient points at the best wrong class and away from the true one, never at the masked entry
    grad = jax.grad(lambda z: adversarial.cw_margin(z, labels)[0])(z)
    np.testing.assert_array_equal(grad[0], [1.0, -1.0, 0.0])


# --------------------------------------------------------------------------- FGSM against its formula


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_equals_its_formula_on_a_linear_softmax_model_float64(targeted):
    params, x, labels = _linear(n=8)
    w, b = (np.asarray(a) for a in params)
    xn, ln = np.asarray(x), np.asarray(labels)
    # ∇ₓ CE = (softmax(xW + b) − onehot(y)) Wᵀ, written by hand
    grad = (_softmax(xn @ w + b) - np.eye(4)[ln]) @ w.T
    direction = -np.sign(grad) if targeted else np.sign(grad)
    expected = np.clip(xn + 0.2 * direction, 0.0, 1.0)
    got = adversarial.fgsm(_linear_apply, params, x, labels, eps=0.2, targeted=targeted)
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # the CW margin: ∇ₓ M = W[:, j*] − W[:, y], j* the best wrong class
    z = xn @ w + b
    masked = np.where(np.eye(4)[ln] == 1, -np.inf, z)
    grad_m = w[:, masked.argmax(axis=1)].T - w[:, ln].T
    got_m = adversarial.fgsm(_linear_apply, params, x, labels, eps=0.2, loss="cw_margin", clip=None)
    np.testing.assert_allclose(got_m, xn + 0.2 * np.sign(grad_m), rtol=0, atol=1e-12)


class _TorchMLP(torch.nn.Module):
    def __init__(self, params):
        super().__init__()
        self.layers = [(torch.tensor(np.asarray(w)), torch.tensor(np.asarray(b))) for w, b in params]

    def forward(self, x):
        for i, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def _torch_grad(net, x, labels):
    x = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(net(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def test_fgsm_replayed_in_torch_on_a_small_mlp_float64():
    model, params, x, labels = _small_mlp()
    net, xt, lt = _TorchMLP(params), torch.tensor(np.asarray(x)), torch.tensor(np.asarray(labels), dtype=torch.long)
    expected = torch.clamp(xt + 0.1 * _torch_grad(net, xt, lt).sign(), 0, 1).numpy()
    got = adversarial.fgsm(model.apply, params, x, labels, eps=0.1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_replayed_in_torch_step_by_step_float64(norm):
    model, params, x, labels = _small_mlp()
    net, xt, lt = _TorchMLP(params), torch.tensor(np.asarray(x)), torch.tensor(np.asarray(labels), dtype=torch.long)
    eps, alpha = (0.1, 0.03) if norm == "linf" else (0.6, 0.2)
    xa = xt.clone()
    for _ in range(6):
        g = _torch_grad(net, xa, lt)
        if norm == "linf":
            xa = torch.min(torch.max(xa + alpha * g.sign(), xt - eps), xt + eps)
        else:
            xa = xa + alpha * g / g.norm(dim=1, keepdim=True)
            d = xa - xt
            xa = xt + d * torch.clamp(eps / d.norm(dim=1, keepdim=True), max=1.0)
        xa = xa.clamp(0, 1)
    got = adversarial.pgd(model.apply, params, x, labels, KEY, eps=eps, step_size=alpha, num_steps=6, norm=norm,
                          random_start=False)
    np.testing.assert_allclose(got, xa.numpy(), rtol=0, atol=1e-10)
    assert not np.allclose(got, x)  # the attack moved


# --------------------------------------------------------------------------- starts, keys, restarts


def _linf_start(key, x, eps):
    """The documented L∞ draw, replayed: ε · U[−1, 1] from fold_in(key, r), clipped to [0, 1]."""
    delta = eps * jax.random.uniform(key, x.shape, jnp.float32, minval=-1.0, maxval=1.0)
    return np.clip(np.asarray(x) + np.asarray(delta.astype(x.dtype)), 0.0, 1.0)


def test_zero_steps_return_x_or_x_plus_the_clipped_random_start_float32():
    model, params, x, labels = _small_mlp(dtype="float32", n=64)
    kwargs = dict(eps=0.2, step_size=0.05, num_steps=0)
    same = adversarial.pgd(model.apply, params, x, labels, KEY, random_start=False, **kwargs)
    np.testing.assert_array_equal(same, x)
    started = np.asarray(adversarial.pgd(model.apply, params, x, labels, KEY, **kwargs))
    np.testing.assert_allclose(started, _linf_start(jax.random.fold_in(KEY, 0), x, 0.2), rtol=0, atol=1e-7)
    delta = started - np.asarray(x)
    assert np.all(np.abs(delta) <= 0.2 + 1e-7) and np.all((started >= 0) & (started <= 1))
    # uniform on [-eps, eps] where no clipping happened: mean |δ| ≈ eps/2
    free = (started > 0) & (started < 1)
    assert abs(np.abs(delta[free]).mean() - 0.1) < 0.01


def test_l2_random_start_is_uniform_in_the_ball():
    # P(‖δ‖ < ε/2) = (1/2)^d for a uniform draw in the d-ball (a draw on the sphere gives 0, a Gaussian
    # radius more); directions have mean 0
    n, eps, d = 20000, 0.5, 3
    x = jnp.full((n, d), 0.5, jnp.float32)
    apply = lambda p, x: x @ p
    params = jnp.ones((d, 3), jnp.float32)
    out = adversarial.pgd(apply, params, x, jnp.zeros(n, jnp.int32), KEY, eps=eps, step_size=0.1, num_steps=0,
                          norm="l2", clip=None)
    delta = np.asarray(out - x, np.float64)
    r = np.linalg.norm(delta, axis=1)
    assert r.max() <= eps * (1 + 1e-6)
    for fraction in (0.5, 0.8):
        assert abs(np.mean(r < fraction * eps) - fraction**d) < 0.012
    assert np.all(np.abs((delta / r[:, None]).mean(axis=0)) < 0.03)


_RESTART_KWARGS = {"linf": dict(eps=0.05, step_size=0.01, num_steps=5, norm="linf"),
                   "l2": dict(eps=0.3, step_size=0.1, num_steps=5, norm="l2")}


def test_same_key_same_result_different_key_different_start():
    model, params, x, labels = _small_mlp(dtype="float32", n=40)
    for norm in ("linf", "l2"):
        run = lambda key: adversarial.pgd(model.apply, params, x, labels, key, **_RESTART_KWARGS[norm])
        np.testing.assert_array_equal(run(KEY), run(jax.random.key(0)))
        assert not np.allclose(run(KEY), run(jax.random.key(1)))


def test_restarts_keep_per_input_the_successful_then_highest_objective_start():
    # With zero steps each restart is its start, so the kept row can be predicted from the documented draws.
    model, params, x, labels = _small_mlp(dtype="float32", n=64, seed=3)
    num_restarts, eps = 5, 0.3
    got = np.asarray(adversarial.pgd(model.apply, params, x, labels, KEY, eps=eps, step_size=0.1, num_steps=0,
                                     num_restarts=num_restarts))
    starts = [_linf_start(jax.random.fold_in(KEY, r), x, eps) for r in range(num_restarts)]
    logits = [np.asarray(model.apply(params, jnp.asarray(s))) for s in starts]
    objective = np.stack([np.asarray(adversarial.cross_entropy(jnp.asarray(z), labels)) for z in logits])
    success = np.stack([z.argmax(axis=1) != np.asarray(labels) for z in logits])
    for i in range(len(x)):
        candidates = np.flatnonzero(success[:, i]) if success[:, i].any() else np.arange(num_restarts)
        best = candidates[np.argmax(objective[candidates, i])]
        np.testing.assert_allclose(got[i], starts[best][i], rtol=0, atol=1e-7)
    assert len({int(np.argmax(objective[:, i])) for i in range(len(x))}) > 1  # different runs win


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_restarts_are_never_worse_than_one_run_with_the_same_key(norm):
    model, params, x, labels = _small_mlp(dtype="float32", n=40, seed=4)
    kwargs = _RESTART_KWARGS[norm]

    def score(xa):
        z = model.apply(params, xa)
        return np.asarray(jnp.argmax(z, axis=1) != labels), np.asarray(adversarial.cross_entropy(z, labels))

    s1, v1 = score(adversarial.pgd(model.apply, params, x, labels, KEY, **kwargs))
    s4, v4 = score(adversarial.pgd(model.apply, params, x, labels, KEY, num_restarts=4, **kwargs))
    assert np.all(s4 >= s1)
    same = s4 == s1
    assert np.all(v4[same] >= v1[same] - 1e-6)
    assert np.any(v4 > v1 + 1e-6)  # some input gained from a restart


def test_vmap_over_eps_equals_a_loop_and_eps_may_be_traced():
    model, params, x, labels = _small_mlp(dtype="float32")
    eps = jnp.asarray([0.0, 0.05, 0.2], jnp.float32)
    attack = lambda e: adversarial.pgd(model.apply, params, x, labels, KEY, eps=e, step_size=e / 4, num_steps=5)
    stacked = jax.vmap(attack)(eps)
    for i, e in enumerate(eps):
        np.testing.assert_allclose(stacked[i], attack(e), rtol=0, atol=1e-6)
    np.testing.assert_allclose(stacked[0], x, atol=0)  # eps = 0: nowhere to go


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_other_dtypes_stay_in_the_ball_and_finite(dtype):
    model, params, x, labels = _small_mlp(dtype=dtype, n=8)
    for norm, eps in ((("linf", 0.1),) if dtype == "float64" else (("l2", 0.5),)):
        out = adversarial.pgd(model.apply, params, x, labels, KEY, eps=eps, step_size=eps / 3, num_steps=4,
                              norm=norm, num_restarts=2 if dtype == "float64" else 1, loss="cw_margin")
        assert out.dtype == jnp.dtype(dtype)
        delta = np.asarray(out.astype(jnp.float64) - x.astype(jnp.float64))
        assert np.all(np.isfinite(delta))
        size = np.abs(delta).max(axis=1) if norm == "linf" else np.linalg.norm(delta, axis=1)
        slack = 1e-12 if dtype == "float64" else 2e-2 * eps + 8e-3  # bfloat16 rounds pixels near 1 by 2^-8
        assert np.all(size <= eps + slack), size
    fg = adversarial.fgsm(model.apply, params, x, labels, eps=0.1)
    assert fg.dtype == jnp.dtype(dtype) and bool(jnp.all(jnp.isfinite(fg)))


def test_negative_eps_gives_nan_inside_jit_and_is_refused_at_the_host_entry():
    model, params, x, labels = _small_mlp(dtype="float32")
    assert bool(jnp.all(jnp.isnan(adversarial.fgsm(model.apply, params, x, labels, eps=-0.1))))
    model, params, x, labels = _small_mlp(dtype="float32", n=64)
    out = adversarial.pgd(model.apply, params, x, labels, KEY, eps=-0.1, step_size=0.05, num_steps=0,
                          random_start=False)
    assert bool(jnp.all(jnp.isnan(out)))
    with pytest.raises(ValueError, match=r"eps must be finite and >= 0, got eps=\[0.1, -0.1\]"):
        adversarial.robust_accuracy(model.apply, params, x, labels, KEY, eps=[0.1, -0.1], attack="fgsm")


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_naming_the_argument():
    model, params, x, labels = _small_mlp(dtype="float32")
    f = model.apply
    pgd = lambda **kw: adversarial.pgd(f, params, kw.pop("x", x), kw.pop("labels", labels), kw.pop("key", KEY),
                                       **{"eps": 0.1, "step_size": 0.01, "num_steps": 2, **kw})
    cases = [
        (dict(norm="l1"), ValueError, r"norm must be one of 'linf', 'l2', got norm='l1'"),
        (dict(loss="mse"), ValueError, r"loss must be one of 'cross_entropy', 'cw_margin', got loss='mse'"),
        (dict(labels=labels[:4]), ValueError, r"x and labels must have the same number of rows.*\(8, 12\).*\(4,\)"),
        (dict(labels=labels.astype(jnp.float32)), TypeError, r"labels must be integer class indices"),
        (dict(x=(x * 255).astype(jnp.uint8)), TypeError, r"x must be a float array.*uint8"),
        (dict(num_steps=-1), ValueError, r"num_steps must be >= 0, got num_steps=-1"),
        (dict(num_steps=2.5), TypeError, r"num_steps must be an integer"),
        (dict(num_restarts=0), ValueError, r"num_restarts must be >= 1"),
        (dict(num_restarts=3, random_start=False), ValueError, r"num_restarts=3 needs random_start=True"),
        (dict(key=0), TypeError, r"key must be a JAX PRNG key such as jax.random.key\(0\)"),
        (dict(clip=(1.0, 0.0)), ValueError, r"clip must satisfy low < high"),
        (dict(eps=jnp.asarray([0.1, 0.2])), ValueError, r"eps must be a scalar \(vmap over it"),
        (dict(step_size="0.1"), TypeError, r"path step_size"),  # JAX refuses a str before tracing, by name
        (dict(targeted=1), TypeError, r"targeted must be True or False"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            pgd(**kwargs)
    with pytest.raises(ValueError, match=r"apply_fn\(params, x\) must return logits of shape \(n, k\)"):
        adversarial.fgsm(lambda p, x: f(p, x)[0], params, x, labels, eps=0.1)
    with pytest.raises(ValueError, match=r"logits must have at least 2 classes"):
        adversarial.cw_margin(jnp.zeros((3, 1)), jnp.zeros(3, jnp.int32))
    ra = lambda **kw: adversarial.robust_accuracy(f, params, x, labels, KEY, eps=0.1, **kw)
    with pytest.raises(ValueError, match=r"attack must be one of 'pgd', 'fgsm', got attack='cw'"):
        ra(attack="cw")
    with pytest.raises(TypeError, match=r"attack='pgd' needs step_size"):
        ra(num_steps=3)
    with pytest.raises(TypeError, match=r"attack='fgsm' has no option 'num_steps'"):
        ra(attack="fgsm", num_steps=3)
    with pytest.raises(ValueError, match=r"its attack is untargeted"):
        ra(attack="fgsm", targeted=True)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        adversarial.robust_accuracy(f, params, x, labels + 10, KEY, eps=0.1, attack="fgsm")
    with pytest.raises(ValueError, match=r"step_size must be a scalar or one value per eps \(1\)"):
        ra(step_size=[0.1, 0.2], num_steps=2)


# --------------------------------------------------------------------------- robust_accuracy


def _loop_accuracy(apply_fn, params, x, labels, key, eps_values, batch_size, **options):
    """robust_accuracy's definition as a plain host loop over eps and batches.

    The last batch is padded with copies of its first row, as documented, so that its random starts are the
    same draws; only its real rows are counted.
    """
    out = []
    for e in eps_values:
        hits = 0
        for b, start in enumerate(range(0, len(x), batch_size)):
            xb, lb = np.asarray(x[start:start + batch_size]), np.asarray(labels[start:start + batch_size])
            rows = len(xb)
            xb = np.concatenate([xb, np.repeat(xb[:1], batch_size - rows, axis=0)])
            lb = np.concatenate([lb, np.repeat(lb[:1], batch_size - rows, axis=0)])
            xa = adversarial.pgd(apply_fn, params, jnp.asarray(xb), jnp.asarray(lb), jax.random.fold_in(key, b), eps=e,
                                 **options)
            clean = np.asarray(jnp.argmax(apply_fn(params, jnp.asarray(xb)), axis=1)) == lb
            robust = np.asarray(jnp.argmax(apply_fn(params, xa), axis=1)) == lb
            hits += int(np.sum((clean & robust)[:rows]))
        out.append(hits / len(x))
    return np.asarray(out)


@pytest.mark.parametrize("vectorize_eps", [True, False], ids=["vmap", "map"])
def test_robust_accuracy_on_a_ragged_last_batch_matches_a_loop_and_compiles_once(vectorize_eps):
    model, params, x, _ = _small_mlp(dtype="float32", n=25, seed=5)  # n = 25: batches 10, 10, 5
    # labels the untrained net gets right on 20 of the 25 inputs, so the attack has something to break
    labels = jnp.argmax(model.apply(params, x), axis=1).astype(jnp.int32)
    labels = labels.at[::5].set((labels[::5] + 1) % 10)
    apply_fn = lambda p, x: model.apply(p, x)  # a fresh function: a fresh compile to count
    options = dict(step_size=0.05, num_steps=3)
    start = robust_module._batch_counts._cache_size()
    eps = [0.0, 0.02, 0.05, 0.1, 0.3, 0.6]
    curve = adversarial.robust_accuracy(apply_fn, params, x, labels, KEY, eps=eps, batch_size=10,
                                        vectorize_eps=vectorize_eps, **options)
    assert robust_module._batch_counts._cache_size() - start == 1  # 6 eps, 3 batches (10, 10, 5 padded): one trace
    adversarial.robust_accuracy(apply_fn, params, x, labels, jax.random.key(3), eps=eps, batch_size=10,
                                vectorize_eps=vectorize_eps, **options)
    assert robust_module._batch_counts._cache_size() - start == 1
    assert curve.eps.shape == curve.accuracy.shape == (6,)
    clean = float(np.mean(np.asarray(jnp.argmax(model.apply(params, x), axis=1) == labels)))
    assert curve.clean_accuracy == clean == 0.8
    np.testing.assert_allclose(curve.accuracy, _loop_accuracy(apply_fn, params, x, labels, KEY, eps, 10, **options))
    assert curve.accuracy[0] == clean and curve.accuracy[-1] < clean


def test_robust_accuracy_refuses_a_non_bool_vectorize_eps():
    model, params, x, labels = _small_mlp(dtype="float32", n=4, seed=1)
    with pytest.raises(TypeError, match="vectorize_eps must be True, False or None, got vectorize_eps='yes'"):
        adversarial.robust_accuracy(model.apply, params, x, labels, KEY, eps=0.1, attack="fgsm", vectorize_eps="yes")


# --------------------------------------------------------------------------- on a trained MNIST network


@pytest.fixture(scope="module")
def trained():
    x, labels = load_mnist("train[:6000]")
    model = mlp.make((784, 64, 10), activation="relu")
    loss_fn = training.make_classifier_loss(model, num_classes=10)
    step = training.make_train_step(loss_fn, optim.adam(learning_rate=1e-3))
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    for _ in range(2):
        state, _ = training.run_epoch(state, x, labels, train_step=step, batch_size=32)
    x_test, labels_test = load_mnist("test[:1000]")
    x_test = jnp.asarray(x_test.reshape(1000, -1), jnp.float32) / 255.0
    return model, state.params, x_test, jnp.asarray(labels_test, jnp.int32)


@pytest.mark.slow
def test_trained_mlp_clean_above_fgsm_above_pgd_and_accuracy_falls_to_zero(trained):
    model, params, x, labels = trained
    eps = [0.0, 0.05, 0.1, 0.2, 0.5]
    fg = adversarial.robust_accuracy(model.apply, params, x, labels, KEY, eps=eps, attack="fgsm")
    pg = adversarial.robust_accuracy(model.apply, params, x, labels, KEY, eps=eps,
                                     step_size=[e / 4 for e in eps], num_steps=10)
    assert fg.clean_accuracy == pg.clean_accuracy > 0.85  # measured 0.887 with these settings
    i = eps.index(0.1)
    assert pg.clean_accuracy > fg.accuracy[i] > pg.accuracy[i], (fg, pg)
    assert np.all(np.diff(pg.accuracy) <= 0.005), pg  # more room, weaker model
    assert pg.accuracy[0] == pg.clean_accuracy and pg.accuracy[-1] < 0.05
    assert np.all(pg.accuracy <= fg.accuracy + 0.005)
    # one point of the curve recomputed by a plain pgd call (one batch of 1000)
    loop = _loop_accuracy(model.apply, params, x, labels, KEY, [0.1], 1000, step_size=0.1 / 4, num_steps=10)
    np.testing.assert_allclose(pg.accuracy[i], loop[0])


@pytest.mark.slow
def test_targeted_pgd_reaches_the_target_on_most_inputs(trained):
    model, params, x, labels = trained
    targets = (labels + 1) % 10
    for loss in ("cross_entropy", "cw_margin"):
        xa = adversarial.pgd(model.apply, params, x, targets, KEY, eps=0.3, step_size=0.02, num_steps=20,
                             loss=loss, targeted=True)
        hit = float(jnp.mean(jnp.argmax(model.apply(params, xa), axis=1) == targets))
        assert hit > 0.9, (loss, hit)
        assert float(jnp.max(jnp.abs(xa - x))) <= 0.3 + 1e-6
