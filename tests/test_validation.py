"""The shared checks: keys, device-side value checks, and their behaviour under an outer jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import _validation as V


@pytest.mark.parametrize("key", [jax.random.key(0), jax.random.PRNGKey(0)])
def test_check_key_accepts_typed_and_raw_keys(key):
    V.check_key(key)


@pytest.mark.parametrize("bad", [0, 2**40, np.zeros(2, np.float32), jnp.zeros(3, jnp.uint32), "seed"])
def test_check_key_refuses_ints_and_arrays_with_the_fix_in_the_message(bad):
    with pytest.raises(TypeError, match=r"key must be a JAX PRNG key such as jax\.random\.key\(0\)"):
        V.check_key(bad)


def test_check_finite_names_count_and_first_position():
    x = np.array([[1.0, 2.0], [np.inf, np.nan]], np.float32)
    with pytest.raises(ValueError, match=r"x contains 2 non-finite value\(s\).*first at index \(1, 0\)"):
        V.check_finite(jnp.asarray(x), name="x")
    V.check_finite(jnp.asarray(x[:1]), name="x")


def test_check_finite_skips_integer_data_without_reading_it():
    class NoData:
        dtype = np.dtype(np.uint8)

        def __array__(self, *args, **kwargs):
            raise AssertionError("integer data was copied to the host")

    V.check_finite(NoData(), name="images")


def test_value_checks_of_closed_over_arrays_still_run_inside_an_outer_jit():
    bad = jnp.asarray([1.0, jnp.nan], jnp.float32)

    def f(x):
        V.check_finite(bad, name="w")
        return x

    with pytest.raises(ValueError, match="w contains 1 non-finite"):
        jax.jit(f)(1.0)

    labels = jnp.asarray([0, 3])

    def g(x):
        V.check_labels(labels, 3)
        return x

    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got values from 0 to 3"):
        jax.jit(g)(1.0)


def test_check_labels_refuses_float_labels_and_traced_labels_pass():
    with pytest.raises(TypeError, match="labels must be integer class labels, got labels.dtype=float32"):
        V.check_labels(jnp.asarray([0.0, 1.0], jnp.float32), 2)
    jax.jit(lambda l: (V.check_labels(l, 2), l)[1])(jnp.asarray([0, 5]))
