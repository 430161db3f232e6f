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
