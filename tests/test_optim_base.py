"""The optimizer contract: validation, tree-structure errors, jit (one trace), vmap over learning rates, dtypes."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import optim

OPTIMIZERS = {
    "sgd": lambda lr: optim.sgd(learning_rate=lr),
    "momentum": lambda lr: optim.sgd(learning_rate=lr, momentum=0.9),
    "nesterov": lambda lr: optim.sgd(learning_rate=lr, momentum=0.9, nesterov=True),
    "adagrad": lambda lr: optim.adagrad(learning_rate=lr),
    "rmsprop": lambda lr: optim.rmsprop(learning_rate=lr),
    "rmsprop_centered": lambda lr: optim.rmsprop(learning_rate=lr, centered=True, momentum=0.5),
    "adadelta": lambda lr: optim.adadelta(learning_rate=lr),
    "adam": lambda lr: optim.adam(learning_rate=lr),
    "amsgrad": lambda lr: optim.adam(learning_rate=lr, amsgrad=True),
    "adamw": lambda lr: optim.adamw(learning_rate=lr, weight_decay=0.1),
}


def nested_params(dtype):
    return {
        "layers": [
            (jnp.asarray([[0.5, -1.0], [2.0, 0.1]], dtype), jnp.asarray([0.0, 1.0], dtype)),
            (jnp.asarray([[1.5], [-0.3]], dtype), jnp.asarray([0.2], dtype)),
        ],
        "scale": jnp.asarray(1.0, dtype),
    }


def loss(params, batch):
    x, y = batch
    h = x
    for w, b in params["layers"]:
        h = jnp.tanh(h @ w + b)
    return jnp.mean((params["scale"] * h[:, 0] - y) ** 2)


def quadratic(params, xy):
    """A cheap ill-conditioned quadratic over every leaf: Σ_leaves Σ_i c_i (θ_i − x̄)², c_i from 1 to 10."""
    x, _ = xy
    total = 0.0
    for leaf in jax.tree_util.tree_leaves(params):
        c = jnp.linspace(1.0, 10.0, leaf.size, dtype=leaf.dtype).reshape(leaf.shape)
        total = total + jnp.sum(c * (leaf - jnp.mean(x)) ** 2)
    return total


def batch(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(8, 2)), dtype), jnp.asarray(rng.normal(size=(8,)), dtype)


def test_apply_updates_adds_and_keeps_structure_and_dtype():
    params = {"a": jnp.asarray([1.0, 2.0], jnp.float32), "b": (jnp.asarray(3.0, jnp.bfloat16),)}
    updates = {"a": jnp.asarray([0.5, -0.5], jnp.float32), "b": (jnp.asarray(1.0, jnp.float32),)}
    new = optim.apply_updates(params, updates)
    assert new["a"].dtype == jnp.float32 and new["b"][0].dtype == jnp.bfloat16
    np.testing.assert_array_equal(new["a"], [1.5, 1.5])
    assert float(new["b"][0]) == 4.0
    with pytest.raises(ValueError, match=r"updates and params must have the same tree structure.*updates: .*params: "):
        optim.apply_updates(params, {"a": updates["a"]})


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_grads_with_another_tree_structure_raise_naming_both(name):
    opt = OPTIMIZERS[name](0.1)
    params = nested_params(jnp.float32)
    state = opt.init(params)
    wrong = {"layers": params["layers"], "other": params["scale"]}
    expected = r"grads and .* must have the same tree structure, got grads: PyTreeDef.*'other'.* and .*'scale'"
    with pytest.raises(ValueError, match=expected):
        opt.update(wrong, state, params)
    with pytest.raises(ValueError, match="same tree structure"):
        jax.jit(opt.update)(wrong, state, params)


@pytest.mark.parametrize(
    "build, argument",
    [
        (lambda: optim.sgd(learning_rate=-0.1), "learning_rate"),
        (lambda: optim.sgd(learning_rate=float("nan")), "learning_rate"),
        (lambda: optim.adam(learning_rate=float("inf")), "learning_rate"),
        (lambda: optim.sgd(learning_rate=0.1, momentum=1.0), "momentum"),
        (lambda: optim.sgd(learning_rate=0.1, momentum=-0.1), "momentum"),
        (lambda: optim.sgd(learning_rate=0.1, nesterov=True), "nesterov"),
        (lambda: optim.adam(b1=1.0), "b1"),
        (lambda: optim.adam(b1=float("nan")), "b1"),
        (lambda: optim.adam(b2=-0.5), "b2"),
        (lambda: optim.adam(eps=0.0), "eps"),
        (lambda: optim.adamw(eps=-1e-8), "eps"),
        (lambda: optim.adamw(weight_decay=-0.1), "weight_decay"),
        (lambda: optim.adagrad(eps=0.0), "eps"),
        (lambda: optim.adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda: optim.rmsprop(decay=1.0), "decay"),
        (lambda: optim.rmsprop(eps=0.0), "eps"),
        (lambda: optim.adadelta(rho=1.5), "rho"),
        (lambda: optim.adadelta(learning_rate=-1.0), "learning_rate"),
        (lambda: optim.clip_by_global_norm(max_norm=0.0), "max_norm"),
        (lambda: optim.clip_by_value(clip_value=-1.0), "clip_value"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_the_argument(build, argument):
    with pytest.raises(ValueError, match=argument):
        build()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("bad", ["0.1", "fast", True, None, 1j])
def test_learning_rate_that_is_not_a_real_number_raises_type_error_naming_it(name, bad):
    # float("0.1") parses and True == 1: both would train silently without the type check.
    with pytest.raises(TypeError, match=r"learning_rate must be a real number, got learning_rate="):
        OPTIMIZERS[name](bad)


@pytest.mark.parametrize(
    "build,argument",
    [
        (lambda: optim.sgd(learning_rate=0.1, momentum="0.9"), "momentum"),
        (lambda: optim.adam(learning_rate=0.1, b1="0.9"), "b1"),
        (lambda: optim.adamw(learning_rate=0.1, weight_decay=False), "weight_decay"),
        (lambda: optim.rmsprop(learning_rate=0.1, eps="1e-8"), "eps"),
        (lambda: optim.constant(value="0.1"), "value"),
    ],
)
def test_other_hyperparameters_that_are_not_numbers_raise_type_error(build, argument):
    with pytest.raises(TypeError, match=f"{argument} must be a real number"):
        build()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_is_named_and_counts(name):
    opt = OPTIMIZERS[name](0.1)
    params = nested_params(jnp.float32)
    state = opt.init(params)
    assert hasattr(state, "_fields") and state._fields[:2] == ("count", "learning_rate")
    assert state.count.dtype == jnp.int32 and state.count.shape == () and int(state.count) == 0
    grads = jax.grad(quadratic)(params, batch(jnp.float32))
    updates, state = opt.update(grads, state, params)
    assert int(state.count) == 1
    np.testing.assert_allclose(float(optim.current_learning_rate(state)), 0.1, rtol=1e-7)
    for u, p in zip(jax.tree_util.tree_leaves(updates), jax.tree_util.tree_leaves(params)):
        assert u.shape == p.shape and u.dtype == p.dtype


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_jitted_train_step_traces_once_over_ten_calls(name):
    opt = OPTIMIZERS[name](0.05)

    chex.clear_trace_counter()  # chex keys its counter on the source, shared across parametrized runs

    @jax.jit
    @chex.assert_max_traces(n=1)
    def train_step(params, state, xy):
        value, grads = jax.value_and_grad(loss)(params, xy)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, value

    params = nested_params(jnp.float32)
    state = opt.init(params)
    losses = []
    for i in range(10):
        params, state, value = train_step(params, state, batch(jnp.float32, seed=i % 2))
        losses.append(float(value))
    assert int(state.count) == 10 and np.all(np.isfinite(losses))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_vmap_over_sixteen_learning_rates_equals_single_runs(name):
    learning_rates = jnp.asarray(np.geomspace(1e-3, 0.3, 16), jnp.float64)
    xy = batch(jnp.float64)
    params = nested_params(jnp.float64)

    def run(lr):
        opt = OPTIMIZERS[name](lr)

        def step(carry, _):
            p, s = carry
            updates, s = opt.update(jax.grad(quadratic)(p, xy), s, p)
            return (optim.apply_updates(p, updates), s), None

        (p, s), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=5)
        return p, s.learning_rate

    swept, rates = jax.jit(jax.vmap(run))(learning_rates)
    assert jax.tree_util.tree_leaves(swept)[0].shape == (16, 2, 2)
    # The state records each rate as float32; the updates use the float64 value itself (checked below).
    assert rates.dtype == jnp.float32
    np.testing.assert_allclose(rates, learning_rates, rtol=1e-7)
    single = jax.jit(run)
    for i in (0, 7, 15):
        alone, _ = single(learning_rates[i])
        chex.assert_trees_all_close(jax.tree_util.tree_map(lambda a: a[i], swept), alone, rtol=1e-10, atol=1e-14)
    # Different learning rates really give different parameters.
    first = jax.tree_util.tree_leaves(swept)[0]
    assert not np.allclose(first[0], first[15])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_bfloat16_params_stay_finite_and_keep_dtype(name):
    opt = OPTIMIZERS[name](1e-2)
    params = nested_params(jnp.bfloat16)
    xy = batch(jnp.bfloat16)

    def step(carry, _):
        p, s = carry
        updates, s = opt.update(jax.grad(loss)(p, xy), s, p)
        return (optim.apply_updates(p, updates), s), None

    (params, state), _ = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), None, length=20))(params)
    for leaf in jax.tree_util.tree_leaves((params, state)):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert np.all(np.isfinite(np.asarray(leaf, np.float32)))
    assert all(p.dtype == jnp.bfloat16 for p in jax.tree_util.tree_leaves(params))


def test_adadelta_matches_numpy_written_here():
    rng = np.random.default_rng(3)
    theta = rng.normal(size=(5,))
    grads = rng.normal(size=(30, 5)) * rng.choice([0.01, 1.0, 10.0], size=(30, 5))
    rho, eps, lr = 0.9, 1e-6, 1.0
    eg2 = np.zeros(5)
    edx2 = np.zeros(5)
    expected = theta.copy()
    for g in grads:
        eg2 = rho * eg2 + (1 - rho) * g**2
        dx = -np.sqrt(edx2 + eps) / np.sqrt(eg2 + eps) * g
        edx2 = rho * edx2 + (1 - rho) * dx**2
        expected = expected + lr * dx
    opt = optim.adadelta(learning_rate=lr, rho=rho, eps=eps)
    params = jnp.asarray(theta, jnp.float64)
    state = opt.init(params)
    for g in grads:
        updates, state = opt.update(jnp.asarray(g, jnp.float64), state)
        params = optim.apply_updates(params, updates)
    assert params.shape == (5,)
    np.testing.assert_allclose(params, expected, rtol=1e-10)
    np.testing.assert_allclose(state.mean_square_grad, eg2, rtol=1e-10)
    np.testing.assert_allclose(state.mean_square_delta, edx2, rtol=1e-10)


def test_sgd_momentum_equals_the_notes_velocity_form_for_constant_lr():
    # Notes: v_t = γ v_{t−1} + η g_t, θ_t = θ_{t−1} − v_t, written here in NumPy.
    rng = np.random.default_rng(4)
    grads = rng.normal(size=(20, 3))
    eta, gamma = 0.1, 0.8
    v = np.zeros(3)
    theta = np.ones(3)
    opt = optim.sgd(learning_rate=eta, momentum=gamma)
    params = jnp.ones(3, jnp.float64)
    state = opt.init(params)
    for g in grads:
        v = gamma * v + eta * g
        theta = theta - v
        updates, state = opt.update(jnp.asarray(g, jnp.float64), state)
        params = optim.apply_updates(params, updates)
        np.testing.assert_allclose(params, theta, rtol=1e-12)
        np.testing.assert_allclose(eta * np.asarray(state.momentum_buffer), v, rtol=1e-12)


def test_learning_rate_may_be_a_traced_argument_of_jit():
    @jax.jit
    def one_step(lr, params, grads):
        opt = optim.adam(learning_rate=lr)
        updates, _ = opt.update(grads, opt.init(params), params)
        return updates

    params = jnp.asarray([1.0, 2.0], jnp.float32)
    updates = one_step(jnp.asarray(0.25, jnp.float32), params, jnp.asarray([3.0, -1.0], jnp.float32))
    # Adam's first step is −η·sign(g) up to ε.
    np.testing.assert_allclose(updates, [-0.25, 0.25], rtol=1e-6)


def test_vmap_over_adam_betas_equals_single_runs():
    betas = jnp.asarray([[0.0, 0.9], [0.5, 0.99], [0.9, 0.999], [0.95, 0.5]], jnp.float64)
    grads = jnp.asarray(np.random.default_rng(5).normal(size=(6, 3)), jnp.float64)

    def run(b):
        opt = optim.adam(learning_rate=0.1, b1=b[0], b2=b[1])
        params = jnp.zeros(3, jnp.float64)

        def step(carry, g):
            p, s = carry
            updates, s = opt.update(g, s, p)
            return (optim.apply_updates(p, updates), s), None

        (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), grads)
        return p

    swept = jax.jit(jax.vmap(run))(betas)
    assert swept.shape == (4, 3)
    for i in range(4):
        np.testing.assert_allclose(swept[i], run([float(betas[i, 0]), float(betas[i, 1])]), rtol=1e-10)


# ----------------------------------------------------------------------------- state guards

STATEFUL = {
    "sgd_momentum": lambda: optim.sgd(learning_rate=0.1, momentum=0.9),
    "adam": lambda: optim.adam(learning_rate=0.1),
    "adamw_amsgrad": lambda: optim.adamw(learning_rate=0.1, amsgrad=True),
    "rmsprop_centered_momentum": lambda: optim.rmsprop(learning_rate=0.1, centered=True, momentum=0.9),
    "adagrad": lambda: optim.adagrad(learning_rate=0.1),
    "adadelta": lambda: optim.adadelta(learning_rate=1.0),
    "accumulate": lambda: optim.accumulate(optim.sgd(learning_rate=0.1), k=2),
    "chain": lambda: optim.chain(optim.clip_by_global_norm(max_norm=1.0), optim.adam(learning_rate=0.1)),
    "skip_nonfinite": lambda: optim.skip_nonfinite(optim.adam(learning_rate=0.1)),
}


@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_state_of_the_wrong_shape_is_refused_naming_the_leaf_not_broadcast(name):
    opt = STATEFUL[name]()
    grads = {"w": jnp.ones((3,), jnp.float32), "b": jnp.ones((2,), jnp.float32)}
    wrong = opt.init({"w": jnp.ones((3, 1), jnp.float32), "b": jnp.ones((2,), jnp.float32)})
    with pytest.raises(ValueError, match=r"\['w'\] has shape \(3, 1\) and dtype float32 but "
                                         r"grads\['w'\] has shape \(3,\)"):
        opt.update(grads, wrong, grads)
    # Also under jit: the check is static, at trace time.
    with pytest.raises(ValueError, match=r"\['w'\] has shape \(3, 1\)"):
        jax.jit(opt.update)(grads, wrong, grads)
    right = opt.init(grads)
    updates, _ = opt.update(grads, right, grads)
    assert jax.tree_util.tree_map(jnp.shape, updates) == {"w": (3,), "b": (2,)}


@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_state_of_another_dtype_is_refused(name):
    opt = STATEFUL[name]()
    grads = {"w": jnp.ones((3,), jnp.float32)}
    wrong = opt.init({"w": jnp.ones((3,), jnp.float64)})
    with pytest.raises(ValueError, match=r"\['w'\] has shape \(3,\) and dtype float64 but "
                                         r"grads\['w'\] has shape \(3,\) and dtype float32"):
        opt.update(grads, wrong, grads)


def test_adam_state_of_shape_3_1_beside_grads_of_shape_3_is_refused():
    # The reported fault: this used to give params of shape (3, 3).
    opt = optim.adam(learning_rate=0.1)
    grads = jnp.ones((3,), jnp.float32)
    state = opt.init(jnp.ones((3, 1), jnp.float32))
    with pytest.raises(ValueError, match=r"state.mu has shape \(3, 1\) and dtype float32 but grads has shape \(3,\)"):
        opt.update(grads, state, grads)


def test_transforms_refuse_params_of_another_shape():
    grads = {"w": jnp.ones((3,), jnp.float32)}
    params = {"w": jnp.ones((3, 1), jnp.float32)}
    for opt in (optim.add_decayed_weights(weight_decay=0.1), optim.sgd(learning_rate=0.1),
                optim.adamw(learning_rate=0.1)):
        with pytest.raises(ValueError, match=r"params\['w'\] has shape \(3, 1\)"):
            opt.update(grads, opt.init(grads), params)


@pytest.mark.parametrize("factory", [optim.sgd, optim.adam, optim.adamw, optim.rmsprop, optim.adagrad, optim.adadelta])
def test_learning_rate_must_be_a_number_or_a_callable(factory):
    for bad in ("0.1", b"0.1", None, [0.1], {"lr": 0.1}):
        with pytest.raises(TypeError, match="learning_rate"):
            factory(learning_rate=bad)
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="learning_rate"):
            factory(learning_rate=bad)
    factory(learning_rate=0.1)
    factory(learning_rate=optim.constant(value=0.1))
    factory(learning_rate=lambda count: 0.1)


def test_checked_schedule_turns_negative_nan_and_infinite_rates_into_nan():
    raw = lambda count: jnp.asarray([0.1, -0.1, jnp.nan, jnp.inf, 0.0], jnp.float32)[count]  # noqa: E731
    checked = optim.checked_schedule(raw)
    got = np.asarray([float(checked(jnp.asarray(i))) for i in range(5)])
    np.testing.assert_array_equal(np.isnan(got), [False, True, True, True, False])
    np.testing.assert_allclose(got[[0, 4]], [0.1, 0.0], rtol=1e-7)
    # In a hand-written loop the NaN rate makes the update NaN, so skip_nonfinite-style guards catch it
    # instead of climbing the gradient with η = -0.1.
    opt = optim.sgd(learning_rate=checked)
    params = jnp.ones((2,), jnp.float32)
    state = opt.init(params)
    u0, state = opt.update(params, state)
    u1, state = opt.update(params, state)
    np.testing.assert_allclose(u0, [-0.1, -0.1], rtol=1e-6)
    assert np.all(np.isnan(np.asarray(u1)))
    with pytest.raises(TypeError, match="schedule must be callable"):
        optim.checked_schedule(0.1)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adagrad", "adadelta"])
def test_state_learning_rate_is_float32_whatever_x64_says(name):
    # conftest turns x64 on: a float64 rate leaf would make checkpoints depend on that flag.
    assert jax.config.jax_enable_x64
    opt = getattr(optim, name)(learning_rate=optim.cosine_decay(init_value=0.1, decay_steps=10))
    params = {"w": jnp.ones((3,), jnp.float32)}
    state = opt.init(params)
    _, state = opt.update({"w": jnp.ones((3,), jnp.float32)}, state, params)
    assert state.learning_rate.dtype == jnp.float32
    np.testing.assert_allclose(float(state.learning_rate), 0.1 * 0.5 * (1 + np.cos(np.pi / 10)), rtol=1e-6)
