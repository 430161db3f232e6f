"""Gradient transforms and wrappers against hand computations (and torch's clipping utilities)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import optim


def tree(dtype):
    return {
        "a": jnp.asarray([3.0, -4.0], dtype),
        "b": [jnp.asarray([[1.0, -0.5], [2.0, 0.0]], dtype), (jnp.asarray(12.0, dtype),)],
    }


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_clip_by_value_by_hand(dtype):
    opt = optim.clip_by_value(clip_value=1.5)
    clipped, _ = opt.update(tree(dtype), opt.init(tree(dtype)))
    assert jax.tree_util.tree_structure(clipped) == jax.tree_util.tree_structure(tree(dtype))
    assert clipped["a"].dtype == dtype
    np.testing.assert_array_equal(clipped["a"], [1.5, -1.5])
    np.testing.assert_array_equal(clipped["b"][0], [[1.0, -0.5], [1.5, 0.0]])
    np.testing.assert_array_equal(clipped["b"][1][0], 1.5)


@pytest.mark.parametrize("dtype, rtol", [(jnp.float32, 1e-6), (jnp.float64, 1e-12)])
def test_clip_by_global_norm_by_hand(dtype, rtol):
    # ‖g‖² = 9 + 16 + 1 + 0.25 + 4 + 0 + 144 = 174.25
    norm = np.sqrt(174.25)
    np.testing.assert_allclose(optim.global_norm(tree(dtype)), norm, rtol=rtol)
    opt = optim.clip_by_global_norm(max_norm=2.0)
    clipped, _ = opt.update(tree(dtype), opt.init(tree(dtype)))
    np.testing.assert_allclose(clipped["a"], np.array([3.0, -4.0]) * 2.0 / norm, rtol=rtol)
    np.testing.assert_allclose(clipped["b"][1][0], 12.0 * 2.0 / norm, rtol=rtol)
    np.testing.assert_allclose(optim.global_norm(clipped), 2.0, rtol=rtol)
    # Within bounds: untouched, and a zero gradient stays zero (no 0/0).
    loose = optim.clip_by_global_norm(max_norm=100.0)
    same, _ = loose.update(tree(dtype), loose.init(tree(dtype)))
    np.testing.assert_array_equal(same["a"], [3.0, -4.0])
    zeros, _ = opt.update(jax.tree_util.tree_map(jnp.zeros_like, tree(dtype)), opt.init(tree(dtype)))
    assert all(np.all(np.asarray(z) == 0) for z in jax.tree_util.tree_leaves(zeros))


def test_clipping_agrees_with_torch_utils():
    import torch  # the oracle (test extra)
    grads = tree(jnp.float64)
    leaves = jax.tree_util.tree_leaves(grads)
    tensors = [torch.zeros(np.shape(g), dtype=torch.float64, requires_grad=True) for g in leaves]
    for t, g in zip(tensors, jax.tree_util.tree_leaves(grads)):
        t.grad = torch.tensor(np.asarray(g))
    torch.nn.utils.clip_grad_norm_(tensors, max_norm=2.0)
    opt = optim.clip_by_global_norm(max_norm=2.0)
    ours, _ = opt.update(grads, opt.init(grads))
    for t, o in zip(tensors, jax.tree_util.tree_leaves(ours)):
        # torch divides by ‖g‖ + 1e-6: agreement to ~1e-6/‖g‖ relative.
        np.testing.assert_allclose(np.asarray(o), t.grad.numpy(), rtol=1e-6)


def test_chain_of_decay_and_sgd_equals_torch_sgd_with_weight_decay():
    import torch  # the oracle (test extra)
    rng = np.random.default_rng(0)
    params = {
        "w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float64),
        "b": jnp.asarray(rng.normal(size=(2,)), jnp.float64),
    }
    opt = optim.chain(optim.add_decayed_weights(weight_decay=0.1), optim.sgd(learning_rate=0.05, momentum=0.9))
    leaves, treedef = jax.tree_util.tree_flatten(params)
    tensors = [torch.tensor(np.asarray(x), requires_grad=True) for x in leaves]
    reference = torch.optim.SGD(tensors, lr=0.05, momentum=0.9, weight_decay=0.1)
    state = opt.init(params)
    assert isinstance(state, optim.ChainState) and len(state.inner_states) == 2
    for _ in range(10):
        grads = [rng.normal(size=x.shape) for x in leaves]
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        reference.step()
        tree_grads = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(g) for g in grads])
        updates, state = opt.update(tree_grads, state, params)
        params = optim.apply_updates(params, updates)
    for t, x in zip(tensors, jax.tree_util.tree_leaves(params)):
        np.testing.assert_allclose(np.asarray(x), t.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(optim.current_learning_rate(state), 0.05)


def test_add_decayed_weights_by_hand_and_needs_params():
    opt = optim.add_decayed_weights(weight_decay=0.5)
    g = {"w": jnp.asarray([1.0, 2.0], jnp.float32)}
    p = {"w": jnp.asarray([4.0, -2.0], jnp.float32)}
    out, _ = opt.update(g, opt.init(p), p)
    np.testing.assert_allclose(out["w"], [3.0, 1.0])
    with pytest.raises(ValueError, match="params"):
        opt.update(g, opt.init(p))


def test_multi_transform_routes_groups_and_freezes():
    params = {
        "body": {"w": jnp.asarray([1.0, 2.0], jnp.float64)},
        "head": [jnp.asarray([[1.0]], jnp.float64)],
        "embed": jnp.asarray([5.0, 6.0, 7.0], jnp.float64),
    }
    labels = {"body": {"w": "adam"}, "head": ["fast"], "embed": "frozen"}
    opt = optim.multi_transform(
        {"adam": optim.adam(learning_rate=0.1), "fast": optim.sgd(learning_rate=1.0), "frozen": optim.set_to_zero()}, labels
    )
    state = opt.init(params)
    # Each group's optimizer holds moments only for its own leaves.
    assert len(state.inner_states["adam"].mu) == 1 and state.inner_states["fast"].momentum_buffer is None
    grads = jax.tree_util.tree_map(lambda x: jnp.full_like(x, 2.0), params)
    updates, state = jax.jit(opt.update)(grads, state, params)
    assert jax.tree_util.tree_structure(updates) == jax.tree_util.tree_structure(params)
    # Adam's first step is −η·sign(g) (m̂ = g, √v̂ = |g|), up to ε.
    np.testing.assert_allclose(updates["body"]["w"], [-0.1, -0.1], rtol=1e-7)
    np.testing.assert_allclose(updates["head"][0], [[-2.0]])
    np.testing.assert_array_equal(updates["embed"], [0.0, 0.0, 0.0])
    assert int(state.inner_states["adam"].count) == 1
    # Labels may also come from a function of the params.
    by_fn = optim.multi_transform({"a": optim.sgd(learning_rate=1.0), "z": optim.set_to_zero()}, lambda p: {"x": "a", "y": "z"})
    p2 = {"x": jnp.asarray(1.0, jnp.float32), "y": jnp.asarray(1.0, jnp.float32)}
    u2, _ = by_fn.update(p2, by_fn.init(p2), p2)
    assert float(u2["x"]) == -1.0 and float(u2["y"]) == 0.0


def test_multi_transform_bad_labels_name_the_leaf():
    params = {"w": jnp.zeros(2, jnp.float32), "b": jnp.zeros(1, jnp.float32)}
    opt = optim.multi_transform({"a": optim.sgd(learning_rate=0.1)}, {"w": "a", "b": "typo"})
    with pytest.raises(ValueError, match=r"param_labels\['b'\] = 'typo'"):
        opt.init(params)
    wrong = optim.multi_transform({"a": optim.sgd(learning_rate=0.1)}, {"w": "a"})
    with pytest.raises(ValueError, match="param_labels and params must have the same tree structure"):
        wrong.init(params)


@pytest.mark.parametrize("inner", ["sgd", "adam"])
def test_accumulate_equals_one_step_on_the_mean_gradient(inner):
    make = {"sgd": lambda: optim.sgd(learning_rate=0.1, momentum=0.9), "adam": lambda: optim.adam(learning_rate=0.1)}[inner]
    k = 3
    rng = np.random.default_rng(1)
    params = {
        "w": jnp.asarray(rng.normal(size=(4,)), jnp.float64),
        "v": (jnp.asarray(rng.normal(size=(2, 2)), jnp.float64),),
    }
    micro = [
        jax.tree_util.tree_map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float64), params)
        for _ in range(2 * k)
    ]
    acc = optim.accumulate(make(), k=k)
    state = acc.init(params)
    update = jax.jit(acc.update)
    p_acc = params
    for i, g in enumerate(micro):
        updates, state = update(g, state, p_acc)
        if (i + 1) % k:
            assert all(np.all(np.asarray(u) == 0) for u in jax.tree_util.tree_leaves(updates))
        p_acc = optim.apply_updates(p_acc, updates)
        assert int(state.mini_step) == (i + 1) % k
    # Reference: the plain optimizer on the hand-computed mean of each window of k gradients.
    plain = make()
    ref_state = plain.init(params)
    p_ref = params
    for window in range(2):
        group = micro[window * k:(window + 1) * k]
        mean = jax.tree_util.tree_map(lambda *gs: sum(np.asarray(g) for g in gs) / k, *group)
        updates, ref_state = plain.update(mean, ref_state, p_ref)
        p_ref = optim.apply_updates(p_ref, updates)
    for a, b in zip(jax.tree_util.tree_leaves(p_acc), jax.tree_util.tree_leaves(p_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    assert int(state.inner_state.count) == 2


def test_accumulate_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be >= 1"):
        optim.accumulate(optim.sgd(learning_rate=0.1), k=0)


def test_skip_nonfinite_leaves_params_and_state_unchanged_and_counts():
    opt = optim.skip_nonfinite(optim.adam(learning_rate=0.1))
    params = {"w": jnp.asarray([1.0, 2.0], jnp.float32)}
    state = opt.init(params)
    update = jax.jit(opt.update)
    good = {"w": jnp.asarray([1.0, -1.0], jnp.float32)}
    updates, state = update(good, state, params)
    params = optim.apply_updates(params, updates)
    before_params, before_inner = params, state.inner_state
    for bad_value in (jnp.nan, jnp.inf, -jnp.inf):
        bad = {"w": jnp.asarray([bad_value, 1.0], jnp.float32)}
        updates, state = update(bad, state, params)
        params = optim.apply_updates(params, updates)
        assert bool(state.last_step_skipped)
    np.testing.assert_array_equal(params["w"], before_params["w"])
    for a, b in zip(jax.tree_util.tree_leaves(state.inner_state), jax.tree_util.tree_leaves(before_inner)):
        np.testing.assert_array_equal(a, b)
    assert int(state.num_skipped) == 3 and int(state.inner_state.count) == 1
    updates, state = update(good, state, params)
    assert not bool(state.last_step_skipped) and int(state.inner_state.count) == 2
    assert np.all(np.isfinite(np.asarray(updates["w"]))) and np.all(np.asarray(updates["w"]) != 0)


def test_chain_of_clip_and_scale_by_hand():
    opt = optim.chain(optim.clip_by_value(clip_value=1.0), optim.scale(step_size=-0.1))
    grads = {"w": jnp.asarray([0.5, -3.0, 2.0], jnp.float32)}
    updates, state = opt.update(grads, opt.init(grads))
    assert updates["w"].dtype == jnp.float32 and updates["w"].shape == (3,)
    np.testing.assert_allclose(updates["w"], [-0.05, 0.1, -0.1], rtol=1e-6)
    assert state == optim.ChainState((optim.EmptyState(), optim.EmptyState()))
    with pytest.raises(ValueError, match="no learning_rate field"):
        optim.current_learning_rate(state)
    with pytest.raises(TypeError, match="chain argument 1 must be an Optimizer"):
        optim.chain(optim.scale(step_size=1.0), lambda g: g)
