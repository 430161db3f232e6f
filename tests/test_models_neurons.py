"""McCulloch-Pitts units, the perceptron rule and the sigmoid neuron, against hand truth tables, NumPy replays
of the notes' update rules, jax.grad and torch."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.models import mcculloch_pitts as mp
from jaxmath.models import perceptron, sigmoid_neuron

XOR = np.array([0, 1, 1, 0])


# ---------------------------------------------------------------- McCulloch-Pitts


def test_truth_table_shape_and_order():
    table = mp.truth_table(2)
    assert table.shape == (4, 2) and table.dtype == jnp.int32
    np.testing.assert_array_equal(table, [[0, 0], [0, 1], [1, 0], [1, 1]])


@pytest.mark.parametrize(
    "gate, expected",
    [
        (mp.and_gate(), [0, 0, 0, 1]),
        (mp.or_gate(), [0, 1, 1, 1]),
    ],
)
def test_ready_made_two_input_gates(gate, expected):
    out = mp.apply(gate, mp.truth_table(2))
    assert out.shape == (4,)
    np.testing.assert_array_equal(out, expected)


def test_not_gate_and_three_input_and():
    np.testing.assert_array_equal(mp.apply(mp.not_gate(), jnp.asarray([[0], [1]], jnp.int32)), [1, 0])
    table = mp.truth_table(3)
    np.testing.assert_array_equal(mp.apply(mp.and_gate(3), table), np.all(np.asarray(table) == 1, axis=1))


def test_inhibitory_input_vetoes_absolutely():
    # x0 excitatory, x1 inhibitory, θ = 1: fires for x0 AND NOT x1 (hand table).
    unit = mp.init(2, threshold=1, inhibitory=(1,))
    np.testing.assert_array_equal(mp.apply(unit, mp.truth_table(2)), [0, 0, 1, 0])
    # Even with every excitatory input on, one inhibitory input stops a 3-input unit.
    unit = mp.init(3, threshold=1, inhibitory=(2,))
    np.testing.assert_array_equal(mp.apply(unit, jnp.asarray([[1, 1, 1], [1, 1, 0]], jnp.int32)), [0, 1])


def test_no_integer_threshold_unit_computes_xor():
    """Every weighted unit w1, w2, θ ∈ {−3..3}: some compute AND, OR, NAND, NOR, none computes XOR."""
    values = np.arange(-3, 4)
    units = np.array(list(itertools.product(values, values, values)), np.int32)  # (343, 3)
    w, theta = units[:, :2], units[:, 2]
    x = np.asarray(mp.truth_table(2))
    out = mp.threshold_unit(jnp.asarray(w)[:, None, :], jnp.asarray(theta)[:, None], jnp.asarray(x)[None])
    assert out.shape == (343, 4)
    # Independent check of the unit itself: NumPy evaluation of 1[x·w ≥ θ].
    np.testing.assert_array_equal(out, (np.einsum("ud,xd->ux", w, x) >= theta[:, None]).astype(np.int32))
    tables = {tuple(row) for row in np.asarray(out)}
    for reachable in ([0, 0, 0, 1], [0, 1, 1, 1], [1, 1, 1, 0], [1, 0, 0, 0]):
        assert tuple(reachable) in tables
    assert tuple(XOR) not in tables
    assert tuple(1 - XOR) not in tables  # nor XNOR


def test_no_mcculloch_pitts_wiring_computes_xor():
    x = mp.truth_table(2)
    found = set()
    for inhibitory in [(), (0,), (1,), (0, 1)]:
        for threshold in range(-1, 4):
            found.add(tuple(np.asarray(mp.apply(mp.init(2, threshold=threshold, inhibitory=inhibitory), x))))
    assert (0, 0, 0, 1) in found and (0, 1, 1, 1) in found
    assert tuple(XOR) not in found


def test_mcculloch_pitts_bad_input():
    with pytest.raises(ValueError, match=r"x must have 2 inputs.*x.shape=\(4, 3\)"):
        mp.apply(mp.and_gate(), jnp.zeros((4, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"x must have 2 inputs"):
        jax.jit(mp.apply)(mp.and_gate(), jnp.zeros((3,), jnp.int32))  # raised at trace time, under jit too
    with pytest.raises(ValueError, match="inhibitory"):
        mp.init(2, threshold=1, inhibitory=(5,))


# ---------------------------------------------------------------- perceptron


def _numpy_perceptron(x, t, lr, max_epochs):
    """Rosenblatt's rule written out in NumPy, example by example."""
    w = np.zeros(x.shape[1])
    b = 0.0
    mistakes = []
    for _ in range(max_epochs):
        m = 0
        for xi, target in zip(x, t):
            y_hat = 1.0 if xi @ w + b >= 0 else 0.0
            err = target - y_hat
            w = w + lr * err * xi
            b = b + lr * err
            m += int(err != 0)
        mistakes.append(m)
        if m == 0:
            break
    return w, b, mistakes


