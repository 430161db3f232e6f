"""One test per entry of docs/errata.md: autodiff (or plain arithmetic) shows the notes' form wrong and ours right.

Each test computes the notes' form as written, the corrected form, and an independent
reference (``jax.grad`` or NumPy), and checks that the reference agrees with the correction
and disagrees with the notes. The last test checks the formulas the errata page lists as correct.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import activations as A
from jaxmath import losses as L
from jaxmath import regularizers as R
from jaxmath import stats as S
from jaxmath.unsupervised.hebbian import hebb_rule

F64 = jnp.float64


def _rng_pair(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(0.05, 0.95, n), F64), jnp.asarray(rng.uniform(0, 1, n), F64)


def test_erratum_1_derivative_of_half_squared_error_has_a_minus_sign():
    # Notes: ∂E_i/∂y_i = 2·½(t_i − y_i)·1 = (t_i − y_i). Correct: −(t_i − y_i) = y_i − t_i.
    y, t = _rng_pair()
    auto = jax.vmap(jax.grad(lambda yi, ti: 0.5 * (ti - yi) ** 2))(y, t)
    notes = t - y
    correct = -(t - y)
    np.testing.assert_allclose(auto, correct, rtol=1e-12)
    assert not np.allclose(auto, notes)
    # and the library's gradient (mean over n examples) is the corrected one
    np.testing.assert_allclose(L.mse_gradient(y, t, half=True), correct / len(y), rtol=1e-12)


def test_erratum_2_bce_derivative_middle_step_sign():
    # Notes: −y/ŷ − (1−y)/(1−ŷ) = (ŷ − y)/(ŷ(1−ŷ)). The middle step must read −y/ŷ + (1−y)/(1−ŷ).
    p, t = _rng_pair(seed=1)
    t = jnp.round(t)
    auto = jax.vmap(jax.grad(lambda pi, ti: -(ti * jnp.log(pi) + (1 - ti) * jnp.log(1 - pi))))(p, t)
    notes_middle = -t / p - (1 - t) / (1 - p)
    correct_middle = -t / p + (1 - t) / (1 - p)
    final = (p - t) / (p * (1 - p))
    np.testing.assert_allclose(auto, correct_middle, rtol=1e-12)
    np.testing.assert_allclose(auto, final, rtol=1e-12)  # the notes' final form is right
    assert not np.allclose(auto, notes_middle)
    np.testing.assert_allclose(L.binary_cross_entropy_gradient(p, t, reduction="sum"), final, rtol=1e-12)


def test_erratum_3_mle_sigma_divides_by_n_not_n_minus_1():
    x = jnp.asarray(np.random.default_rng(2).normal(1.0, 2.0, 12), F64)
    xn = np.asarray(x)
    mu = xn.mean()
    sigma_notes = math.sqrt(((xn - mu) ** 2).sum() / (len(xn) - 1))
    sigma_mle = math.sqrt(((xn - mu) ** 2).sum() / len(xn))
    d_sigma = jax.grad(lambda s: S.log_likelihood(x, mu=mu, sigma=s))
    assert abs(float(d_sigma(sigma_mle))) < 1e-10  # the maximum: slope 0
    assert float(d_sigma(sigma_notes)) < -1e-3  # past the maximum: the likelihood falls
    assert float(S.log_likelihood(x, mu=mu, sigma=sigma_mle)) > float(S.log_likelihood(x, mu=mu, sigma=sigma_notes))
    np.testing.assert_allclose(S.mle_normal(x)[1], sigma_mle, rtol=1e-12)
    (_, sigma_fit), info = S.fit_normal((x - mu) / sigma_mle, learning_rate=0.2, max_steps=300)
    assert bool(info.converged)
    np.testing.assert_allclose(sigma_fit * sigma_mle, sigma_mle, rtol=1e-9)  # ascent lands on 1/n


def test_erratum_4_partial_derivative_with_respect_to_sigma():
    # Notes' first form: Σ (x_i − μ)/σ³. Correct (their second form): −n/σ + Σ (x_i − μ)²/σ³.
    x = jnp.asarray(np.random.default_rng(3).normal(0.5, 1.5, 9), F64)
    xn, mu, sigma = np.asarray(x), 0.2, 1.3
    auto = float(jax.grad(lambda s: S.log_likelihood(x, mu=mu, sigma=s))(sigma))
    notes = ((xn - mu) / sigma**3).sum()
    correct = -len(xn) / sigma + ((xn - mu) ** 2).sum() / sigma**3
    np.testing.assert_allclose(auto, correct, rtol=1e-12)
    assert not np.isclose(auto, notes)


def test_erratum_5_loss_without_the_square():
    # Notes (backpropagation, step 2): 𝓛_i = ½·(t_i − y_i). Correct: ½·(t_i − y_i)².
    y, t = _rng_pair(seed=4)
    notes = 0.5 * (t - y)
    assert np.any(notes < 0)  # not a loss: it rewards overshooting without bound
    auto_notes = jax.vmap(jax.grad(lambda yi, ti: 0.5 * (ti - yi)))(y, t)
    np.testing.assert_allclose(auto_notes, -0.5)  # a constant push, blind to the error
    np.testing.assert_allclose(L.mse(y, t, half=True, reduction="none"), 0.5 * (t - y) ** 2, rtol=1e-12)
    assert np.all(np.asarray(L.mse(y, t, half=True, reduction="none")) >= 0)


def test_erratum_6_update_rule_must_subtract_the_gradient():
    # Notes: w_{k+1} = w_k + Δw with Δw = η·∂E/∂w (gradient ascent on the loss).
    # Correct: Δw = −η·∂E/∂w (their own step 3: w_{k+1} = w_k − η·∇).
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=(16, 3)), F64)
    t = jnp.asarray(rng.integers(0, 2, 16), F64)
    w = jnp.asarray(rng.normal(size=3), F64)
    loss = lambda w: L.binary_cross_entropy_with_logits(x @ w, t)  # noqa: E731
    g, eta = jax.grad(loss)(w), 0.1
    assert float(loss(w + eta * g)) > float(loss(w))  # notes' rule: the loss grows
    assert float(loss(w - eta * g)) < float(loss(w))  # corrected rule: it falls


def test_erratum_7_output_delta_uses_the_activation_derivative():
    # Notes: δ = ∂E/∂y · ∂y/∂z = ∂E/∂y · (t − y). Correct: ∂y/∂z = y(1 − y) for the sigmoid,
    # so δ = (y − t) · y(1 − y) for E = ½(t − y)².
    z, t = _rng_pair(seed=6)
    z = 4 * z - 2
    y = A.sigmoid(z)
    auto = jax.vmap(jax.grad(lambda zi, ti: 0.5 * (ti - A.sigmoid(zi)) ** 2))(z, t)
    correct = (y - t) * A.sigmoid_derivative(z)
    notes = (t - y) * (t - y)  # with the notes' own ∂E/∂y = (t − y)
    np.testing.assert_allclose(auto, correct, rtol=1e-12)
    np.testing.assert_allclose(A.sigmoid_derivative(z), y * (1 - y), rtol=1e-12)
    assert not np.allclose(auto, notes)


def test_erratum_8_hidden_delta_and_weight_gradient():
    # Notes: hidden δ_i = ∂E/∂y_i · Σ_l δ_l w_{l,i}, and ∇ = x_i · ∂E/∂w_i.
    # Correct: δ_i = f'(z_i) · Σ_l δ_l w_{l,i} (δ = ∂E/∂z), and ∂E/∂w_{ij} = δ_i · x_j (x counted once).
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=3), F64)
    W1, W2 = jnp.asarray(rng.normal(size=(4, 3)), F64), jnp.asarray(rng.normal(size=(2, 4)), F64)
    t = jnp.asarray([0.0, 1.0], F64)

    def loss_from_hidden_z(z1):
        return 0.5 * jnp.sum((t - A.sigmoid(W2 @ A.sigmoid(z1))) ** 2)

    z1 = W1 @ x
    h = A.sigmoid(z1)
    y = A.sigmoid(W2 @ h)
    delta_out = (y - t) * y * (1 - y)
    correct_hidden = A.sigmoid_derivative(z1) * (W2.T @ delta_out)
    np.testing.assert_allclose(jax.grad(loss_from_hidden_z)(z1), correct_hidden, rtol=1e-12)
    # For a hidden unit ∂E/∂y_i is itself Σ_l δ_l w_{l,i} (autodiff agrees), so the notes' δ_i is its square.
    back = W2.T @ delta_out
    np.testing.assert_allclose(jax.grad(lambda hh: 0.5 * jnp.sum((t - A.sigmoid(W2 @ hh)) ** 2))(h), back, rtol=1e-12)
    notes_hidden = back * back
    assert not np.allclose(correct_hidden, notes_hidden)
    grad_W1 = jax.grad(lambda W: 0.5 * jnp.sum((t - A.sigmoid(W2 @ A.sigmoid(W @ x))) ** 2))(W1)
    np.testing.assert_allclose(grad_W1, jnp.outer(correct_hidden, x), rtol=1e-12)
    assert not np.allclose(grad_W1, jnp.outer(correct_hidden, x) * x[None, :])  # x_i twice


def test_erratum_9_mae_needs_the_absolute_value():
    # Notes: MAE = (t_i − y_i)¹. Correct: MAE = (1/n) Σ |t_i − y_i|.
    y = jnp.asarray([0.0, 2.0], F64)
    t = jnp.asarray([1.0, 1.0], F64)
    assert float(jnp.mean((t - y) ** 1)) == 0.0  # errors of ±1 cancel: "perfect fit"
    assert float(L.mae(y, t)) == 1.0


def test_erratum_10_p_norm_needs_absolute_values():
    # Notes: ‖w‖_p = (w_1^p + … + w_N^p)^(1/p). Correct: (|w_1|^p + … + |w_N|^p)^(1/p).
    w = jnp.asarray([-2.0, 1.0], F64)
    notes = jnp.sum(w**3) ** (1 / 3)
    assert not np.isfinite(float(notes))  # (−7)^(1/3) is not a real power: NaN
    np.testing.assert_allclose(R.p_norm(w, p=3), 9.0 ** (1 / 3), rtol=1e-14)
    np.testing.assert_allclose(R.p_norm(w, p=3), R.p_norm(-w, p=3), rtol=1e-14)  # a norm ignores signs


def test_erratum_11_index_ranges_count_one_term_too_many():
    # Seed 001: loss = Σ_{i=0}^{10} (a_i − expected)² — the network has 10 outputs, i = 0 … 9.
    # Seed 000: Q(Θ) = 1/(2N) Σ_{j=0}^{N} — N samples are j = 0 … N − 1 (or 1 … N).
    a = jnp.asarray(np.random.default_rng(8).uniform(size=(1, 10)), F64)
    expected = jax.nn.one_hot(jnp.asarray([3]), 10, dtype=F64)
    terms = [(float(a[0, i]) - float(expected[0, i])) ** 2 for i in range(10)]
    # The notes' upper index i = 10 names an 11th output that does not exist.
    with pytest.raises(IndexError):
        [np.asarray(a)[0, i] for i in range(0, 10 + 1)]
    np.testing.assert_allclose(L.sum_of_squares(a, expected), sum(terms), rtol=1e-14)
    f, y = jnp.asarray([1.0, 2.0, 4.0], F64), jnp.asarray([1.5, 2.0, 3.0], F64)
    N = 3
    np.testing.assert_allclose(L.mse(f, y, half=True), sum((f[j] - y[j]) ** 2 for j in range(N)) / (2 * N), rtol=1e-14)


def test_erratum_12_hebb_example_truncates_instead_of_rounding():
    # Seed 000: η = 0.1, inputs (0.2, 0.3, 0.1, 1), output y = 0.562 → slide shows +0.011 +0.016 +0.005 +0.056;
    # η·x·y = (0.01124, 0.01686, 0.00562, 0.0562) rounds to +0.011 +0.017 +0.006 +0.056.
    w = jnp.asarray([0.230, 0.010, 0.900, 0.110], F64)
    x = jnp.asarray([0.2, 0.3, 0.1, 1.0], F64)
    y = A.sigmoid(jnp.dot(w, x))
    np.testing.assert_allclose(jnp.dot(w, x), 0.249, atol=1e-12)
    np.testing.assert_allclose(y, 0.562, atol=5e-4)
    # The library's Hebb step on the notes' neuron, rounded to the slide's three decimals.
    delta, _ = hebb_rule(w, x[:3], learning_rate=0.1)
    dw = np.round(np.asarray(delta, np.float64), 3)
    np.testing.assert_array_equal(dw, [0.011, 0.017, 0.006, 0.056])
    assert not np.array_equal(dw, [0.011, 0.016, 0.005, 0.056])
    # Truncation (what the slide did) gives its numbers.
    np.testing.assert_array_equal(np.floor(np.asarray(delta, np.float64) * 1000) / 1000, [0.011, 0.016, 0.005, 0.056])


def test_formulas_the_errata_page_lists_as_correct():
    z = jnp.asarray(np.random.default_rng(9).normal(size=(3, 4)), F64)
    # softmax derivative: p_i(1 − p_j) for i = j, −p_j p_i for i ≠ j
    p = np.asarray(A.softmax(z[0]))
    notes = np.array([[p[i] * (1 - p[j]) if i == j else -p[j] * p[i] for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(jax.jacobian(A.softmax)(z[0]), notes, rtol=1e-12, atol=1e-15)
    # sigmoid derivative y(1 − y) and the ReLU step
    np.testing.assert_allclose(jax.vmap(jax.grad(A.sigmoid))(z[1]), A.sigmoid(z[1]) * (1 - A.sigmoid(z[1])), rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(jax.grad(A.relu))(z[2]), (np.asarray(z[2]) > 0).astype(float))
    # ∂ lnL/∂μ = (1/σ²)[(x_1 + … + x_n) − nμ]
    x = z.ravel()
    d_mu = jax.grad(lambda m: S.log_likelihood(x, mu=m, sigma=1.7))(0.3)
    np.testing.assert_allclose(d_mu, (float(x.sum()) - x.size * 0.3) / 1.7**2, rtol=1e-12)
    # seed 000's gradient-descent steps for Q(Θ) = 1/(2N) Σ (Θ1 x + Θ0 − y)²
    xs, ys = jnp.asarray([240.0, 480.0, 26.0], F64) / 100, jnp.asarray([6370.0, 8697.0, 2200.0], F64) / 1000
    theta = jnp.asarray([0.5, 1.2], F64)
    g = jax.grad(lambda th: L.mse(th[1] * xs + th[0], ys, half=True))(theta)
    r = np.asarray(theta[1] * xs + theta[0] - ys)
    np.testing.assert_allclose(g, [r.mean(), (r * np.asarray(xs)).mean()], rtol=1e-12)
    # seed 000's competitive-learning step: d = w − x, Δw = η d, w' = w − Δw
    w, ex = np.array([3.0, 2.0, 2.0]), np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(w - 0.1 * (w - ex), [2.8, 2.0, 2.1], rtol=1e-15)


def test_costume_gradient_descent_in_raw_units_needs_a_step_below_2_over_L():
    # Seed 000 runs Θ ← Θ − α ∇Q on the costume data in dollars. The rule is right, but it is stable only for
    # α < 2/L, L the largest eigenvalue of Q's Hessian (1/N)[x 1]ᵀ[x 1]: about 2e-5 here, so α = 0.01 diverges.
    from jaxmath.datasets import costume_prices
    from jaxmath.models import linear_regression

    x, y = (np.asarray(a, np.float64) for a in costume_prices())
    a = np.c_[x, np.ones_like(x)]
    L = np.linalg.eigvalsh(a.T @ a / len(x))[-1]
    assert 2 / L < 1e-4
    theta = np.zeros(2)
    for _ in range(50):  # the notes' rule, written out
        theta = theta - 0.01 * a.T @ (a @ theta - y) / len(x)
    assert not np.all(np.isfinite(theta)) or np.abs(theta).max() > 1e30
    # linear_regression.fit standardises inside the descent and takes its step from the data: it converges.
    params, info = linear_regression.fit(x[:, None], y)
    ref = np.linalg.lstsq(a, y, rcond=None)[0]
    assert bool(info.converged)
    np.testing.assert_allclose([float(params["w"][0]), float(params["b"])], ref, rtol=1e-10)
