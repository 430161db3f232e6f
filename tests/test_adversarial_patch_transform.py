"""The patch turned and scaled: pasting against apply_patch, np.rot90 and scipy's bilinear sampling, its
gradient against the same oracle, the placements inside the image, the rate against a NumPy count, the fit
with transformations, bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import adversarial
from jaxmath.adversarial.patch_transform import check_transform_range

H, W, NUM_CLASSES = 9, 10, 3


def placement(centers, angles, scales, dtype=jnp.float64):
    return adversarial.PatchPlacement(jnp.asarray(centers, dtype), jnp.asarray(angles, dtype),
                                      jnp.asarray(scales, dtype))


def scipy_paste(x, patch, centers, angles, scales):
    """The module's formula, sampled by scipy.ndimage.map_coordinates (order 1) on a NumPy grid."""
    ndimage = pytest.importorskip("scipy.ndimage")
    out = np.array(x, dtype=np.float64, copy=True)
    p, q = patch.shape
    rows, cols = np.meshgrid(np.arange(x.shape[1]), np.arange(x.shape[2]), indexing="ij")
    for i, ((cr, cc), theta, s) in enumerate(zip(centers, angles, scales)):
        dr, dc = rows - cr, cols - cc
        u = (math.cos(theta) * dr + math.sin(theta) * dc) / s + (p - 1) / 2
        v = (-math.sin(theta) * dr + math.cos(theta) * dc) / s + (q - 1) / 2
        inside = (u >= -0.5) & (u < p - 0.5) & (v >= -0.5) & (v < q - 0.5)
        sample = ndimage.map_coordinates(patch, [np.clip(u, 0, p - 1), np.clip(v, 0, q - 1)], order=1)
        out[i][inside] = sample[inside]
    return out


# --- pasting ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_no_turn_no_scale_at_an_integer_corner_is_apply_patch(dtype):
    rng = np.random.default_rng(0)
    x, patch = rng.uniform(size=(3, H, W)), rng.uniform(size=(3, 4))
    corners = np.array([[0, 0], [2, 3], [H - 3, W - 4]])
    got = adversarial.apply_transformed_patch(jnp.asarray(x, dtype), jnp.asarray(patch, dtype),
                                              placement(corners + [1.0, 1.5], np.zeros(3), np.ones(3), dtype))
    assert got.shape == (3, H, W) and got.dtype == dtype
    want = adversarial.apply_patch(jnp.asarray(x, dtype), jnp.asarray(patch, dtype), jnp.asarray(corners))
    np.testing.assert_array_equal(got, want)


def test_a_quarter_turn_pastes_rot90_of_the_patch():
    # float64; θ = +90° is counter-clockwise as displayed (np.rot90), −90° clockwise; the rest of the image stays
    rng = np.random.default_rng(1)
    x, patch = rng.uniform(size=(2, H, W)), rng.uniform(size=(3, 3))
    got = np.asarray(adversarial.apply_transformed_patch(
        jnp.asarray(x), jnp.asarray(patch), placement([[4.0, 5.0], [1.0, 1.0]], [np.pi / 2, -np.pi / 2], [1, 1])))
    np.testing.assert_allclose(got[0, 3:6, 4:7], np.rot90(patch), atol=1e-12)
    np.testing.assert_allclose(got[1, 0:3, 0:3], np.rot90(patch, -1), atol=1e-12)
    untouched = np.ones((2, H, W), bool)
    untouched[0, 3:6, 4:7] = untouched[1, 0:3, 0:3] = False
    np.testing.assert_array_equal(got[untouched], x[untouched])


@pytest.mark.parametrize("dtype,tol", [(jnp.float32, 1e-5), (jnp.float64, 1e-12)])
def test_turned_and_scaled_paste_equals_scipy_bilinear_sampling(dtype, tol):
    rng = np.random.default_rng(2)
    x, patch = rng.uniform(size=(4, H, W)), rng.uniform(size=(3, 4))
    centers = np.array([[4.0, 4.5], [3.3, 6.1], [5.2, 2.7], [4.6, 5.0]])
    angles, scales = np.array([0.3, -0.7, 1.2, 2.5]), np.array([1.0, 1.6, 0.7, 1.3])
    got = adversarial.apply_transformed_patch(jnp.asarray(x, dtype), jnp.asarray(patch, dtype),
                                              placement(centers, angles, scales, dtype))
    want = scipy_paste(x, patch, centers, angles, scales)
    assert (np.asarray(got) != x).sum() >= 20  # the patch landed
    np.testing.assert_allclose(got, want, atol=tol)


