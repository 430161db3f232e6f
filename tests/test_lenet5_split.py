"""lenet5's batch_split: the part sizes by hand, bad values refused, a split batch giving the same logits and
gradients as the whole batch (float64), and one copy of the network per part. The torch replay of a split batch
is in test_lenet5.py, beside the replay it reuses."""

import json

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.models import from_config, lenet5


def _one_cpu_device():
    return jax.default_backend() == "cpu" and jax.device_count() == 1


# ----------------------------------------------------------------------------- part sizes


@pytest.mark.parametrize("n, want", [
    (0, (0,)), (1, (1,)), (63, (63,)), (127, (127,)), (128, (64, 64)), (129, (65, 64)), (130, (65, 65)),
    (256, (64,) * 4), (512, (64,) * 8), (1000, (125,) * 8), (10000, (1250,) * 8),
])
def test_auto_sizes_on_one_cpu_device(n, want, monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    monkeypatch.setattr(jax, "device_count", lambda: 1)
    assert lenet5.split_sizes(n) == want
    assert lenet5.split_sizes(n, "auto") == want


@pytest.mark.parametrize("backend, devices", [("gpu", 1), ("tpu", 8), ("cpu", 8), ("cpu", 2)])
def test_auto_is_one_part_off_a_single_cpu(backend, devices, monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    monkeypatch.setattr(jax, "device_count", lambda: devices)
    assert lenet5.split_sizes(512) == (512,)


@pytest.mark.parametrize("n, k, want", [
    (10, 1, (10,)), (10, 3, (4, 3, 3)), (10, 10, (1,) * 10), (3, 5, (1, 1, 1)), (0, 4, (0,)), (128, 2, (64, 64)),
])
def test_explicit_sizes(n, k, want):
    assert lenet5.split_sizes(n, k) == want
    assert lenet5.split_sizes(n, np.int64(k)) == want


@pytest.mark.parametrize("bad, error", [
    (0, ValueError), (-1, ValueError), ("half", ValueError), ("", ValueError), (2.0, TypeError), (True, TypeError),
    (None, TypeError), ((2,), TypeError),
])
def test_bad_batch_split_is_refused_everywhere(bad, error):
    message = r'batch_split must be "auto" or an integer >= 1, got batch_split='
    with pytest.raises(error, match=message):
        lenet5.split_sizes(8, bad)
    with pytest.raises(error, match=message):
        lenet5.make(batch_split=bad)
    params = lenet5.init(jax.random.key(0))
    with pytest.raises(error, match=message):
        lenet5.apply(params, jnp.zeros((8, 784), jnp.float32), batch_split=bad)


def test_config_carries_batch_split_and_older_configs_load():
    model = lenet5.make(batch_split=2)
    config = json.loads(json.dumps(model.config))
    assert config["batch_split"] == 2
    assert from_config(config).config == model.config
    older = {k: v for k, v in config.items() if k != "batch_split"}  # saved before batch_split existed
    assert from_config(older).config["batch_split"] == "auto"


# ----------------------------------------------------------------------------- values


def _params(variant):
    params = lenet5.init(jax.random.key(0), variant=variant, dtype=jnp.float64)
    rng = np.random.default_rng(0)
    return jax.tree_util.tree_map(lambda v: v + 0.05 * jnp.asarray(rng.normal(size=v.shape)), params)


def _loss(params, x, labels, variant, batch_split):
    logits = lenet5.apply(params, x, variant=variant, batch_split=batch_split)
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(x.shape[0]), labels]), logits


@pytest.mark.parametrize("variant", ["modern", "1998"])
def test_parts_give_the_whole_batchs_logits_and_gradients_float64(variant):
    params = _params(variant)
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(10, 784)))
    labels = jnp.arange(10) % 10
    grad = jax.value_and_grad(_loss, has_aux=True)
    (loss_1, logits_1), grads_1 = grad(params, x, labels, variant, 1)
    (loss_3, logits_3), grads_3 = grad(params, x, labels, variant, 3)  # parts of 4, 3, 3 examples
    assert logits_3.shape == (10, 10)
    np.testing.assert_allclose(np.asarray(logits_3), np.asarray(logits_1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(float(loss_3), float(loss_1), rtol=1e-12)
    for path, g1, g3 in zip(jax.tree_util.tree_leaves_with_path(grads_1), jax.tree_util.tree_leaves(grads_1),
                            jax.tree_util.tree_leaves(grads_3)):
        np.testing.assert_allclose(np.asarray(g3), np.asarray(g1), rtol=1e-10, atol=1e-13, err_msg=str(path[0]))
    # every layer's output, too, in example order
    outputs_1 = lenet5.layer_outputs(params, x, variant=variant, batch_split=1)
    outputs_3 = lenet5.layer_outputs(params, x, variant=variant, batch_split=3)
    for name in lenet5.LAYERS:
        np.testing.assert_allclose(np.asarray(outputs_3[name]), np.asarray(outputs_1[name]), rtol=1e-12,
                                   atol=1e-12, err_msg=name)


def _conv_calls(jaxpr):
    """custom_vjp calls (the im2col convolutions C1 and C3) anywhere in a jaxpr."""
    count = 0
    for eqn in jaxpr.eqns:
        if "custom_vjp" in eqn.primitive.name:
            count += 1
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            count += _conv_calls(sub)
    return count


@pytest.mark.parametrize("batch_split, copies", [(1, 1), (2, 2), (4, 4)])
def test_each_part_is_its_own_copy_of_the_network(batch_split, copies):
    params = lenet5.init(jax.random.key(0))
    x = jnp.zeros((128, 784), jnp.float32)
    jaxpr = jax.make_jaxpr(lambda p, x: lenet5.apply(p, x, batch_split=batch_split))(params, x)
    assert _conv_calls(jaxpr.jaxpr) == 2 * copies  # C1 and C3 per copy (C5 has 120 channels: no custom VJP)


@pytest.mark.skipif(not _one_cpu_device(), reason="auto splits on a single CPU device only")
def test_auto_splits_a_training_batch_here():
    assert lenet5.split_sizes(128) == (64, 64)
    params = lenet5.init(jax.random.key(0))
    jaxpr = jax.make_jaxpr(lenet5.make().apply)(params, jnp.zeros((128, 784), jnp.float32))
    assert _conv_calls(jaxpr.jaxpr) == 4