def _separable(seed, n=40):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2))
    t = (x @ np.array([1.5, -1.0]) + 0.2 > 0).astype(np.int32)
    return x, t


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_perceptron_replays_numpy_rule_and_converges(dtype):
    x, t = _separable(0)
    params, info = perceptron.fit(jnp.asarray(x, dtype), jnp.asarray(t, jnp.int32), learning_rate=0.5, max_steps=200)
    assert params["w"].shape == (2,) and params["b"].shape == () and params["w"].dtype == dtype
    assert info.mistakes.shape == (200,)
    w, b, mistakes = _numpy_perceptron(x.astype(dtype), t, 0.5, 200)
    tol = 1e-10 if dtype == jnp.float64 else 1e-5
    np.testing.assert_allclose(params["w"], w, atol=tol)
    np.testing.assert_allclose(params["b"], b, atol=tol)
    assert int(info.num_steps) == len(mistakes)
    np.testing.assert_array_equal(info.mistakes[: len(mistakes)], mistakes)
    assert np.all(np.asarray(info.mistakes[len(mistakes):]) == -1)
    assert bool(info.converged)
    np.testing.assert_array_equal(perceptron.predict(params, jnp.asarray(x, dtype)), t)


def test_perceptron_on_xor_stops_at_max_epochs_without_converging():
    x = jnp.asarray([[0, 0], [0, 1], [1, 0], [1, 1]], jnp.float32)
    params, info = perceptron.fit(x, jnp.asarray(XOR, jnp.int32), max_steps=25)
    assert int(info.num_steps) == 25
    assert not bool(info.converged)
    assert np.all(np.asarray(info.mistakes) > 0)
    assert np.any(np.asarray(perceptron.predict(params, x)) != XOR)


def test_perceptron_fit_under_vmap_matches_single_fits():
    data = [_separable(s) for s in range(3)]
    xs = jnp.asarray(np.stack([d[0] for d in data]), jnp.float64)
    ts = jnp.asarray(np.stack([d[1] for d in data]), jnp.int32)
    batched, info = jax.vmap(lambda x, t: perceptron.fit(x, t, max_steps=100))(xs, ts)
    assert batched["w"].shape == (3, 2) and info.num_steps.shape == (3,)
    for i in range(3):
        single, single_info = perceptron.fit(xs[i], ts[i], max_steps=100)
        np.testing.assert_allclose(batched["w"][i], single["w"], atol=1e-12)
        assert int(info.num_steps[i]) == int(single_info.num_steps)


def test_perceptron_bad_input():
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"x and labels must have the same number of rows.*\(4, 2\).*\(3,\)"):
        perceptron.fit(x, np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=r"x contains 1 non-finite.*index \(1, 1\)"):
        perceptron.fit(np.array([[0, 0], [0, np.nan], [0, 0], [0, 0]], np.float32), np.zeros(4, np.int32))
    with pytest.raises(ValueError, match=r"labels must be 0/1"):
        perceptron.fit(x, np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="max_steps"):
        perceptron.fit(x, np.zeros(4, np.int32), max_steps=0)


# ---------------------------------------------------------------- sigmoid neuron


def _blobs(seed=0, n=60, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    t = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=n) > 0).astype(dtype)
    return x.astype(dtype), t


def test_sigmoid_neuron_gradient_is_the_notes_y_minus_t_times_x():
    x, t = _blobs()
    params = {"w": jnp.asarray([0.1, -0.2, 0.3], jnp.float64), "b": jnp.asarray(0.05, jnp.float64)}
    for beta in (1.0, 2.0):
        g = jax.grad(sigmoid_neuron.loss)(params, jnp.asarray(x), jnp.asarray(t), beta=beta)
        y = 1 / (1 + np.exp(-beta * (x @ np.asarray(params["w"]) + 0.05)))
        np.testing.assert_allclose(g["w"], beta * x.T @ (y - t) / len(t), atol=1e-12)
        np.testing.assert_allclose(g["b"], beta * np.mean(y - t), atol=1e-12)
        out = sigmoid_neuron.apply(params, jnp.asarray(x), beta=beta)
        assert out.shape == (60,)
        np.testing.assert_allclose(out, y, atol=1e-12)


@pytest.mark.parametrize("loss_name, dtype, tol", [("cross_entropy", jnp.float64, 1e-10),
                                                   ("squared_error", jnp.float64, 1e-10),
                                                   ("cross_entropy", jnp.float32, 1e-5)])
