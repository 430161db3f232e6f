"""Every optimizer, run under jit with lax.scan, reaches the known minimum of the notes' ravine and of Rosenbrock."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import optim

# The ravine: curvature 1 along x, 50 along y (condition number 50); minimum at the origin, value 0.
CURVATURE = np.array([1.0, 50.0])


def ravine(params):
    xy = params["xy"]
    return 0.5 * jnp.sum(jnp.asarray(CURVATURE, xy.dtype) * xy**2)


def rosenbrock(params):
    x, y = params["xy"]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2  # minimum 0 at (1, 1)


def minimize(optimizer, loss, start, num_steps, dtype):
    def step(carry, _):
        params, state = carry
        updates, state = optimizer.update(jax.grad(loss)(params), state, params)
        params = optim.apply_updates(params, updates)
        return (params, state), loss(params)

    params = {"xy": jnp.asarray(start, dtype)}
    run = jax.jit(lambda p: jax.lax.scan(step, (p, optimizer.init(p)), None, length=num_steps))
    (params, state), losses = run(params)
    return np.asarray(params["xy"]), np.asarray(losses), state


# name: (optimizer on the ravine, max distance to 0 after 3000 steps,
#        optimizer on Rosenbrock, max loss after 3000 steps)
CASES = {
    "gradient_descent": (lambda: optim.sgd(learning_rate=0.03), 1e-5, lambda: optim.sgd(learning_rate=0.002), 1e-4),
    "momentum": (lambda: optim.sgd(learning_rate=0.02, momentum=0.9), 1e-8, lambda: optim.sgd(learning_rate=0.001, momentum=0.9), 1e-10),
    "nesterov": (
        lambda: optim.sgd(learning_rate=0.02, momentum=0.9, nesterov=True),
        1e-8,
        lambda: optim.sgd(learning_rate=0.001, momentum=0.9, nesterov=True),
        1e-10,
    ),
    # Adagrad's step dies out on Rosenbrock's long valley: it gets near, not onto, the minimum.
    "adagrad": (lambda: optim.adagrad(learning_rate=0.5), 1e-8, lambda: optim.adagrad(learning_rate=2.0), 2e-2),
    # Constant-lr RMSprop hovers around the minimum; a cosine schedule lets it settle.
    "rmsprop": (
        lambda: optim.rmsprop(learning_rate=optim.cosine_decay(init_value=0.05, decay_steps=500)),
        1e-8,
        lambda: optim.rmsprop(learning_rate=optim.cosine_decay(init_value=0.02, decay_steps=3000)),
        1e-3,
    ),
    # Adadelta's unit-correcting step is slow: the bar is a 100-fold drop of the loss (12.5 at the start).
    "adadelta": (lambda: optim.adadelta(learning_rate=1.0, eps=1e-8), 1e-2, lambda: optim.adadelta(learning_rate=1.0, eps=1e-8), 1e-1),
    "adam": (lambda: optim.adam(learning_rate=0.1), 1e-8, lambda: optim.adam(learning_rate=0.05), 1e-12),
    "adamw_no_decay": (
        lambda: optim.adamw(learning_rate=0.1, weight_decay=0.0),
        1e-8,
        lambda: optim.adamw(learning_rate=0.05, weight_decay=0.0),
        1e-12,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_converges_on_the_ill_conditioned_ravine(name):
    make, tolerance, _, _ = CASES[name]
    xy, losses, state = minimize(make(), ravine, [2.0, 1.0], 3000, jnp.float64)
    assert xy.shape == (2,) and losses.shape == (3000,) and int(state.count) == 3000
    assert np.all(np.isfinite(losses))
    assert np.linalg.norm(xy) < tolerance, xy


@pytest.mark.parametrize("name", sorted(CASES))
def test_converges_on_rosenbrock(name):
    _, _, make, tolerance = CASES[name]
    xy, losses, _ = minimize(make(), rosenbrock, [-1.5, 2.0], 3000, jnp.float64)
    assert losses.shape == (3000,) and np.all(np.isfinite(losses))
    assert losses[-1] < tolerance, (xy, losses[-1])
    if tolerance <= 1e-10:
        np.testing.assert_allclose(xy, [1.0, 1.0], atol=1e-4)


def test_momentum_beats_plain_gradient_descent_in_the_ravine():
    # The notes' claim: at the same η, momentum gets much further along the flat direction of the ravine.
    gd, gd_losses, _ = minimize(optim.sgd(learning_rate=0.01), ravine, [2.0, 1.0], 100, jnp.float64)
    mom, mom_losses, _ = minimize(optim.sgd(learning_rate=0.01, momentum=0.9), ravine, [2.0, 1.0], 100, jnp.float64)
    assert mom_losses[-1] < 1e-3 * gd_losses[-1]


@pytest.mark.parametrize(
    "make", [lambda: optim.adam(learning_rate=0.05), lambda: optim.sgd(learning_rate=0.001, momentum=0.9)], ids=["adam", "momentum"]
)
def test_float32_converges_on_rosenbrock(make):
    xy, losses, _ = minimize(make(), rosenbrock, [-1.5, 2.0], 3000, jnp.float32)
    assert xy.dtype == np.float32
    np.testing.assert_allclose(xy, [1.0, 1.0], atol=1e-2)