def test_gradient_reaches_the_patch_through_the_sampling_weights():
    # float64: the paste is linear in P on the covered pixels, so d/dP_jk Σ_i A_i ⊙ V_i = Σ_i Σ V_i ⊙ A_i(e_jk)
    # with x = 0, where A_i(e_jk) is scipy's sampling of the basis patch e_jk
    rng = np.random.default_rng(3)
    p, q = 3, 2
    centers, angles, scales = np.array([[4.0, 4.0], [3.4, 6.2]]), np.array([0.4, -1.1]), np.array([1.3, 0.8])
    v = rng.normal(size=(2, H, W))
    grad = jax.grad(lambda P: jnp.sum(adversarial.apply_transformed_patch(
        jnp.zeros((2, H, W)), P, placement(centers, angles, scales)) * v))(jnp.zeros((p, q)))
    want = np.zeros((p, q))
    for j in range(p):
        for k in range(q):
            basis = np.zeros((p, q))
            basis[j, k] = 1.0
            want[j, k] = np.sum(v * scipy_paste(np.zeros((2, H, W)), basis, centers, angles, scales))
    np.testing.assert_allclose(grad, want, atol=1e-12)


def test_bfloat16_paste_stays_finite_and_close():
    rng = np.random.default_rng(4)
    x, patch = rng.uniform(size=(2, H, W)), rng.uniform(size=(3, 3))
    centers, angles, scales = np.array([[4.0, 4.5], [4.4, 5.1]]), np.array([0.5, -0.2]), np.array([1.2, 0.9])
    got = adversarial.apply_transformed_patch(jnp.asarray(x, jnp.bfloat16), jnp.asarray(patch, jnp.bfloat16),
                                              placement(centers, angles, scales, jnp.float32))
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(got, np.float32), scipy_paste(x, patch, centers, angles, scales),
                               atol=2e-2)


# --- placements ---------------------------------------------------------------------------------------------


def test_random_placements_lie_inside_the_image_and_span_the_ranges():
    n, p, q = 4000, 3, 4
    out = adversarial.random_placements(jax.random.key(0), num_images=n, image_shape=(H, W), patch_shape=(p, q),
                                        max_rotation_degrees=30.0, scale_range=(0.8, 1.4))
    centers, angles, scales = (np.asarray(a, np.float64) for a in out)
    assert centers.shape == (n, 2) and angles.shape == (n,) and scales.shape == (n,)
    assert np.all(np.abs(angles) <= math.radians(30) + 1e-6) and np.abs(angles).max() > math.radians(29)
    assert np.all((scales >= 0.8 - 1e-6) & (scales <= 1.4 + 1e-6)) and scales.min() < 0.81 and scales.max() > 1.39
    # the four corners of every turned, scaled patch square, in (row, column), lie within [−½, H − ½] × [−½, W − ½]
    local = np.array([[-p / 2, -q / 2], [-p / 2, q / 2], [p / 2, -q / 2], [p / 2, q / 2]])
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    rows = centers[:, :1] + scales[:, None] * (cos * local[:, 0] - sin * local[:, 1])
    cols = centers[:, 1:] + scales[:, None] * (sin * local[:, 0] + cos * local[:, 1])
    assert rows.min() >= -0.5 - 1e-4 and rows.max() <= H - 0.5 + 1e-4
    assert cols.min() >= -0.5 - 1e-4 and cols.max() <= W - 0.5 + 1e-4
    # and they reach the borders: the centres are spread over all the room there is
    assert rows.min() < -0.4 and rows.max() > H - 0.6 and cols.min() < -0.4 and cols.max() > W - 0.6


