"""The multilayer perceptron of seeds 001/002: init, forward pass, and backprop by hand.

The network of the notes is a chain of dense layers

    z_l = a_{l-1} W_l + b_l,        a_l = σ(z_l),        a_0 = x

with the last layer's activation chosen by ``output`` (identity logits, sigmoid, or
softmax). Params are a list of ``(W, b)`` pairs, ``W`` of shape ``(fan_in, fan_out)``
and ``b`` of shape ``(fan_out,)``, so a batch ``x`` of shape ``(n, fan_in)`` goes
through ``x @ W + b`` (the notes' ``W x + b`` written for row vectors).

``backprop`` is the notes' delta rule written by hand:

    δ_L = ∂C/∂a_L ⊙ σ_out'(z_L)                       (output delta)
    δ_l = (δ_{l+1} W_{l+1}ᵀ) ⊙ σ'(z_l)                 (hidden layers)
    ∂C/∂W_l = a_{l-1}ᵀ δ_l,   ∂C/∂b_l = Σ_batch δ_l

It equals ``jax.grad`` of the same loss (tests check 1e-10 in float64).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jaxmath import _validation as V
from jaxmath import activations as _activations
from jaxmath import losses as _losses
from jaxmath.models.model import Model, register_factory

Params = list  # list[tuple[jax.Array, jax.Array]]

SCHEMES = ("glorot", "he", "normal")
ACTIVATIONS = _activations.NAMES
OUTPUTS = ("identity", "sigmoid", "softmax")
PRECISIONS = ("default", "high", "highest")  # the names jaxmath.devices.precision knows
LOSSES = ("sum_of_squares", "mse", "softmax_cross_entropy")

__all__ = ["make", "init", "apply", "layer_outputs", "count_params", "backprop", "SCHEMES", "ACTIVATIONS", "OUTPUTS", "LOSSES"]


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least two layer widths (input and output), got sizes={sizes!r}")
    for i, n in enumerate(sizes):
        V.check_integer(n, name=f"sizes[{i}]", minimum=1)
    return sizes


def make(
    sizes: Sequence[int],
    *,
    activation: str = "sigmoid",
    output: str = "identity",
    scheme: str | None = None,
    dtype: Any = "float32",
    precision: Any = None,
    compute_dtype: Any = None,
) -> Model:
    """The MLP with its config: ``Model(init, apply, config)``, so no caller re-supplies the options.

    ``model.init(key)`` is ``init(key, sizes, scheme=scheme, dtype=dtype)`` and ``model.apply(params, x)`` is
    ``apply(params, x, activation=activation, output=output, precision=precision, compute_dtype=compute_dtype)``.

    Args:
      sizes: layer widths ``(n_0, ..., n_L)``, e.g. ``(784, 16, 16, 10)``.
      activation: hidden activation, a name of ``jaxmath.activations.NAMES``.
      output: "identity" (logits), "sigmoid" or "softmax".
      scheme: "glorot", "he" or "normal"; None picks "he" for relu-like activations, else "glorot".
      dtype: float dtype name of the params ("float32", "float64", "bfloat16").
      precision: matmul precision passed to ``apply`` (None, "default", "high" or "highest").
      compute_dtype: dtype name the matmul inputs are cast to (e.g. "bfloat16"), or None.

    Returns:
      ``Model`` whose ``config`` is ``{"name": "mlp", "sizes": [...], "activation": ..., "output": ...,
      "scheme": ..., "dtype": ..., "precision": ..., "compute_dtype": ...}`` (JSON-serialisable).
    """
    sizes = _check_sizes(sizes)
    V.check_choice(activation, ACTIVATIONS, name="activation")
    V.check_choice(output, OUTPUTS, name="output")
    if scheme is None:
        scheme = "he" if activation in ("relu", "leaky_relu") else "glorot"
    V.check_choice(scheme, SCHEMES, name="scheme")
    dtype_name = V.float_dtype_name(dtype, name="dtype")
    compute_name = V.float_dtype_name(compute_dtype, name="compute_dtype", optional=True)
    if precision is not None:
        V.check_choice(precision, PRECISIONS, name="precision")
    config = {
        "name": "mlp", "sizes": [int(n) for n in sizes], "activation": activation, "output": output, "scheme": scheme,
        "dtype": dtype_name, "precision": precision, "compute_dtype": compute_name,
    }

    def model_init(key):
        return init(key, sizes, scheme=scheme, dtype=dtype_name)

    def model_apply(params, x):
        return apply(params, x, activation=activation, output=output, precision=precision, compute_dtype=compute_name)

    def model_layer_outputs(params, x):
        return layer_outputs(
            params, x, activation=activation, output=output, precision=precision, compute_dtype=compute_name
        )

    return Model(init=model_init, apply=model_apply, config=config, layer_outputs=model_layer_outputs)


def init(key: jax.Array, sizes: Sequence[int], *, scheme: str = "glorot", dtype: Any = jnp.float32) -> Params:
    """Random weights and zero biases for a dense network with layer widths ``sizes``.

    Schemes (fan_in = n_{l-1}, fan_out = n_l):

        glorot:  W ~ U(-r, r),  r = √(6 / (fan_in + fan_out)),   b = 0
        he:      W ~ N(0, 2 / fan_in),                           b = 0
        normal:  W ~ N(0, 1),   b ~ N(0, 1)   (Nielsen's network.py, the notes' "random weights and biases")

    Args:
      key: PRNG key (``jax.random.key(0)``; an int is refused with a message saying so).
      sizes: layer widths ``(n_0, n_1, ..., n_L)``, e.g. ``(784, 16, 16, 10)``; at least two, each >= 1.
      scheme: "glorot", "he" or "normal".
      dtype: float dtype of the params (float32 by default; float64 needs ``jax_enable_x64``).

    Returns:
      list of L pairs ``(W, b)``: ``W`` is ``(n_{l-1}, n_l)``, ``b`` is ``(n_l,)``, both ``dtype``.
    """
    V.check_key(key)
    sizes = _check_sizes(sizes)
    V.check_choice(scheme, SCHEMES, name="scheme")
    V.float_dtype_name(dtype, name="dtype")
    return _init(key, sizes=sizes, scheme=scheme, dtype=jnp.dtype(dtype))


@partial(jax.jit, static_argnames=("sizes", "scheme", "dtype"))
def _init(key, *, sizes, scheme, dtype):
    # One compiled program per (sizes, scheme, dtype) instead of a dispatch per random op.
    keys = jax.random.split(key, len(sizes) - 1)
    params = []
    for k, fan_in, fan_out in zip(keys, sizes[:-1], sizes[1:]):
        kw, kb = jax.random.split(k)
        if scheme == "glorot":
            r = math.sqrt(6.0 / (fan_in + fan_out))
            w = jax.random.uniform(kw, (fan_in, fan_out), dtype, minval=-r, maxval=r)
            b = jnp.zeros((fan_out,), dtype)
        elif scheme == "he":
            w = jax.random.normal(kw, (fan_in, fan_out), dtype) * jnp.asarray(math.sqrt(2.0 / fan_in), dtype)
            b = jnp.zeros((fan_out,), dtype)
        else:
            w = jax.random.normal(kw, (fan_in, fan_out), dtype)
            b = jax.random.normal(kb, (fan_out,), dtype)
        params.append((w, b))
    return params


def count_params(params: Params) -> int:
    """Number of weights and biases: Σ_l (n_{l-1} n_l + n_l); (784, 16, 16, 10) gives 13002."""
    return int(sum(math.prod(jnp.shape(leaf)) for leaf in jax.tree_util.tree_leaves(params)))


def _check_params(params: Params) -> None:
    if not isinstance(params, (list, tuple)) or len(params) == 0:
        raise ValueError(f"params must be a non-empty list of (W, b) pairs, got {type(params).__name__}")
    prev = None
    for l, layer in enumerate(params):
        if not isinstance(layer, (list, tuple)) or len(layer) != 2:
            raise ValueError(f"params[{l}] must be a (W, b) pair, got {type(layer).__name__}")
        w, b = layer
        V.check_ndim(w, 2, name=f"params[{l}][0] (W)")
        V.check_ndim(b, 1, name=f"params[{l}][1] (b)")
        if jnp.shape(b)[0] != jnp.shape(w)[1]:
            raise ValueError(
                f"params[{l}]: b must have W.shape[1]={jnp.shape(w)[1]} entries, got b.shape={jnp.shape(b)}"
            )
        if prev is not None and jnp.shape(w)[0] != prev:
            raise ValueError(
                f"params[{l}][0] (W) must have {prev} rows (the previous layer's width), got W.shape={jnp.shape(w)}"
            )
        prev = jnp.shape(w)[1]


def _check_input(params: Params, x: Any) -> None:
    fan_in = jnp.shape(params[0][0])[0]
    if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != fan_in:
        raise ValueError(f"x must have {fan_in} features on its last axis (W_1.shape[0]), got x.shape={jnp.shape(x)}")


def _output_fn(output: str):
    if output == "softmax":
        return _activations.softmax
    return _activations.get(output)[0]


@partial(jax.jit, static_argnames=("activation", "output", "precision", "compute_dtype"))
def apply(
    params: Params,
    x: jax.Array,
    *,
    activation: str = "sigmoid",
    output: str = "identity",
    precision: Any = None,
    compute_dtype: Any = None,
) -> jax.Array:
    """Forward pass a_L of the MLP, one matrix product per layer.

        a_0 = x,   a_l = σ(a_{l-1} W_l + b_l) for hidden layers,   a_L = σ_out(a_{L-1} W_L + b_L)

    σ ↔ ``activation``, σ_out ↔ ``output``, (W_l, b_l) ↔ ``params[l-1]``. Jitted; the options are static and
    checked while tracing (so bad shapes or names raise before any compiled work, under an outer jit too).
    Prefer ``make(sizes, activation=..., output=...)``, whose ``model.apply(params, x)`` carries the options.

    Args:
      params: list of ``(W (fan_in, fan_out), b (fan_out,))`` from ``init``.
      x: ``(..., n_0)`` float array (one example or a batch); integer inputs are cast to the params' dtype
        (scale them first, e.g. ``x / 255``).
      activation: hidden-layer activation, a name of ``jaxmath.activations.NAMES``.
      output: last-layer activation: "identity" (logits), "sigmoid" or "softmax".
      precision: passed to every ``jnp.matmul`` (None = JAX's default; "highest" for full float32 on TPU).
      compute_dtype: e.g. ``jnp.bfloat16``: the matmul inputs are cast to it, accumulation and the
        activations stay in the params' dtype; params are not changed. None: no cast.

    Returns:
      ``(..., n_L)`` array in the params' dtype.
    """
    return _layers(
        params, x, activation=activation, output=output, precision=precision, compute_dtype=compute_dtype
    )[f"layer_{len(params)}"]


@partial(jax.jit, static_argnames=("activation", "output", "precision", "compute_dtype"))
def layer_outputs(
    params: Params,
    x: jax.Array,
    *,
    activation: str = "sigmoid",
    output: str = "identity",
    precision: Any = None,
    compute_dtype: Any = None,
) -> dict:
    """Every layer's activation a_l, l = 1..L, as a dict ``{"layer_1": a_1, ..., "layer_L": a_L}``.

    Same arguments as ``apply``; ``"layer_L"`` is ``apply``'s output, ``"layer_l"`` has shape ``(..., n_l)``.
    """
    return _layers(params, x, activation=activation, output=output, precision=precision, compute_dtype=compute_dtype)


def _layers(params, x, *, activation, output, precision, compute_dtype):
    _check_params(params)
    _check_input(params, x)
    V.check_choice(activation, ACTIVATIONS, name="activation")
    V.check_choice(output, OUTPUTS, name="output")
    sigma = _activations.get(activation)[0]
    out_fn = _output_fn(output)
    dtype = params[0][0].dtype
    a = x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(dtype)
    last = len(params) - 1
    outputs = {}
    for l, (w, b) in enumerate(params):
        if compute_dtype is not None:
            # Low-precision inputs, accumulation and everything else in the params' dtype.
            z = jnp.matmul(
                a.astype(compute_dtype), w.astype(compute_dtype), precision=precision, preferred_element_type=dtype
            ) + b
        else:
            z = jnp.matmul(a, w, precision=precision) + b
        a = out_fn(z) if l == last else sigma(z)
        outputs[f"layer_{l + 1}"] = a
    return outputs


def _loss_gradient(loss: str, predictions, targets):
    if loss == "mse":
        return _losses.mse_gradient(predictions, targets)
    return getattr(_losses, f"{loss}_gradient")(predictions, targets)


@partial(jax.jit, static_argnames=("activation", "output", "loss", "precision"))
def backprop(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    activation: str = "sigmoid",
    output: str = "identity",
    loss: str = "sum_of_squares",
    precision: Any = None,
) -> Params:
    """Gradients ∂C/∂W_l, ∂C/∂b_l of a batch loss by the notes' delta rule, written by hand.

        δ_L = ∂C/∂a_L ⊙ σ_out'(z_L)        (for softmax: δ_L = J_softmax(z_L)ᵀ ∂C/∂a_L;
                                              for softmax_cross_entropy with logits: δ_L = ∂C/∂z_L)
        δ_l = (δ_{l+1} W_{l+1}ᵀ) ⊙ σ'(z_l)
        ∂C/∂W_l = a_{l-1}ᵀ δ_l,    ∂C/∂b_l = Σ_n δ_l

    C ↔ ``loss`` with reduction "mean" (``jaxmath.losses``: mean over examples), σ ↔ ``activation``,
    σ_out ↔ ``output``. ∂C/∂a_L comes from ``jaxmath.losses.<loss>_gradient`` and σ' from
    ``jaxmath.activations.get(activation)``.

    Jitted; the options are static and checked while tracing. Labels are not range-checked here (a value
    check: host entry points such as ``training.fit`` do it).

    Args:
      params: list of ``(W (fan_in, fan_out), b (fan_out,))``.
      x: ``(n, n_0)`` float batch.
      y: targets: ``(n, n_L)`` for "sum_of_squares" / "mse"; integer labels ``(n,)`` or one-hot ``(n, n_L)``
        for "softmax_cross_entropy" (which takes the network's logits, so ``output`` must be "identity").
      activation, output: as in ``apply``.
      loss: "sum_of_squares" (the notes' Σ (a - expected)²), "mse" or "softmax_cross_entropy".
      precision: passed to every matmul.

    Returns:
      list of ``(dW, db)`` pairs with the shapes and dtypes of ``params``.
    """
    _check_params(params)
    V.check_ndim(x, 2, name="x")
    _check_input(params, x)
    V.check_choice(activation, ACTIVATIONS, name="activation")
    V.check_choice(output, OUTPUTS, name="output")
    V.check_choice(loss, LOSSES, name="loss")
    if loss == "softmax_cross_entropy" and output != "identity":
        raise ValueError(
            f'loss="softmax_cross_entropy" takes logits, so output must be "identity", got output={output!r}'
        )
    n_out = jnp.shape(params[-1][0])[1]
    if loss == "softmax_cross_entropy" and jnp.ndim(y) == 1:
        V.check_same_length(x, y, names=("x", "y"))
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise TypeError(f"y must be integer labels (n,) or one-hot targets (n, {n_out}), got y.dtype={y.dtype}")
    else:
        want = (jnp.shape(x)[0], n_out)
        if tuple(jnp.shape(y)) != want:
            raise ValueError(f"y must have shape {want} (examples, outputs), got y.shape={tuple(jnp.shape(y))}")
    sigma, sigma_prime = _activations.get(activation)
    out_fn = _output_fn(output)
    last = len(params) - 1
    # Forward pass, storing every a_{l-1} and z_l the backward pass needs.
    inputs, zs = [], []
    a = x
    for l, (w, b) in enumerate(params):
        inputs.append(a)
        z = jnp.matmul(a, w, precision=precision) + b
        zs.append(z)
        a = out_fn(z) if l == last else sigma(z)
    # Output delta δ_L = ∂C/∂z_L.
    dC_da = _loss_gradient(loss, a, y)
    z_out = zs[-1]
    if output == "identity":
        delta = dC_da
    elif output == "sigmoid":
        delta = dC_da * _activations.sigmoid_derivative(z_out)
    else:  # softmax: δ_j = Σ_i ∂C/∂a_i ∂a_i/∂z_j, the Jacobian is symmetric
        delta = jnp.einsum("ni,nij->nj", dC_da, _activations.softmax_jacobian(z_out), precision=precision)
    grads = [None] * len(params)
    for l in range(last, -1, -1):
        grads[l] = (jnp.matmul(inputs[l].T, delta, precision=precision), jnp.sum(delta, axis=0))
        if l > 0:
            delta = jnp.matmul(delta, params[l][0].T, precision=precision) * sigma_prime(zs[l - 1])
    return grads


def _make_from_config(**config) -> Model:
    return make(config.pop("sizes"), **config)


register_factory("mlp", _make_from_config)
