"""jaxmath.devices.precision: names → lax.Precision, the global setting reaches traced matmuls."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxmath.devices import precision as P


def _dot_precisions(fn, *args):
    """The precision attributes of every dot_general in the lowered StableHLO of fn(*args)."""
    text = jax.jit(fn).lower(*args).as_text()
    return [line.split("precision = ")[1].split("]")[0] + "]" for line in text.splitlines() if "dot_general" in line]


@pytest.mark.parametrize(
    "given, want",
    [(None, None), ("default", lax.Precision.DEFAULT), ("HIGH", lax.Precision.HIGH),
     ("highest", lax.Precision.HIGHEST), (lax.Precision.HIGH, lax.Precision.HIGH)],
)
def test_as_precision(given, want):
    assert P.as_precision(given) is want


@pytest.mark.parametrize("bad", ["fastest", 3, "tf32x"])
def test_as_precision_rejects_unknown_names(bad):
    with pytest.raises(ValueError, match="precision"):
        P.as_precision(bad)


def test_precision_name_round_trips():
    for name in P.PRECISIONS:
        assert P.precision_name(name) == name
        assert P.precision_name(P.as_precision(name)) == name


@pytest.mark.parametrize("name, tag", [("default", "DEFAULT"), ("high", "HIGH"), ("highest", "HIGHEST")])
def test_matmul_precision_context_reaches_every_traced_matmul(name, tag):
    a = jnp.ones((4, 3), jnp.float32)
    b = jnp.ones((3, 2), jnp.float32)

    def two_layers(a, b):
        return jnp.dot(jnp.tanh(a @ b), b.T)

    assert P.current_precision() == "default"
    with P.matmul_precision(name) as got:
        assert got == name and P.current_precision() == name
        tags = _dot_precisions(two_layers, a, b)
    assert tags == [f"[{tag}, {tag}]"] * 2
    assert P.current_precision() == "default"  # restored on exit


def test_explicit_precision_argument_wins_over_the_context():
    a = jnp.ones((4, 4), jnp.float32)
    with P.matmul_precision("default"):
        tags = _dot_precisions(lambda x: jnp.dot(x, x, precision=P.as_precision("highest")), a)
    assert tags == ["[HIGHEST, HIGHEST]"]


def test_set_matmul_precision_sets_and_restores_globally():
    try:
        P.set_matmul_precision("high")
        assert P.current_precision() == "high"
    finally:
        P.set_matmul_precision(None)
    assert P.current_precision() == "default"
    with pytest.raises(ValueError, match="precision"):
        with P.matmul_precision(None):
            pass


@pytest.mark.parametrize("name", P.PRECISIONS)
def test_highest_precision_float32_matmul_matches_float64_numpy(name):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(32, 48)).astype(np.float32)
    b = rng.normal(size=(48, 16)).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    got = jnp.dot(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), precision=P.as_precision(name))
    assert got.shape == (32, 16) and got.dtype == jnp.float32
    if name == "highest" or jax.default_backend() == "cpu":
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    else:  # one bfloat16 pass on TPU: about 3 significant digits
        np.testing.assert_allclose(got, want, rtol=5e-2, atol=5e-1)


# ----------------------------------------------------------------------------- parity report

from jaxmath.bench import parity  # noqa: E402


def test_max_errors_by_hand():
    a = {"w": np.array([1.0, 2.5], np.float32), "b": np.array([0.0], np.float32)}
    r = {"w": np.array([1.0, 2.0], np.float32), "b": np.array([0.0], np.float32)}
    assert parity.max_errors(a, r) == (0.5, 0.25)
    assert parity.max_errors(np.zeros(2), np.zeros(2)) == (0.0, 0.0)


def _numpy_mlp(params, x):
    a = np.asarray(x, np.float64)
    for i, (w, b) in enumerate(params):
        z = a @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
        a = z if i == len(params) - 1 else np.tanh(z)
    return a


def test_parity_report_rows_and_bfloat16_error_matches_numpy():
    from jaxmath.models import mlp

    sizes, batch = (32, 16, 4), 8
    rows = parity.parity_report(sizes=sizes, batch=batch)
    assert [(r.precision, r.compute_dtype) for r in rows] == [
        (p, d) for d in ("float32", "bfloat16") for p in ("default", "high", "highest")
    ]
    dev = jax.devices()[0].device_kind
    assert all(r.device_kind == dev for r in rows)
    for r in rows:
        assert all(np.isfinite([r.output_abs, r.output_rel, r.grad_abs, r.grad_rel]))
    highest32 = rows[2]
    assert highest32.output_rel <= 1e-5 and highest32.grad_rel <= 1e-5
    bf16 = rows[3]
    assert 1e-5 < bf16.output_rel < 5e-2 and 1e-5 < bf16.grad_rel < 1e-1
    # Independently: the same bfloat16 forward pass against a float64 NumPy MLP.
    rng = np.random.default_rng(0)
    x = rng.random((batch, sizes[0]), dtype=np.float32)
    model = mlp.make(sizes, activation="tanh", compute_dtype="bfloat16")
    params = model.init(jax.random.PRNGKey(0))  # the parity report's params: mlp.init, glorot, float32
    out = model.apply(params, jnp.asarray(x, jnp.float32))
    want = np.max(np.abs(np.asarray(out, np.float64) - _numpy_mlp(params, x)))
    assert bf16.output_abs == pytest.approx(want, rel=1e-3, abs=1e-6)
    assert "output rel" in parity.format_parity(rows).splitlines()[0]


def test_parity_report_rejects_unknown_precision():
    with pytest.raises(ValueError, match="precision"):
        parity.parity_report(precisions=("turbo",))


@pytest.mark.parametrize("case, min_dots", [("mlp-784-16-16-10", 5), ("logreg", 2), ("kmeans", 1)])
def test_precision_option_reaches_every_matmul_of_the_suite_models(case, min_dots):
    # No context manager: only the models' own precision= keyword, forward and backward passes.
    from jaxmath.bench import suite

    work = suite.default_cases("tiny", precision="highest", names=[case])[0].setup()
    tags = _dot_precisions(work.fn, *work.args)
    # mlp: 3 forward + 2 input-gradient + 3 weight-gradient matmuls; logreg: forward + gradient
    assert len(tags) >= min_dots
    assert set(tags) == {"[HIGHEST, HIGHEST]"}, tags


# --------------------------------------------------------------------------- visible and settable; bfloat16 training


def _info_stdout(env_value):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "JAX_DEFAULT_MATMUL_PRECISION"}
    if env_value is not None:
        env["JAX_DEFAULT_MATMUL_PRECISION"] = env_value
    code = ("import sys, jax, jax.numpy as jnp; from jaxmath.cli import main; main(['info']); "
            "a = jnp.ones((2, 2)); print('traced:', 'HIGHEST' in jax.jit(jnp.matmul).lower(a, a).as_text())")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("env_value, shown, traced", [(None, "default", False), ("highest", "highest", True)])
def test_jaxmath_info_shows_the_default_matmul_precision_and_the_environment_variable_sets_it(env_value, shown, traced):
    lines = _info_stdout(env_value)
    assert f"default matmul precision: {shown}" in lines
    assert "  to change:              JAX_DEFAULT_MATMUL_PRECISION=highest, or in Python:" in lines
    assert '    jax.config.update("jax_default_matmul_precision", "highest")' in lines
    assert f"traced: {traced}" in lines  # the shown setting is the one every traced matmul gets


def test_info_explains_what_default_means_on_a_tpu():
    from jaxmath.devices import info as I

    data = I.collect_info(accelerators={"gpu": [], "tpu": []})
    data["backend"] = "tpu"
    text = I.format_info(data).splitlines()
    assert "  default on tpu:         one bf16 pass (~3 digits); high 3, highest 6 (~fp32)" in text
    assert max(map(len, text)) <= 80


@pytest.mark.slow
def test_bfloat16_compute_trains_with_float32_master_params_and_optimizer_state():
    """bfloat16 matmuls, float32 params and Adam moments, no loss scaling: finite and close to float32."""
    from jaxmath import optim, training
    from jaxmath.datasets import load_mnist
    from jaxmath.models import mlp

    x, labels = load_mnist("train[:3000]")
    tx, tl = load_mnist("test[:1000]")
    results = {}
    for compute in (None, "bfloat16"):
        model = mlp.make((784, 64, 10), activation="relu", dtype="float32", compute_dtype=compute)
        loss_fn = training.make_classifier_loss(model, num_classes=10)
        step = training.make_train_step(loss_fn, optim.adam(learning_rate=3e-3))
        if compute:
            hlo = jax.jit(loss_fn).lower(model.init(jax.random.key(0)), (x[:8], labels[:8])).as_text()
            assert "bf16" in hlo and any("dot_general" in l and "bf16" in l for l in hlo.splitlines())
        state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
        for _ in range(3):
            state, metrics = training.run_epoch(state, x, labels, train_step=step, batch_size=64)
        # Params and Adam's per-parameter moments stay float32 (the scalar hyperparameters in the state follow
        # the Python float's type, float64 under the tests' x64 mode, and are not per-parameter state).
        assert {str(l.dtype) for l in jax.tree_util.tree_leaves(state.params)} == {"float32"}
        moments = jax.tree_util.tree_leaves((state.opt_state.mu, state.opt_state.nu))
        assert len(moments) == 8 and {str(l.dtype) for l in moments} == {"float32"}
        assert np.all(np.isfinite(np.asarray(metrics["loss"])))  # every step's loss
        results[compute] = training.evaluate(state.params, tx, tl, loss_fn=loss_fn)
    f32, bf16 = (float(results[k]["accuracy"]) for k in (None, "bfloat16"))
    assert f32 > 0.85 and bf16 > 0.85
    assert abs(f32 - bf16) <= 0.02  # 1000 test images: 20 of them