def test_the_largest_patch_that_fits_is_accepted_and_one_more_degree_is_not():
    # a 10×10 patch turned by θ ≤ 45° spans 10(cos θ + sin θ) pixels: the largest θ that fits 14, on a fine grid
    theta = max(t for t in np.linspace(0, math.pi / 4, 200001) if 10 * (math.cos(t) + math.sin(t)) <= 14.0)
    degrees = math.degrees(theta)
    assert check_transform_range(degrees, (1.0, 1.0), image_shape=(14, 14), patch_shape=(10, 10))[0] == degrees
    with pytest.raises(ValueError, match="does not fit in 14×14 images"):
        check_transform_range(degrees + 1, (1.0, 1.0), image_shape=(14, 14), patch_shape=(10, 10))
    # past 45° a square's bounding box shrinks again: its widest is at 45°, so 90° costs what 45° does
    assert check_transform_range(90.0, (1.0, 1.0), image_shape=(15, 15), patch_shape=(10, 10))
    with pytest.raises(ValueError, match="does not fit"):
        check_transform_range(90.0, (1.0, 1.0), image_shape=(14, 14), patch_shape=(10, 10))


@pytest.mark.parametrize("degrees,scales,error,match", [
    (-1.0, (1.0, 1.0), ValueError, r"max_rotation_degrees must be in \[0.0, 180.0\]"),
    (181.0, (1.0, 1.0), ValueError, r"max_rotation_degrees must be in \[0.0, 180.0\]"),
    (float("nan"), (1.0, 1.0), ValueError, "max_rotation_degrees must be in"),
    (0.0, 1.2, TypeError, r"scale_range must be a pair \(low, high\)"),
    (0.0, (0.0, 1.0), ValueError, r"scale_range\[0\] must be > 0"),
    (0.0, (1.2, 1.1), ValueError, "low <= high"),
    (0.0, (1.0, float("inf")), ValueError, "finite"),
    (0.0, (1.0, 3.0), ValueError, r"spans 9.0×12.0 pixels and does not fit in 9×10 images"),
])
def test_bad_transform_ranges_are_refused(degrees, scales, error, match):
    with pytest.raises(error, match=match):
        adversarial.random_placements(jax.random.key(0), num_images=2, image_shape=(H, W), patch_shape=(3, 4),
                                      max_rotation_degrees=degrees, scale_range=scales)


def test_apply_transformed_patch_refuses_bad_input():
    x = jnp.zeros((2, H, W))
    good = placement(np.zeros((2, 2)), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match=r"placement.centers must have shape \(2, 2\)"):
        adversarial.apply_transformed_patch(x, jnp.zeros((2, 2)), good._replace(centers=jnp.zeros((3, 2))))
    with pytest.raises(ValueError, match=r"placement.scales must have shape \(2,\)"):
        adversarial.apply_transformed_patch(x, jnp.zeros((2, 2)), good._replace(scales=jnp.ones((2, 1))))
    with pytest.raises(TypeError, match="x must be float images"):
        adversarial.apply_transformed_patch(x.astype(jnp.uint8), jnp.zeros((2, 2)), good)
    with pytest.raises(ValueError, match="patch must be 2-dimensional"):
        adversarial.apply_transformed_patch(x, jnp.zeros((2, 2, 1)), good)
    with pytest.raises(TypeError, match=r"placement must be a PatchPlacement\(centers, angles, scales\)"):
        adversarial.apply_transformed_patch(x, jnp.zeros((2, 2)), jnp.zeros((2, 2)))


def test_a_placement_of_python_lists_is_read_as_arrays():
    # jit would otherwise take nested lists as pytrees of scalars
    x, patch = jnp.zeros((1, H, W)), jnp.ones((3, 3))
    from_lists = adversarial.apply_transformed_patch(x, patch, adversarial.PatchPlacement([[4.0, 4.0]], [0.3], [1.0]))
    from_arrays = adversarial.apply_transformed_patch(x, patch, placement([[4.0, 4.0]], [0.3], [1.0], jnp.float32))
    np.testing.assert_array_equal(from_lists, from_arrays)
    assert float(from_lists.sum()) > 0


# --- the loss, the rate and the fit with transformations ----------------------------------------------------