def test_sigmoid_neuron_fit_matches_torch_gradient_descent(loss_name, dtype, tol):
    torch = pytest.importorskip("torch")
    x, t = _blobs(dtype=np.float64)
    steps, lr = 25, 0.5
    params, info = sigmoid_neuron.fit(jnp.asarray(x, dtype), jnp.asarray(t, dtype), learning_rate=lr,
                                      max_steps=steps, loss=loss_name)
    assert params["w"].shape == (3,) and info.loss_history.shape == (steps,)
    tdt = torch.float64 if dtype == jnp.float64 else torch.float32
    w = torch.zeros(3, dtype=tdt, requires_grad=True)
    b = torch.zeros((), dtype=tdt, requires_grad=True)
    Xt, tt = torch.tensor(x, dtype=tdt), torch.tensor(t, dtype=tdt)
    opt = torch.optim.SGD([w, b], lr=lr)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        s = Xt @ w + b
        if loss_name == "cross_entropy":
            E = torch.nn.functional.binary_cross_entropy_with_logits(s, tt)
        else:
            E = 0.5 * torch.mean((torch.sigmoid(s) - tt) ** 2)
        history.append(E.item())
        E.backward()
        opt.step()
    np.testing.assert_allclose(params["w"], w.detach().numpy(), atol=tol)
    np.testing.assert_allclose(params["b"], b.item(), atol=tol)
    np.testing.assert_allclose(info.loss_history, history, atol=tol)


def test_sigmoid_neuron_bfloat16_stays_finite_and_learns():
    x, t = _blobs()
    params, info = sigmoid_neuron.fit(jnp.asarray(x, jnp.bfloat16), jnp.asarray(t, jnp.bfloat16), max_steps=100)
    assert params["w"].dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(info.loss_history, np.float32)))
    acc = np.mean(np.asarray(sigmoid_neuron.predict(params, jnp.asarray(x, jnp.bfloat16))) == t)
    assert acc >= 0.8


def test_sigmoid_neuron_vmap_over_learning_rates():
    x, t = _blobs()
    x, t = jnp.asarray(x), jnp.asarray(t)
    lrs = jnp.asarray([0.1, 0.5, 1.0], jnp.float64)
    batched, info = jax.vmap(lambda lr: sigmoid_neuron.fit(x, t, learning_rate=lr, max_steps=20))(lrs)
    assert batched["w"].shape == (3, 3)
    for i, lr in enumerate([0.1, 0.5, 1.0]):
        single, _ = sigmoid_neuron.fit(x, t, learning_rate=lr, max_steps=20)
        np.testing.assert_allclose(batched["w"][i], single["w"], atol=1e-12)


def test_sigmoid_neuron_bad_input():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 1\]"):
        sigmoid_neuron.fit(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"labels contains 1 non-finite"):
        sigmoid_neuron.fit(x, np.array([0.0, np.inf, 1.0]))
    with pytest.raises(ValueError, match="loss must be one of"):
        sigmoid_neuron.fit(x, np.zeros(3), loss="hinge")


# ---------------------------------------------------------------- the one API: init(key, ...), apply, warm start


def test_mcculloch_pitts_counts_any_nonzero_input_as_on():
    # AND over (2, 1) fires like (1, 1); bool inputs work the same (hand table).
    np.testing.assert_array_equal(mp.apply(mp.and_gate(), jnp.asarray([[2, 1], [0, 5], [1, 1]], jnp.int32)),
                                  [1, 0, 1])
    np.testing.assert_array_equal(mp.apply(mp.or_gate(), jnp.asarray([[False, False], [True, False]])), [0, 1])


def test_perceptron_init_apply_predict_and_warm_start_epoch_by_epoch():
    params = perceptron.init(jax.random.key(0), 2, dtype=jnp.float64)
    assert params["w"].shape == (2,) and params["b"].shape == () and params["w"].dtype == jnp.float64
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        perceptron.init(3, 2)
    x, t = _separable(1)
    whole, info = perceptron.fit(x, t, max_steps=100)
    # The same training one epoch at a time, each fit warm-started from the last: identical parameters.
    p = params
    for _ in range(int(info.num_steps)):
        p, step_info = perceptron.fit(x, t, max_steps=1, params=p)
        assert int(step_info.num_steps) == 1
    chex.assert_trees_all_close(p, whole, atol=1e-12)
    z = perceptron.apply(whole, jnp.asarray(x))
    np.testing.assert_allclose(z, x @ np.asarray(whole["w"]) + float(whole["b"]), rtol=1e-12)
    np.testing.assert_array_equal(perceptron.predict(whole, jnp.asarray(x)), (np.asarray(z) >= 0).astype(int))


def test_sigmoid_neuron_init_is_random_and_warm_start_continues_the_descent():
    a = sigmoid_neuron.init(jax.random.key(0), 3, scale=0.1, dtype=jnp.float64)
    b = sigmoid_neuron.init(jax.random.key(1), 3, scale=0.1, dtype=jnp.float64)
    assert a["w"].shape == (3,) and not np.allclose(a["w"], b["w"])
    x, t = _blobs()
    ten, _ = sigmoid_neuron.fit(x, t, max_steps=10, params=a)
    five, _ = sigmoid_neuron.fit(x, t, max_steps=5, params=a)
    five_more, info = sigmoid_neuron.fit(x, t, max_steps=5, params=five)
    chex.assert_trees_all_close(five_more, ten, atol=1e-12)
    assert int(info.num_steps) == 5 and not bool(info.converged)
    np.testing.assert_array_equal(sigmoid_neuron.predict(ten, x),
                                  (np.asarray(sigmoid_neuron.apply(ten, x)) > 0.5).astype(np.int32))
