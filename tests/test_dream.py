"""DeepDream (jaxmath.dream): objectives against a NumPy forward pass, the step's formula and invariance,
roll/unroll, octave bookkeeping, the objective rising, and keys. Small MLPs: the math, not the network, is
under test (LeNet-5 only where its layer names and conv layers matter)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import dream
from jaxmath.models import lenet5, mlp

MLP = mlp.make((784, 16, 12, 10), activation="sigmoid")
PARAMS = MLP.init(jax.random.key(0))
X = jax.random.uniform(jax.random.key(1), (2, 28, 28), jnp.float32, 0.2, 0.6)
OBJECTIVE = dream.layer_objective(MLP, "layer_2", channel=3)
OPTIONS = dict(num_octaves=2, octave_scale=1.4, steps_per_octave=6, step_size=0.01)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _numpy_layers(params, x):
    """The MLP written again in NumPy: a_l = σ(a_{l-1} W_l + b_l), logits last."""
    a = np.asarray(x, np.float64).reshape(len(x), -1)
    out = []
    for l, (w, b) in enumerate(params):
        z = a @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
        a = z if l == len(params) - 1 else _sigmoid(z)
        out.append(a)
    return out


def test_objective_equals_numpy_forward_mean_and_l2():
    a = _numpy_layers(PARAMS, X)
    chex_close = lambda got, want: np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    chex_close(OBJECTIVE(PARAMS, X), a[1][:, 3])  # mean of one unit is the unit
    chex_close(dream.layer_objective(MLP, "layer_1")(PARAMS, X), a[0].mean(axis=1))
    chex_close(dream.layer_objective(MLP, "layer_2", kind="l2")(PARAMS, X), 0.5 * (a[1] ** 2).sum(axis=1))
    chex_close(dream.layer_objective(MLP, "layer_3", channel=7)(PARAMS, X), a[2][:, 7])  # a class logit
    assert OBJECTIVE(PARAMS, X).shape == (2,)


def test_lenet_objectives_read_layer_outputs_by_name_in_forward_order():
    model = lenet5.make(conv_method="xla")  # the convolution method does not change the objective
    params = model.init(jax.random.key(2))
    assert dream.layer_names(model) == ("c1", "s2", "c3", "s4", "c5", "f6", "out")
    assert dream.layer_shapes(model)["c3"] == (1, 10, 10, 16)
    c3 = np.asarray(model.layer_outputs(params, X)["c3"], np.float64)
    got = dream.layer_objective(model, "c3", channel=5)(params, X)
    np.testing.assert_allclose(np.asarray(got), c3[..., 5].mean(axis=(1, 2)), rtol=1e-5, atol=1e-7)


def test_bad_layer_channel_kind_and_inputs_are_refused_by_name():
    with pytest.raises(ValueError, match=r"layer must be one of c1, s2, c3, s4, c5, f6, out .* got layer='c2'"):
        dream.layer_objective(lenet5.make(), "c2")
    with pytest.raises(ValueError, match="layer must be one of layer_1, layer_2, layer_3"):
        dream.layer_objective(MLP, "layer_4")
    with pytest.raises(ValueError, match=r"channel must be in \[0, 12\) for layer 'layer_2'.*got channel=12"):
        dream.layer_objective(MLP, "layer_2", channel=12)
    with pytest.raises(ValueError, match="kind must be one of 'mean', 'l2'"):
        dream.layer_objective(MLP, "layer_2", kind="max")
    with pytest.raises(TypeError, match="x must be float pixels"):
        dream.deep_dream(OBJECTIVE, PARAMS, (X * 255).astype(jnp.uint8), jax.random.key(0), **OPTIONS)
    with pytest.raises(ValueError, match="octave_scale must be > 1"):
        dream.deep_dream(OBJECTIVE, PARAMS, X, jax.random.key(0), **{**OPTIONS, "octave_scale": 1.0})
    with pytest.raises(ValueError, match="step_size must be > 0"):
        dream.deep_dream(OBJECTIVE, PARAMS, X, jax.random.key(0), **{**OPTIONS, "step_size": -0.1})
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        dream.deep_dream(OBJECTIVE, PARAMS, X, 0, **OPTIONS)


def test_roll_matches_numpy_and_unroll_inverts_it():
    dtype = jnp.float32
    x = jax.random.normal(jax.random.key(3), (2, 3, 7, 9), dtype)
    for shift in [(1, 2), (-3, 4), (0, 0), (15, -20)]:
        s = jnp.asarray(shift)
        rolled = dream.roll(x, s)
        np.testing.assert_array_equal(np.asarray(rolled), np.roll(np.asarray(x), shift, axis=(-2, -1)))
        assert rolled.dtype == dtype
        np.testing.assert_array_equal(np.asarray(dream.unroll(rolled, s)), np.asarray(x))
    with pytest.raises(ValueError, match=r"shift must be a \(2,\) integer array"):
        dream.roll(x, jnp.asarray([1, 2, 3]))


@pytest.mark.parametrize("dtype, tol", [(jnp.float32, 1e-6), (jnp.float64, 1e-12)])
def test_normalized_step_is_the_numpy_formula_and_ignores_the_gradient_scale(dtype, tol):
    g = jax.random.normal(jax.random.key(4), (28, 28), dtype) * jnp.asarray(3.0, dtype)
    step = dream.normalized_step(g)
    g_np = np.asarray(g, np.float64)
    np.testing.assert_allclose(np.asarray(step), g_np / np.abs(g_np).mean(), rtol=tol * 10)
    assert step.dtype == dtype
    np.testing.assert_allclose(float(jnp.mean(jnp.abs(step))), 1.0, rtol=tol * 10)
    for c in (1e-3, 7.5, 1e4):
        np.testing.assert_allclose(np.asarray(dream.normalized_step(g * jnp.asarray(c, dtype))), np.asarray(step),
                                   rtol=tol * 10, atol=tol)
    assert not np.any(np.asarray(dream.normalized_step(jnp.zeros((4, 4), dtype))))  # no 0/0
    assert bool(jnp.all(jnp.isfinite(dream.normalized_step(g.astype(jnp.bfloat16)))))


def test_octave_shapes_by_hand():
    assert dream.octave_shapes((28, 28), num_octaves=3, octave_scale=1.4) == ((28, 28), (20, 20), (14, 14))
    assert dream.octave_shapes((28, 20), num_octaves=2, octave_scale=2.0) == ((28, 20), (14, 10))


def test_shapes_and_the_objective_rises_within_every_octave():
    image, info = dream.deep_dream(OBJECTIVE, PARAMS, X, jax.random.key(5), **OPTIONS, jitter=0)
    assert image.shape == X.shape and image.dtype == X.dtype
    assert info.objective_history.shape == (2, 6, 2) and info.num_steps == 12
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    history = np.asarray(info.objective_history)
    assert np.all(history[:, -1, :] > history[:, 0, :]), history
    assert np.all(np.diff(history, axis=1) > 0), history  # every step climbs at this step size
    # Octave 0 starts from the shrunk image, octave 1 from the full one with the dream's detail added back.
    final = np.asarray(OBJECTIVE(PARAMS, image))
    assert np.all(final > np.asarray(OBJECTIVE(PARAMS, X)))


def test_same_key_same_image_and_jitter_depends_on_the_key():
    a, _ = dream.deep_dream(OBJECTIVE, PARAMS, X, jax.random.key(6), **OPTIONS, jitter=2)
    b, _ = dream.deep_dream(OBJECTIVE, PARAMS, X, jax.random.key(6), **OPTIONS, jitter=2)
    c, _ = dream.deep_dream(OBJECTIVE, PARAMS, X, jax.random.key(7), **OPTIONS, jitter=2)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def _zero(params, x):
    return jnp.zeros(x.shape[0], x.dtype) * jnp.sum(x)


def _linear(params, x):
    return jnp.sum(x * params, axis=(1, 2))


def test_flat_objective_returns_the_input_so_octave_detail_is_reinjected_exactly():
    # With no gradient every step is zero: the dream must hand back x itself, not a blurred upscale of the
    # smallest octave. That holds only if each octave adds its detail to that octave's own base.
    image, info = dream.deep_dream(_zero, PARAMS, X, jax.random.key(8), num_octaves=3, octave_scale=1.4,
                                   steps_per_octave=2, step_size=0.01, jitter=1)
    np.testing.assert_allclose(np.asarray(image), np.asarray(X), atol=1e-6)


def test_one_octave_of_a_linear_objective_moves_by_the_normalized_weights():
    # J(x) = Σ w·x has gradient w: N steps of η w/mean|w| from 0.5 (no clipping at these sizes).
    w = jax.random.normal(jax.random.key(9), (28, 28), jnp.float64)
    x = jnp.full((1, 28, 28), 0.5, jnp.float64)
    image, info = dream.deep_dream(_linear, w, x, jax.random.key(10), num_octaves=1, octave_scale=1.4,
                                   steps_per_octave=4, step_size=0.01, jitter=0)
    w_np = np.asarray(w)
    expected = np.clip(0.5 + 4 * 0.01 * w_np / np.abs(w_np).mean(), 0.0, 1.0)
    np.testing.assert_allclose(np.asarray(image[0]), expected, atol=1e-12)
    np.testing.assert_allclose(np.asarray(info.objective_history[:, 0, 0]), [0.5 * w_np.sum()], rtol=1e-12)
