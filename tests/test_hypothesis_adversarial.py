"""Property tests (hypothesis) for jaxmath.adversarial: PGD never leaves the ε-ball or the clip range, and
the CW margin equals its definition written in NumPy (the true class excluded, whatever the logits' signs).

The values (x, ε, α, the model's weights, the key) are drawn freely; the static options (shapes, norm, steps,
random start, loss, direction, clip) come from a short list, because each new combination compiles anew.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxmath import adversarial

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# (x shape, num_steps, random_start, num_restarts, loss, targeted, clip): few enough to compile quickly
CONFIGS = [
    ((3, 6), 3, True, 1, "cross_entropy", False, (0.0, 1.0)),
    ((2, 2, 3), 4, True, 2, "cw_margin", True, (0.0, 1.0)),
    ((3, 6), 0, False, 1, "cw_margin", False, (0.2, 0.8)),
]


def _apply(params, x):
    w, b = params
    return jnp.tanh(x.reshape(x.shape[0], -1) @ w[0]) @ w[1] + b


@SETTINGS
@given(norm=st.sampled_from(["linf", "l2"]), config=st.sampled_from(CONFIGS), seed=st.integers(0, 2**31 - 1),
       eps=st.floats(0.0, 2.0), step_size=st.floats(0.0, 1.0), at_bounds=st.booleans())
def test_pgd_stays_in_the_eps_ball_and_the_clip_range_float32(norm, config, seed, eps, step_size, at_bounds):
    shape, num_steps, random_start, num_restarts, loss, targeted, (low, high) = config
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape[1:]))
    params = ((jnp.asarray(rng.normal(size=(d, 8)) * 3, jnp.float32), jnp.asarray(rng.normal(size=(8, 5)) * 3,
                                                                                     jnp.float32)),
              jnp.asarray(rng.normal(size=5), jnp.float32))
    x = rng.uniform(low, high, size=shape)
    if at_bounds:  # pixels sitting on the clip bounds, where a step would leave the range
        x[rng.uniform(size=shape) < 0.3] = low
        x[rng.uniform(size=shape) < 0.3] = high
    x = jnp.asarray(x, jnp.float32)
    labels = jnp.asarray(rng.integers(0, 5, shape[0]), jnp.int32)
    out = adversarial.pgd(_apply, params, x, labels, jax.random.key(seed), eps=eps, step_size=step_size,
                          num_steps=num_steps, norm=norm, random_start=random_start, num_restarts=num_restarts,
                          loss=loss, targeted=targeted, clip=(low, high))
    assert out.shape == x.shape and out.dtype == jnp.float32
    out, xn = np.asarray(out, np.float64), np.asarray(x, np.float64)
    assert np.all(np.isfinite(out))
    assert np.all(out >= np.float32(low)) and np.all(out <= np.float32(high))
    delta = (out - xn).reshape(shape[0], -1)
    size = np.abs(delta).max(axis=1) if norm == "linf" else np.linalg.norm(delta, axis=1)
    assert np.all(size <= eps * (1 + 1e-5) + 1e-6), (size, eps)
    if not random_start and num_steps == 0:
        np.testing.assert_array_equal(out, xn)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 4), k=st.integers(2, 6), shift=st.floats(-50.0, 50.0))
def test_cw_margin_equals_its_numpy_definition_for_any_sign_of_logits_float64(seed, n, k, shift):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3 + shift  # shift < 0 makes every logit negative, where a 0 mask fails
    labels = rng.integers(0, k, n)
    others = np.array([np.max(np.delete(z[i], labels[i])) for i in range(n)])
    expected = others - z[np.arange(n), labels]
    got = adversarial.cw_margin(jnp.asarray(z, jnp.float64), jnp.asarray(labels, jnp.int32))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    # positive exactly when some wrong class beats the true one
    np.testing.assert_array_equal(np.asarray(got) > 0, z.argmax(axis=1) != labels)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), max_degrees=st.floats(0.0, 180.0), low=st.floats(0.3, 1.0),
       spread=st.floats(0.0, 0.5))
def test_a_random_placement_pastes_a_convex_mix_of_the_patch_inside_its_box_float32(seed, max_degrees, low, spread):
    # Bilinear sampling is a convex combination of patch pixels, so every changed pixel lies in [min P, max P];
    # and a placement from random_placements touches only pixels inside its turned, scaled square's bounding box.
    height, width, (p, q) = 12, 13, (3, 4)
    rng = np.random.default_rng(seed)
    x = np.full((8, height, width), -1.0, np.float32)  # outside any patch value: every change is visible
    patch = rng.uniform(0.2, 0.9, size=(p, q)).astype(np.float32)
    placement = adversarial.random_placements(jax.random.key(seed), num_images=8, image_shape=(height, width),
                                              patch_shape=(p, q), max_rotation_degrees=max_degrees,
                                              scale_range=(low, low + spread))
    out = np.asarray(adversarial.apply_transformed_patch(jnp.asarray(x), jnp.asarray(patch), placement))
    changed = out != -1.0
    assert np.all(out[changed] >= patch.min() - 1e-6) and np.all(out[changed] <= patch.max() + 1e-6)
    centers, angles, scales = (np.asarray(a, np.float64) for a in placement)
    half_rows = scales * (p * np.abs(np.cos(angles)) + q * np.abs(np.sin(angles))) / 2
    half_cols = scales * (q * np.abs(np.cos(angles)) + p * np.abs(np.sin(angles))) / 2
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    for i in range(8):
        inside_box = (np.abs(rows - centers[i, 0]) <= half_rows[i] + 1e-4) & \
                     (np.abs(cols - centers[i, 1]) <= half_cols[i] + 1e-4)
        assert not np.any(changed[i] & ~inside_box)
