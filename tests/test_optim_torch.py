"""Every optimizer, step by step for 100 steps, against the matching torch.optim optimizer (CPU oracle)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch  # the oracle; in the test extra, so CI always has it

from jaxmath import optim

NUM_STEPS = 100
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}


def random_nested_tree(rng, dtype):
    """A small pytree mixing dict, list, tuple and a scalar leaf."""
    return {
        "dense": [rng.normal(size=(3, 2)), (rng.normal(size=(4,)), rng.normal(size=()))],
        "conv": {"kernel": rng.normal(size=(2, 2, 1)), "bias": rng.normal(size=(2,))},
        "out": (rng.normal(size=(5,)),),
    }


def as_dtype(tree, dtype):
    return jax.tree_util.tree_map(lambda x: np.asarray(x, dtype), tree)


def run_jaxmath(optimizer, params, grads):
    """All NUM_STEPS steps in one jitted scan; returns the parameter leaves after each step."""

    def step(carry, g):
        p, state = carry
        updates, state = optimizer.update(g, state, p)
        p = optim.apply_updates(p, updates)
        return (p, state), p

    params = jax.tree_util.tree_map(jnp.asarray, params)
    _, trajectory = jax.jit(lambda p, gs: jax.lax.scan(step, (p, optimizer.init(p)), gs))(params, grads)
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(trajectory)]


def run_torch(make_optimizer, params, grads):
    tensors = [torch.tensor(np.array(leaf), requires_grad=True) for leaf in jax.tree_util.tree_leaves(params)]
    optimizer = make_optimizer(tensors)
    grad_leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(grads)]
    trajectory = [[] for _ in tensors]
    for t in range(NUM_STEPS):
        for tensor, g, path in zip(tensors, grad_leaves, trajectory):
            tensor.grad = torch.tensor(g[t])
        optimizer.step()
        for tensor, path in zip(tensors, trajectory):
            path.append(tensor.detach().numpy().copy())
    return [np.stack(path) for path in trajectory]


CASES = {
    "sgd": (lambda: optim.sgd(learning_rate=0.05), lambda ps: torch.optim.SGD(ps, lr=0.05)),
    "sgd_momentum": (
        lambda: optim.sgd(learning_rate=0.05, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
    ),
    "sgd_nesterov": (
        lambda: optim.sgd(learning_rate=0.05, momentum=0.9, nesterov=True),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    ),
    "adagrad": (lambda: optim.adagrad(learning_rate=0.1), lambda ps: torch.optim.Adagrad(ps, lr=0.1)),
    "adagrad_initial_accumulator": (
        lambda: optim.adagrad(learning_rate=0.1, initial_accumulator_value=0.1, eps=1e-6),
        lambda ps: torch.optim.Adagrad(ps, lr=0.1, initial_accumulator_value=0.1, eps=1e-6),
    ),
    "rmsprop": (lambda: optim.rmsprop(learning_rate=0.01), lambda ps: torch.optim.RMSprop(ps, lr=0.01)),
    "rmsprop_centered": (
        lambda: optim.rmsprop(learning_rate=0.01, decay=0.9, centered=True),
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, centered=True),
    ),
    "rmsprop_centered_momentum": (
        lambda: optim.rmsprop(learning_rate=0.01, decay=0.95, eps=1e-6, momentum=0.9, centered=True),
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.95, eps=1e-6, momentum=0.9, centered=True),
    ),
    "rmsprop_momentum": (
        lambda: optim.rmsprop(learning_rate=0.01, momentum=0.5),
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.5),
    ),
    "adadelta": (lambda: optim.adadelta(), lambda ps: torch.optim.Adadelta(ps)),
    "adadelta_lr": (
        lambda: optim.adadelta(learning_rate=0.5, rho=0.95, eps=1e-5),
        lambda ps: torch.optim.Adadelta(ps, lr=0.5, rho=0.95, eps=1e-5),
    ),
    "adam": (lambda: optim.adam(learning_rate=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    "adam_amsgrad": (
        lambda: optim.adam(learning_rate=0.01, b1=0.8, b2=0.99, amsgrad=True),
        lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), amsgrad=True),
    ),
    "adamw": (
        lambda: optim.adamw(learning_rate=0.01, weight_decay=0.1),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    ),
    "adamw_amsgrad": (
        lambda: optim.adamw(learning_rate=0.01, weight_decay=0.05, amsgrad=True),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.05, amsgrad=True),
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch_step_by_step(name, dtype):
    make_ours, make_torch = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    params = as_dtype(random_nested_tree(rng, dtype), dtype)
    # Gradients with a spread of scales, and a few exact zeros, so the adaptive denominators matter.
    grads = jax.tree_util.tree_map(
        lambda p: np.asarray(
            rng.normal(size=(NUM_STEPS,) + p.shape) * rng.choice([0.0, 0.1, 1.0, 5.0], size=(NUM_STEPS,) + p.shape),
            dtype,
        ),
        params,
    )
    ours = run_jaxmath(make_ours(), params, grads)
    theirs = run_torch(make_torch, params, grads)
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    assert all(a.dtype == dtype for a in ours)
    rtol = TOLERANCE[dtype]
    for step in range(NUM_STEPS):
        for leaf, (a, b) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(a[step], b[step], rtol=rtol, atol=rtol, err_msg=f"step {step}, leaf {leaf}")
