"""Adversarial training: the Madry loss, its Danskin gradient, the engine's per-step key, evaluation paths."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import adversarial, optim, training
from jaxmath.models import mlp
from jaxmath.training.step import STEP_KEY_STREAM

SIDE = 4  # 4 x 4 "images": the tests are about the math, not about MNIST
SIZES = (SIDE * SIDE, 8, 3)


# One model per dtype for the whole file: the attacks are jitted with apply_fn static, so a shared apply
# function lets the tests share their compiled attacks.
_MODELS = {}


def _model(dtype="float64"):
    if dtype not in _MODELS:
        _MODELS[dtype] = mlp.make(SIZES, activation="tanh", dtype=dtype)
    return _MODELS[dtype]


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, SIDE, SIDE), dtype=np.uint8)
    labels = rng.integers(0, SIZES[-1], size=n).astype(np.uint8)
    return jnp.asarray(x), jnp.asarray(labels)


PGD = dict(eps=0.1, step_size=0.03, num_steps=5)


def _pgd_loss(model, *, norm="linf", flatten=True):
    clean = training.make_classifier_loss(model, num_classes=SIZES[-1])
    attack = adversarial.make_attack(model.apply, method="pgd", norm=norm, **PGD)
    return clean, adversarial.adversarial_loss(clean, attack, flatten=flatten)


def _independent_pgd(model, params, x, labels, key, *, norm="linf"):
    """The attack computed by hand from the public pgd, on the scaled, flattened pixels."""
    x01 = jnp.asarray(np.asarray(x, np.float64).reshape(len(x), -1) / 255.0, jax.tree_util.tree_leaves(params)[0].dtype)
    return adversarial.pgd(model.apply, params, x01, jnp.asarray(labels, jnp.int32), key, norm=norm, **PGD)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-5)])
def test_adversarial_loss_is_the_clean_loss_at_an_independently_computed_attack(dtype, tol):
    model = _model(dtype)
    params = model.init(jax.random.key(0))
    x, labels = _data()
    key = jax.random.key(7)
    clean, adv = _pgd_loss(model)
    x_adv = _independent_pgd(model, params, x, labels, key)
    want_loss, want_metrics = jax.jit(clean)(params, (x_adv, labels))
    adv_jit = jax.jit(adv)
    got_loss, got_metrics = adv_jit(params, (x, labels), key=key)
    assert got_loss.dtype == jnp.dtype(dtype)
    np.testing.assert_allclose(got_loss, want_loss, rtol=tol, atol=tol)
    np.testing.assert_allclose(got_metrics["accuracy"], want_metrics["accuracy"])
    # The attack did something: the loss at x_adv exceeds the clean loss.
    assert float(got_loss) > float(jax.jit(clean)(params, (x, labels))[0]) + 1e-3
    # Another key, another random start, another value.
    other, _ = adv_jit(params, (x, labels), key=jax.random.key(8))
    assert abs(float(other) - float(got_loss)) > 1e-8


def test_adversarial_loss_with_fgsm_uses_the_fgsm_formula():
    model = _model("float64")
    params = model.init(jax.random.key(1))
    x, labels = _data()
    clean = training.make_classifier_loss(model, num_classes=SIZES[-1])
    adv = adversarial.adversarial_loss(clean, adversarial.make_attack(model.apply, method="fgsm", eps=0.1),
                                       flatten=True)
    x01 = jnp.asarray(np.asarray(x, np.float64).reshape(len(x), -1) / 255.0)
    # FGSM by hand: x + eps sign(grad_x of the summed per-example cross-entropy), clipped to [0, 1].
    grad = jax.jit(jax.grad(
        lambda z: jnp.sum(adversarial.cross_entropy(model.apply(params, z), labels.astype(jnp.int32)))))(x01)
    x_adv = np.clip(np.asarray(x01) + 0.1 * np.sign(np.asarray(grad)), 0.0, 1.0)
    want, _ = jax.jit(clean)(params, (jnp.asarray(x_adv), labels))
    got, _ = jax.jit(adv)(params, (x, labels), key=jax.random.key(0))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_gradient_is_danskins_the_clean_gradient_at_the_fixed_adversarial_x(norm):
    model = _model("float64")
    params = model.init(jax.random.key(2))
    x, labels = _data()
    key = jax.random.key(3)
    clean, adv = _pgd_loss(model, norm=norm)
    x_adv = _independent_pgd(model, params, x, labels, key, norm=norm)
    danskin = jax.jit(jax.grad(lambda p: clean(p, (x_adv, labels))[0]))(params)
    got = jax.jit(jax.grad(lambda p: adv(p, (x, labels), key=key)[0]))(params)
    chex.assert_trees_all_close(got, danskin, rtol=1e-10, atol=1e-12)
    # ... and not the clean gradient at x (the attack moved the point the gradient is taken at).
    at_x = jax.jit(jax.grad(lambda p: clean(p, (x, labels))[0]))(params)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(got),
                                                                  jax.tree_util.tree_leaves(at_x)))
    assert diff > 1e-6


def test_an_attack_that_depends_differentiably_on_params_is_still_a_constant_for_the_gradient():
    # adversarial.pgd stops the gradient into params itself; a hand-written attack need not, and the wrapper
    # must still give Danskin's gradient, not the gradient through the attack.
    model = _model("float64")
    params = model.init(jax.random.key(5))
    x, labels = _data()
    clean = training.make_classifier_loss(model, num_classes=SIZES[-1])

    def attack(p, z, y, key):
        del key
        return jnp.clip(z + 0.2 * jnp.tanh(10.0 * jnp.mean(p[0][0])), 0.0, 1.0)

    adv = adversarial.adversarial_loss(clean, attack, flatten=True)
    x01 = jnp.asarray(np.asarray(x, np.float64).reshape(len(x), -1) / 255.0)
    x_adv = attack(params, x01, labels, None)
    danskin = jax.grad(lambda p: clean(p, (x_adv, labels))[0])(params)
    through = jax.grad(lambda p: clean(p, (attack(p, x01, labels, None), labels))[0])(params)
    got = jax.grad(lambda p: adv(p, (x, labels), key=jax.random.key(0))[0])(params)
    chex.assert_trees_all_close(got, danskin, rtol=1e-10, atol=1e-12)
    assert float(jnp.max(jnp.abs(through[0][0] - danskin[0][0]))) > 1e-6


def test_bfloat16_adversarial_loss_and_gradient_stay_finite():
    model = _model("bfloat16")
    params = model.init(jax.random.key(0))
    _, adv = _pgd_loss(model)
    batch = _data()
    loss, grads = jax.jit(jax.value_and_grad(lambda p: adv(p, batch, key=jax.random.key(0))[0]))(params)
    assert loss.dtype == jnp.bfloat16
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads)) and bool(jnp.isfinite(loss))


def test_adversarial_loss_keeps_the_clean_loss_attributes_and_refuses_bad_arguments():
    model = _model()
    clean, adv = _pgd_loss(model)
    assert adv.takes_key and adv.clean_loss is clean and adv.num_classes == 3 and adv.model is model
    assert not hasattr(clean, "takes_key")
    with pytest.raises(TypeError, match="attack must be callable"):
        adversarial.adversarial_loss(clean, None)
    with pytest.raises(ValueError, match="already takes a key"):
        adversarial.adversarial_loss(adv, adv.attack)
    with pytest.raises(ValueError, match="method must be one of"):
        adversarial.make_attack(model.apply, method="cw")


def _key_probe_loss():
    """A key-taking loss that reveals its key: C = Σ w·u(k), so SGD (η = 1) moves w by -u(k), and the metric
    "draw" is the first of the uniform numbers u(k)."""

    def loss_fn(params, batch, *, key):
        u = jax.random.uniform(key, params["w"].shape, dtype=params["w"].dtype)
        return jnp.sum(params["w"] * u) + 0.0 * jnp.sum(batch[0]), {"draw": u[0]}

    loss_fn.takes_key = True
    return loss_fn


def _draw(key):
    return float(jax.random.uniform(key, (3,), dtype=jnp.float64)[0])


def test_the_step_gives_a_key_taking_loss_a_documented_fresh_key_every_step():
    step = training.make_train_step(_key_probe_loss(), optim.sgd(learning_rate=1.0), donate=False)
    state_key = jax.random.key(11)
    state = step.init({"w": jnp.zeros(3, jnp.float64)}, key=state_key)
    batch = (jnp.zeros((2, 1), jnp.float64), jnp.zeros(2, jnp.int32))
    draws = []
    for t in range(4):
        state, metrics = step(state, batch)
        want = jax.random.fold_in(jax.random.fold_in(state_key, STEP_KEY_STREAM), t)
        assert float(metrics["draw"]) == _draw(want)
        draws.append(float(metrics["draw"]))
    assert len(set(draws)) == 4


def test_run_epoch_step_keys_are_distinct_from_its_shuffling_keys_and_reproducible():
    step = training.make_train_step(_key_probe_loss(), optim.sgd(learning_rate=1.0))
    x = jnp.zeros((4, 1), jnp.float64)
    labels = jnp.zeros(4, jnp.int32)
    state_key = jax.random.key(5)

    def two_epochs():
        # A copy of the key: the state holds the very array, and run_epoch donates the state.
        state = step.init({"w": jnp.zeros(3, jnp.float64)}, key=jnp.copy(state_key))
        draws = []
        for _ in range(2):
            state, metrics = training.run_epoch(state, x, labels, train_step=step, batch_size=2)
            draws += [float(d) for d in metrics["draw"]]
        return state, draws

    state, draws = two_epochs()
    # The engine's own keys: run_epoch splits state.key into (next state key, shuffle key) every epoch.
    k1, s1 = jax.random.split(state_key)
    k2, s2 = jax.random.split(k1)
    engine = {_draw(k) for k in (state_key, k1, s1, k2, s2)}
    assert len(set(draws)) == 4 and not engine & set(draws)
    stream = [jax.random.fold_in(k1, STEP_KEY_STREAM)] * 2 + [jax.random.fold_in(k2, STEP_KEY_STREAM)] * 2
    assert draws == [_draw(jax.random.fold_in(k, t)) for t, k in enumerate(stream)]
    again, draws_again = two_epochs()
    assert draws_again == draws
    chex.assert_trees_all_equal(again.params, state.params)


def test_adversarial_training_is_reproducible_from_the_state_key():
    model = _model("float32")
    clean, adv = _pgd_loss(model)
    step = training.make_train_step(adv, optim.sgd(learning_rate=0.5))
    x, labels = _data(n=24)
    params = model.init(jax.random.key(0))

    def train(key):
        state = step.init(params, key=key)
        for _ in range(3):
            state, _ = training.run_epoch(state, x, labels, train_step=step, batch_size=8)
        return state

    a, b, c = train(jax.random.key(1)), train(jax.random.key(1)), train(jax.random.key(2))
    assert int(a.step) == 9
    chex.assert_trees_all_equal(a.params, b.params)
    assert any(not np.array_equal(u, v) for u, v in zip(jax.tree_util.tree_leaves(a.params),
                                                        jax.tree_util.tree_leaves(c.params)))


def test_evaluate_reports_the_robust_figures_with_fixed_keys_and_the_clean_ones_through_clean_loss():
    model = _model("float64")
    params = model.init(jax.random.key(4))
    x, labels = _data(n=14)
    clean, adv = _pgd_loss(model)
    key = jax.random.key(9)
    got = training.evaluate(params, x, labels, loss_fn=adv, batch_size=6, key=key)
    # Batches of 6, 6 and the remainder 2, batch b attacked with fold_in(key, b); means weighted by size.
    adv_jit = jax.jit(adv)
    parts = [(adv_jit(params, (x[i:j], labels[i:j]), key=jax.random.fold_in(key, b)), j - i)
             for b, (i, j) in enumerate([(0, 6), (6, 12), (12, 14)])]
    want_loss = sum(float(out[0]) * m for out, m in parts) / 14
    want_acc = sum(float(out[1]["accuracy"]) * m for out, m in parts) / 14
    np.testing.assert_allclose(got["loss"], want_loss, rtol=1e-10)
    np.testing.assert_allclose(got["accuracy"], want_acc, rtol=1e-10)
    default = training.evaluate(params, x, labels, loss_fn=adv, batch_size=6)
    again = training.evaluate(params, x, labels, loss_fn=adv, batch_size=6)
    assert float(default["loss"]) == float(again["loss"])
    np.testing.assert_allclose(
        training.evaluate(params, x, labels, loss_fn=adv.clean_loss)["loss"],
        float(jax.jit(clean)(params, (x, labels))[0]), rtol=1e-10)
    assert float(default["loss"]) > float(training.evaluate(params, x, labels, loss_fn=clean)["loss"])
    with pytest.raises(TypeError, match="takes one"):
        training.evaluate(params, x, labels, loss_fn=clean, key=key)


def test_fit_trains_and_validates_an_adversarial_loss():
    model = _model("float32")
    clean, adv = _pgd_loss(model)
    step = training.make_train_step(adv, optim.adam(learning_rate=1e-2))
    x, labels = _data(n=40)
    val = _data(n=12, seed=1)
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    state, info = training.fit(state, x, labels, train_step=step, num_epochs=3, batch_size=10,
                               validation_data=val, progress=False)
    assert info.num_steps == 12 and info.num_epochs == 3
    # fit's validation is evaluate's default: the robust loss under the training attack, fixed keys.
    want = training.evaluate(state.params, *val, loss_fn=adv)
    np.testing.assert_allclose(info.history["val_loss"][-1], float(want["loss"]), rtol=1e-5)
    assert info.history["train_loss"][-1] < info.history["train_loss"][0]


@pytest.mark.slow
def test_fgsm_training_makes_a_small_mlp_more_robust_to_fgsm_than_standard_training():
    from jaxmath.datasets import load_mnist

    x, labels = load_mnist("train[:6000]")
    x_test, labels_test = load_mnist("test[:1000]")
    # tanh: a ReLU MLP trained on FGSM examples alone from its random start collapses to one class here.
    model = mlp.make((784, 64, 10), activation="tanh", dtype="float32")
    clean = training.make_classifier_loss(model, num_classes=10)
    attack = adversarial.make_attack(model.apply, method="fgsm", eps=0.1)
    adv = adversarial.adversarial_loss(clean, attack, flatten=True)
    params = model.init(jax.random.key(0))
    x01 = jnp.asarray(x_test, jnp.float32).reshape(-1, 784) / 255.0
    y_test = jnp.asarray(labels_test, jnp.int32)

    def fgsm_accuracy(loss_fn):
        step = training.make_train_step(loss_fn, optim.adam(learning_rate=2e-3))
        state = step.init(params, key=jax.random.key(1))
        for _ in range(4):  # same budget for both: 4 epochs of 60 steps of 100 images
            state, _ = training.run_epoch(state, x, labels, train_step=step, batch_size=100)
        x_adv = adversarial.fgsm(model.apply, state.params, x01, y_test, eps=0.1)
        clean_acc = float(jnp.mean(jnp.argmax(model.apply(state.params, x01), -1) == y_test))
        return clean_acc, float(jnp.mean(jnp.argmax(model.apply(state.params, x_adv), -1) == y_test))

    standard_clean, standard_fgsm = fgsm_accuracy(clean)
    robust_clean, robust_fgsm = fgsm_accuracy(adv)
    assert standard_clean > 0.85 and robust_clean > 0.8
    assert robust_fgsm > standard_fgsm + 0.2, (standard_fgsm, robust_fgsm)
