"""Learning-rate schedules against NumPy written here, and their use inside optimizers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import optim

STEPS = np.arange(0, 60, dtype=np.int32)


def numpy_exponential(t, init, T, rate, staircase=False, begin=0, end=None):
    e = max(t - begin, 0) / T
    if staircase:
        e = math.floor(e)
    v = init * rate**e
    if end is not None:
        v = max(v, end) if rate < 1 else min(v, end)
    return v


def numpy_piecewise(t, init, boundaries_and_scales):
    v = init
    for b, s in sorted(boundaries_and_scales.items()):
        if t >= b:
            v *= s
    return v


def numpy_cosine(t, init, T, alpha):
    t = min(t, T)
    return init * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / T)) + alpha)


def numpy_warmup_cosine(t, init, peak, W, T, end):
    if t < W:
        return init + (peak - init) * t / W
    s = min(t - W, T - W)
    return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * s / (T - W)))


CASES = {
    "constant": (lambda: optim.constant(value=0.3), lambda t: 0.3),
    "exponential": (
        lambda: optim.exponential_decay(init_value=0.1, transition_steps=7, decay_rate=0.5),
        lambda t: numpy_exponential(t, 0.1, 7, 0.5),
    ),
    "exponential_staircase": (
        lambda: optim.exponential_decay(init_value=0.1, transition_steps=10, decay_rate=0.3, staircase=True),
        lambda t: numpy_exponential(t, 0.1, 10, 0.3, staircase=True),
    ),
    "exponential_begin_end": (
        lambda: optim.exponential_decay(init_value=1.0, transition_steps=5, decay_rate=0.7, transition_begin=10, end_value=0.2),
        lambda t: numpy_exponential(t, 1.0, 5, 0.7, begin=10, end=0.2),
    ),
    "exponential_growth_capped": (
        lambda: optim.exponential_decay(init_value=0.01, transition_steps=4, decay_rate=1.5, end_value=0.1),
        lambda t: numpy_exponential(t, 0.01, 4, 1.5, end=0.1),
    ),
    "piecewise": (
        lambda: optim.piecewise_constant(init_value=0.1, boundaries_and_scales={20: 0.1, 40: 0.5}),
        lambda t: numpy_piecewise(t, 0.1, {20: 0.1, 40: 0.5}),
    ),
    "cosine": (
        lambda: optim.cosine_decay(init_value=0.5, decay_steps=40, alpha=0.1),
        lambda t: numpy_cosine(t, 0.5, 40, 0.1),
    ),
    "warmup_cosine": (
        lambda: optim.warmup_cosine_decay(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=50, end_value=0.05),
        lambda t: numpy_warmup_cosine(t, 0.0, 1.0, 10, 50, 0.05),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_schedule_matches_numpy(name):
    make, reference = CASES[name]
    schedule = make()
    expected = np.array([reference(int(t)) for t in STEPS], np.float64)
    eager = np.array([schedule(jnp.asarray(t, jnp.int32)) for t in STEPS])
    vectorised = np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(STEPS)))
    assert eager.shape == vectorised.shape == expected.shape
    np.testing.assert_allclose(eager, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vectorised, expected, rtol=1e-10, atol=1e-12)


def test_hand_values_from_the_definitions():
    step = optim.piecewise_constant(init_value=0.1, boundaries_and_scales={100: 0.1, 200: 0.1})
    np.testing.assert_allclose([float(step(t)) for t in (0, 99, 100, 199, 200)], [0.1, 0.1, 0.01, 0.01, 0.001])
    cos = optim.cosine_decay(init_value=2.0, decay_steps=10)
    np.testing.assert_allclose([float(cos(t)) for t in (0, 5, 10, 20)], [2.0, 1.0, 0.0, 0.0], atol=1e-12)
    warm = optim.warmup_cosine_decay(init_value=0.0, peak_value=1.0, warmup_steps=4, decay_steps=8)
    np.testing.assert_allclose([float(warm(t)) for t in (0, 2, 4, 6, 8)], [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-12)


def test_optimizer_uses_schedule_of_count_and_exposes_it_in_state():
    schedule = optim.exponential_decay(init_value=0.5, transition_steps=1, decay_rate=0.5)
    opt = optim.sgd(learning_rate=schedule)
    params = {"w": jnp.asarray([1.0, -2.0], jnp.float64)}
    grads = {"w": jnp.asarray([1.0, 1.0], jnp.float64)}
    state = opt.init(params)
    assert state.count.dtype == jnp.int32 and state.count.shape == ()
    rates = []
    update = jax.jit(opt.update)
    for t in range(4):
        rates.append(float(optim.current_learning_rate(state)))
        updates, state = update(grads, state, params)
        # The t-th update (t = 0, 1, ...) moves by −schedule(t)·g.
        np.testing.assert_allclose(updates["w"], [-0.5 * 0.5**t] * 2, rtol=1e-12)
    np.testing.assert_allclose(rates, [0.5, 0.25, 0.125, 0.0625], rtol=1e-12)
    assert int(state.count) == 4


@pytest.mark.parametrize(
    "build, argument",
    [
        (lambda: optim.constant(value=-1.0), "value"),
        (lambda: optim.exponential_decay(init_value=0.1, transition_steps=0, decay_rate=0.5), "transition_steps"),
        (lambda: optim.exponential_decay(init_value=0.1, transition_steps=5, decay_rate=-0.5), "decay_rate"),
        (lambda: optim.exponential_decay(init_value=float("nan"), transition_steps=5, decay_rate=0.5), "init_value"),
        (lambda: optim.piecewise_constant(init_value=0.1, boundaries_and_scales={-3: 0.1}), "boundaries_and_scales"),
        (lambda: optim.piecewise_constant(init_value=0.1, boundaries_and_scales={3: -0.1}), "boundaries_and_scales[3]"),
        (lambda: optim.cosine_decay(init_value=0.1, decay_steps=10, alpha=1.5), "alpha"),
        (lambda: optim.warmup_cosine_decay(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=10), "decay_steps"),
        (lambda: optim.warmup_cosine_decay(init_value=0.0, peak_value=float("inf"), warmup_steps=1, decay_steps=10), "peak_value"),
    ],
)
def test_bad_schedule_arguments_raise_naming_the_argument(build, argument):
    with pytest.raises(ValueError, match=argument.replace("[", r"\[").replace("]", r"\]")):
        build()