def linear_apply(params, x):
    return x @ params["w"] + params["b"]


def linear_params(dtype):
    rng = np.random.default_rng(5)
    return {"w": jnp.asarray(rng.normal(size=(H * W, NUM_CLASSES)), dtype),
            "b": jnp.asarray(rng.normal(size=NUM_CLASSES) * 0.1, dtype)}


def test_patch_loss_with_a_placement_equals_numpy():
    params = linear_params(jnp.float64)
    rng = np.random.default_rng(6)
    x, patch = rng.uniform(size=(3, H, W)), rng.uniform(size=(3, 3))
    centers, angles, scales = np.array([[4.0, 4.0], [3.5, 5.5], [5.0, 3.2]]), np.array([0.2, 1.0, -0.6]), np.ones(3)
    loss = adversarial.patch_loss(linear_apply, params, jnp.asarray(x), jnp.asarray(patch),
                                  placement(centers, angles, scales), target=2)
    z = scipy_paste(x, patch, centers, angles, scales).reshape(3, -1) @ np.asarray(params["w"]) + \
        np.asarray(params["b"])
    z = z - z.max(-1, keepdims=True)
    want = -np.mean(z[:, 2] - np.log(np.exp(z).sum(-1)))
    np.testing.assert_allclose(loss, want, rtol=1e-10)


def test_patch_success_rate_under_transformations_equals_a_numpy_count():
    # the placements are the documented random_placements(key, ...) with the same ranges
    params = linear_params(jnp.float64)
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, size=(40, H, W), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=40)
    patch, key, target = rng.uniform(size=(3, 3)), jax.random.key(8), 1
    rate = adversarial.patch_success_rate(linear_apply, params, x, labels, patch, key, target=target, batch_size=16,
                                          max_rotation_degrees=40.0, scale_range=(0.7, 1.5))
    centers, angles, scales = (np.asarray(a, np.float64) for a in adversarial.random_placements(
        key, num_images=40, image_shape=(H, W), patch_shape=(3, 3), max_rotation_degrees=40.0,
        scale_range=(0.7, 1.5)))
    z = scipy_paste(x / 255.0, patch, centers, angles, scales).reshape(40, -1) @ np.asarray(params["w"])
    z = z + np.asarray(params["b"])
    others = labels != target
    assert rate == pytest.approx(np.sum((z.argmax(-1) == target) & others) / np.sum(others), abs=1e-12)


def _fit(dtype=jnp.float64, **changes):
    kwargs = dict(target=1, patch_size=3, max_steps=150, batch_size=8, learning_rate=0.05,
                  max_rotation_degrees=30.0, scale_range=(0.8, 1.3))
    kwargs.update(changes)
    x = np.random.default_rng(9).integers(0, 256, size=(30, H, W), dtype=np.uint8)
    return adversarial.fit_patch(linear_apply, linear_params(dtype), x, jax.random.key(0), **kwargs)


def test_fit_patch_with_rotation_and_scale_descends_and_is_deterministic():
    patch, info = _fit()
    assert patch.shape == (3, 3) and patch.dtype == jnp.float64
    history = np.asarray(info.loss_history)
    assert np.all(np.isfinite(history)) and history[-20:].mean() < history[:20].mean()
    again, _ = _fit()
    np.testing.assert_array_equal(patch, again)
    # the transformations change what is learnt: the same key with positions only gives another history
    _, moved_only = _fit(max_rotation_degrees=0.0, scale_range=(1.0, 1.0))
    assert not np.array_equal(history, np.asarray(moved_only.loss_history))


def test_fit_patch_with_transformations_in_bfloat16_stays_finite():
    patch, info = _fit(dtype=jnp.bfloat16, max_steps=4)
    assert patch.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(patch, np.float32)))
    assert not bool(info.nonfinite)


def test_fit_patch_refuses_a_transformed_patch_that_does_not_fit():
    with pytest.raises(ValueError, match="does not fit in 9×10 images"):
        _fit(patch_size=6, max_rotation_degrees=45.0)
    with pytest.raises(ValueError, match=r"scale_range\[1\] must be > 0"):
        _fit(scale_range=(1.0, -2.0))
