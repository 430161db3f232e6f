"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) as published, and its modern form, as pure init / apply.

Both networks read a 28 x 28 MNIST digit padded by 2 to 32 x 32 and run the same skeleton
(layout NHWC, kernels HWIO, shapes per example):

    input 32x32x1 -C1 5x5-> 28x28x6 -S2-> 14x14x6 -C3 5x5-> 10x10x16 -S4-> 5x5x16 -C5 5x5-> 1x1x120
                  -F6-> 84 -output-> 10

``variant="1998"``, as in the paper (section II.B):
  * inputs scaled so that the white background is -0.1 and black ink 1.175 (mean about 0, variance about 1);
  * every unit squashes its weighted sum with f(a) = A tanh(S a), A = 1.7159, S = 2/3;
  * S2 and S4 are trainable subsampling: the 2x2 window is summed, multiplied by one coefficient and shifted by
    one bias per map, then squashed: s = f(c · Σ_window x + b);
  * C3 connects each of its 16 maps to a subset of S2's 6 maps (``C3_TABLE``, the paper's Table I): a full
    5x5x6x16 kernel multiplied by a 0/1 mask, so C3 has 60 · 25 + 16 = 1,516 trainable parameters;
  * the output layer is 10 Euclidean RBF units with fixed ±1 codes (``RBF_CODES``, no trainable parameter):
    y_i = Σ_j (h_j - w_ij)², h = F6's 84 outputs. ``apply`` returns the logits -y_i.

Trainable parameters: C1 156 + S2 12 + C3 1,516 + S4 32 + C5 48,120 + F6 10,164 = 60,000, the paper's count.

Loss. The paper's MAP criterion is E = y_D + log(e^{-j} + Σ_i e^{-y_i}) (D the correct class, j > 0 a constant:
the "rubbish class"). Softmax cross-entropy of the logits -y is -log softmax(-y)_D = y_D + log Σ_i e^{-y_i}: the
paper's E without its e^{-j} term, i.e. its limit j → ∞ (equivalently, E is softmax cross-entropy with an 11th
"rubbish" logit fixed at -j). We train with that, the engine's one classifier loss. The e^{-j} term stops the
criterion pushing up the penalties of wrong classes that already exceed j; without it the wrong classes keep
being pushed away, which does no harm with fixed codes. The one other departure from the paper is the
initialisation (see ``init``).

``variant="modern"``: ReLU, 2x2 max pooling, an affine output layer (logits), softmax cross-entropy; C3 fully
connected. count_params = C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850 = 61,706.

Params are a dict of dicts of arrays ``{"c1": {"w", "b"}, ...}``; the 1998 network has ``"s2"``/``"s4"`` with
``"coef"`` and ``"b"`` (6,) / (16,), and no ``"out"`` (its RBF codes are constants).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as V
from jaxmath import conv as _conv
from jaxmath.models.model import Model, register_factory

VARIANTS = ("modern", "1998")

__all__ = [
    "make", "init", "apply", "layer_outputs", "LAYERS", "count_params", "VARIANTS", "C3_TABLE", "C3_MASK",
    "RBF_CODES", "split_sizes",
]

# Table I of the paper: the S2 maps each C3 map reads. Maps 0-5 read 3 contiguous maps, 6-11 four contiguous,
# 12-14 four non-contiguous, 15 all six (cyclically: map 4 reads 4, 5, 0). Breaking the symmetry forces
# different maps to learn different features and keeps the connection count down.
C3_TABLE = (
    *[tuple((j + k) % 6 for k in range(3)) for j in range(6)],
    *[tuple((j + k) % 6 for k in range(4)) for j in range(6)],
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)
C3_MASK = np.zeros((6, 16), np.int8)  # [input map, output map] = 1 where connected
for _j, _inputs in enumerate(C3_TABLE):
    C3_MASK[list(_inputs), _j] = 1

# The RBF codes: the paper drew stylised 7x12 bitmaps of the characters; these are our own 7-wide, 12-tall
# bitmaps of the digits 0-9, read row by row ('#' → +1, '.' → -1).
# As in the paper, similar shapes get similar codes: 6 and 8 differ in 7 of the 84 bits, most pairs in 15 or more
# (the loss only needs the codes distinct; F6 learns to reach them).
_DIGIT_BITMAPS = (
    ("..###..", ".#...#.", "#.....#", "#.....#", "#.....#", "#.....#",
     "#.....#", "#.....#", "#.....#", "#.....#", ".#...#.", "..###.."),
    ("...#...", "..##...", ".#.#...", "...#...", "...#...", "...#...",
     "...#...", "...#...", "...#...", "...#...", "...#...", ".#####."),
    (".#####.", "#.....#", "......#", "......#", ".....#.", "....#..",
     "...#...", "..#....", ".#.....", "#......", "#......", "#######"),
    ("#######", ".....#.", "....#..", "...#...", "..####.", "......#",
     "......#", "......#", "......#", "#.....#", "#.....#", ".#####."),
    ("....##.", "...#.#.", "..#..#.", ".#...#.", "#....#.", "#######",
     ".....#.", ".....#.", ".....#.", ".....#.", ".....#.", ".....#."),
    ("#######", "#......", "#......", "#......", "######.", "......#",
     "......#", "......#", "......#", "#.....#", "#.....#", ".#####."),
    ("..####.", ".#.....", "#......", "#......", "######.", "#.....#",
     "#.....#", "#.....#", "#.....#", "#.....#", "#.....#", ".#####."),
    ("#######", "......#", ".....#.", ".....#.", "....#..", "....#..",
     "...#...", "...#...", "..#....", "..#....", "..#....", "..#...."),
    (".#####.", "#.....#", "#.....#", "#.....#", ".#####.", "#.....#",
     "#.....#", "#.....#", "#.....#", "#.....#", "#.....#", ".#####."),
    (".#####.", "#.....#", "#.....#", "#.....#", "#.....#", ".######",
     "......#", "......#", "......#", ".....#.", "....#..", ".###..."),
)
RBF_CODES = np.array([[1 if ch == "#" else -1 for row in rows for ch in row] for rows in _DIGIT_BITMAPS], np.int8)

# The paper's squashing function f(a) = A tanh(S a): f(±1) = ±1, and ±1 is where f'' is largest, which is why
# the RBF codes are ±1 (F6 does not saturate to reach them).
_A, _S = 1.7159, 2.0 / 3.0
# Input scaling of the paper: white (0) → -0.1, black (1) → 1.175.
_INK, _BACKGROUND = 1.175, -0.1


def make(
    *,
    variant: str = "modern",
    dtype: Any = "float32",
    compute_dtype: Any = None,
    conv_method: str = "im2col",
    batch_split: int | str = "auto",
) -> Model:
    """LeNet-5 with its config: ``Model(init, apply, config)``; config ``{"name": "lenet5", "variant", ...}``.

    Args:
      variant: "modern" (ReLU, max pooling, affine logits) or "1998" (the published network).
      dtype: float dtype name of the params ("float32", "float64", "bfloat16").
      compute_dtype: dtype name the convolution and matmul inputs are cast to (e.g. "bfloat16"), or None.
      conv_method: the ``jaxmath.conv.conv2d`` method: "im2col" (default: one matmul per layer, also inside the
        training epoch's ``lax.scan``, where XLA's CPU convolution runs several times slower), "xla" or "direct".
      batch_split: how many independent parts a batch runs as (see ``apply``): "auto" or an int >= 1.

    Returns:
      ``Model`` whose ``apply(params, x)`` maps ``(n, 784)``, ``(n, 28, 28)`` or ``(n, 28, 28, 1)`` pixels in
      [0, 1] to ``(n, 10)`` logits.
    """
    V.check_choice(variant, VARIANTS, name="variant")
    dtype_name = V.float_dtype_name(dtype, name="dtype")
    compute_name = V.float_dtype_name(compute_dtype, name="compute_dtype", optional=True)
    V.check_choice(conv_method, _conv.METHODS, name="conv_method")
    _check_batch_split(batch_split)
    config = {"name": "lenet5", "variant": variant, "dtype": dtype_name, "compute_dtype": compute_name,
              "conv_method": conv_method, "batch_split": batch_split}
    options = {name: config[name] for name in _APPLY_OPTIONS}

    def model_init(key):
        return init(key, variant=variant, dtype=dtype_name)

    def model_apply(params, x):
        return apply(params, x, **options)

    def model_layer_outputs(params, x):
        return layer_outputs(params, x, **options)

    return Model(init=model_init, apply=model_apply, config=config, layer_outputs=model_layer_outputs)


def init(key: jax.Array, *, variant: str = "modern", dtype: Any = jnp.float32) -> dict:
    """Initial params of LeNet-5.

    "1998": weights ~ U(-√(3/F), √(3/F)) (variance 1/F, the rule of LeCun et al.'s "Efficient BackProp" (1998)
    for this squashing function) with F the unit's fan-in (25 for C1, 25 × connected maps for C3, 400 for C5,
    120 for F6); S2/S4 coefficients ~ U(-0.6, 0.6) (the paper's 2.4/F with F = 4); biases 0; C3's unconnected
    weights 0. The paper's own U(-2.4/F, 2.4/F) keeps every sum tiny (standard deviation 1.39/√F), so the
    squashing functions start in their linear range, where the
    network is close to a linear model; trained with Adam from there it stalled well short of the other start.
    "modern": He normal weights N(0, 2/F), biases 0.

    Args:
      key: PRNG key.
      variant: "modern" or "1998".
      dtype: float dtype of the params.

    Returns:
      dict of dicts: "c1" w (5, 5, 1, 6), "c3" w (5, 5, 6, 16), "c5" w (5, 5, 16, 120), "f6" w (120, 84), each
      with b; "modern" adds "out" w (84, 10), b (10,); "1998" adds "s2" / "s4" with "coef" and "b" of (6,) / (16,).
    """
    V.check_key(key)
    V.check_choice(variant, VARIANTS, name="variant")
    V.float_dtype_name(dtype, name="dtype")
    return _init(key, variant=variant, dtype=jnp.dtype(dtype))


_SHAPES = {"c1": (5, 5, 1, 6), "c3": (5, 5, 6, 16), "c5": (5, 5, 16, 120), "f6": (120, 84), "out": (84, 10)}


@partial(jax.jit, static_argnames=("variant", "dtype"))
def _init(key, *, variant, dtype):
    names = ("c1", "c3", "c5", "f6") + (("out",) if variant == "modern" else ("s2", "s4"))
    keys = dict(zip(names, jax.random.split(key, len(names))))
    params = {}
    for name in ("c1", "c3", "c5", "f6") + (("out",) if variant == "modern" else ()):
        shape = _SHAPES[name]
        if variant == "modern":
            scale = math.sqrt(2.0 / math.prod(shape[:-1]))
            w = jax.random.normal(keys[name], shape, dtype) * jnp.asarray(scale, dtype)
        else:
            fan_in = np.full(shape[-1], math.prod(shape[:-1]), np.int32)
            if name == "c3":
                fan_in = 25 * C3_MASK.sum(axis=0)
            # Bounds computed in float32 NumPy and cast to `dtype`: no float64 constant on devices without it.
            bound = jnp.asarray(np.sqrt(3.0 / fan_in.astype(np.float32)), dtype)
            w = jax.random.uniform(keys[name], shape, dtype, minval=-1.0, maxval=1.0) * bound
            if name == "c3":
                w = w * jnp.asarray(C3_MASK, dtype)
        params[name] = {"w": w, "b": jnp.zeros((shape[-1],), dtype)}
    if variant == "1998":
        for name, maps in (("s2", 6), ("s4", 16)):
            coef = jax.random.uniform(keys[name], (maps,), dtype, minval=-0.6, maxval=0.6)
            params[name] = {"coef": coef, "b": jnp.zeros((maps,), dtype)}
    return params


def count_params(params: dict) -> int:
    """Trainable parameters: every leaf, except C3's unconnected weights in the 1998 network (always 0).

    Returns 61,706 for "modern" and 60,000 for "1998".
    """
    total = sum(math.prod(jnp.shape(leaf)) for leaf in jax.tree_util.tree_leaves(params))
    if "s2" in params:
        total -= 25 * int((C3_MASK == 0).sum())
    return int(total)


def _check_params(params, variant):
    if not isinstance(params, dict):
        raise ValueError(f"params must be the dict from lenet5.init, got {type(params).__name__}")
    names = ("c1", "c3", "c5", "f6") + (("out",) if variant == "modern" else ())
    want = {"c1", "c3", "c5", "f6"} | ({"out"} if variant == "modern" else {"s2", "s4"})
    if set(params) != want:
        raise ValueError(
            f"params for variant={variant!r} must have the layers {sorted(want)}, got {sorted(params)}"
        )
    for name in names:
        shape = tuple(jnp.shape(params[name]["w"]))
        if shape != _SHAPES[name]:
            raise ValueError(f"params[{name!r}]['w'] must have shape {_SHAPES[name]}, got {shape}")


def _as_images(x):
    """(n, 784), (n, 28, 28) or (n, 28, 28, 1) → (n, 28, 28, 1), refusing anything else at trace time."""
    shape = tuple(jnp.shape(x))
    if len(shape) == 2 and shape[1] == 784:
        return x.reshape(shape[0], 28, 28, 1)
    if len(shape) == 3 and shape[1:] == (28, 28):
        return x[..., None]
    if len(shape) == 4 and shape[1:] == (28, 28, 1):
        return x
    raise ValueError(f"x must have shape (n, 784), (n, 28, 28) or (n, 28, 28, 1), got x.shape={shape}")


# The keyword options of apply and layer_outputs: static under jit, and the part of make's config they take.
_APPLY_OPTIONS = ("variant", "compute_dtype", "conv_method", "batch_split")


def _squash(a):
    return jnp.asarray(_A, a.dtype) * jnp.tanh(jnp.asarray(_S, a.dtype) * a)


@partial(jax.jit, static_argnames=_APPLY_OPTIONS)
def apply(
    params: dict,
    x: jax.Array,
    *,
    variant: str = "modern",
    compute_dtype: Any = None,
    conv_method: str = "im2col",
    batch_split: int | str = "auto",
) -> jax.Array:
    """Forward pass of LeNet-5: logits of the 10 digit classes.

    modern:  h = relu(conv(x, W) + b) then 2x2 max pooling, for C1 and C3; relu for C5 and F6; logits h W + b.
    1998:    h = f(conv(x, W) + b) for C1, C3 (W ⊙ mask), C5; s = f(c Σ_2x2 h + b) for S2, S4; h = f(h W + b)
             for F6; logits_i = -Σ_j (h_j - code_ij)²   (f(a) = 1.7159 tanh(2a/3)).

    Convolutions are ``jaxmath.conv.conv2d`` (VALID, stride 1, ``conv_method``), pooling ``jaxmath.conv.max_pool`` /
    ``avg_pool`` (window 2, stride 2). Jitted; ``variant`` and ``compute_dtype`` are static and checked, with
    the shapes, while tracing.

    Args:
      params: dict from ``init`` with the same ``variant``.
      x: ``(n, 784)``, ``(n, 28, 28)`` or ``(n, 28, 28, 1)`` float pixels in [0, 1] (ink = 1); cast to the
        params' dtype.
      variant: "modern" or "1998".
      compute_dtype: e.g. ``jnp.bfloat16``: convolution and matmul inputs are cast to it, the results back to
        the params' dtype; None: no cast.
      conv_method: "im2col", "xla" or "direct" (``jaxmath.conv.conv2d``'s methods; equal to rounding).
      batch_split: the batch runs as this many independent parts, sizes as equal as possible
        (``split_sizes``), their outputs concatenated. Every example's output is the same (LeNet has no
        batch statistics); only the order of the float sums in a gradient over the batch changes. XLA:CPU
        runs independent parts of one program concurrently on its executor threads, and a part's patch
        matrices stay in cache, so on a CPU a training step runs faster in parts (LeNet-5 at batch 128:
        ``benchmarks/RESULTS.md``). "auto": on a single CPU device, n // 64 parts, at most 8; on GPU, TPU or
        several devices, 1 (``split_sizes``). An int k: min(k, n) parts.

    Returns:
      ``(n, 10)`` logits in the params' dtype (for "1998": minus the RBF squared distances).
    """
    return _layers(params, x, variant=variant, compute_dtype=compute_dtype, conv_method=conv_method,
                   batch_split=batch_split)["out"]


@partial(jax.jit, static_argnames=_APPLY_OPTIONS)
def layer_outputs(
    params: dict,
    x: jax.Array,
    *,
    variant: str = "modern",
    compute_dtype: Any = None,
    conv_method: str = "im2col",
    batch_split: int | str = "auto",
) -> dict:
    """Every layer's output of the forward pass, by the paper's layer names (for feature maps and DeepDream).

    Same arguments as ``apply``. Returns a dict of arrays in the params' dtype (``LAYERS`` lists the names in
    forward order; jit returns dicts with sorted keys):
    ``"c1"`` (n, 28, 28, 6), ``"s2"`` (n, 14, 14, 6), ``"c3"`` (n, 10, 10, 16), ``"s4"`` (n, 5, 5, 16),
    ``"c5"`` (n, 120), ``"f6"`` (n, 84), ``"out"`` (n, 10) (= ``apply``). Convolution outputs are after the
    activation and before the pooling.
    """
    return _layers(params, x, variant=variant, compute_dtype=compute_dtype, conv_method=conv_method,
                   batch_split=batch_split)


LAYERS = ("c1", "s2", "c3", "s4", "c5", "f6", "out")


# "auto" splitting: parts of at least this many examples, at most this many parts. Smaller parts ran a training
# step a little faster still, but every part is one more copy of the network in the compiled program, and the
# first epoch's compile grows with them; these bounds keep it within the compile budget (benchmarks/RESULTS.md).
SPLIT_MIN_EXAMPLES = 64
SPLIT_MAX_PARTS = 8


def _check_batch_split(batch_split) -> None:
    """``batch_split`` must be "auto" or an int >= 1."""
    if batch_split == "auto" and isinstance(batch_split, str):
        return
    message = f'batch_split must be "auto" or an integer >= 1, got batch_split={batch_split!r}'
    if isinstance(batch_split, bool) or not isinstance(batch_split, (int, np.integer, str)):
        raise TypeError(message)
    if isinstance(batch_split, str) or batch_split < 1:
        raise ValueError(message)


def split_sizes(n: int, batch_split: int | str = "auto") -> tuple[int, ...]:
    """Sizes of the independent parts ``apply`` runs a batch of ``n`` examples as.

    Args:
      n: examples in the batch.
      batch_split: an int k >= 1: min(k, n) parts. "auto": n // ``SPLIT_MIN_EXAMPLES`` parts, between 1 and
        ``SPLIT_MAX_PARTS``, when the computation runs on one CPU device (``jax.default_backend()`` is "cpu"
        and ``jax.device_count()`` is 1); otherwise 1. GPU and TPU want one large kernel per layer, and with
        several devices the batch is sharded over them (``jaxmath.devices.parallel``), where parts cut
        across the shards would have to be gathered.

    Returns:
      tuple of part sizes summing to n, the first n mod parts of them one larger than the rest.
    """
    _check_batch_split(batch_split)
    if batch_split == "auto":
        one_cpu = jax.default_backend() == "cpu" and jax.device_count() == 1
        parts = min(max(n // SPLIT_MIN_EXAMPLES, 1), SPLIT_MAX_PARTS) if one_cpu else 1
    else:
        parts = min(int(batch_split), max(n, 1))
    base, extra = divmod(n, parts)
    return tuple(base + 1 if i < extra else base for i in range(parts))


def _layers(params, x, *, variant, compute_dtype, conv_method, batch_split):
    V.check_choice(variant, VARIANTS, name="variant")
    V.check_choice(conv_method, _conv.METHODS, name="conv_method")
    _check_params(params, variant)
    images = _as_images(x)
    sizes = split_sizes(images.shape[0], batch_split)
    if len(sizes) == 1:
        return _network(params, images, variant=variant, compute_dtype=compute_dtype, conv_method=conv_method)
    # Independent copies of the network, one per part: nothing in one part's graph waits for another's.
    starts = np.cumsum((0,) + sizes[:-1])
    parts = [_network(params, images[start:start + size], variant=variant, compute_dtype=compute_dtype,
                      conv_method=conv_method) for start, size in zip(starts, sizes)]
    return {name: jnp.concatenate([part[name] for part in parts]) for name in parts[0]}


def _network(params, images, *, variant, compute_dtype, conv_method):
    dtype = params["c1"]["w"].dtype
    h = images.astype(dtype)
    h = jnp.pad(h, ((0, 0), (2, 2), (2, 2), (0, 0)))  # 28x28 → 32x32, white border
    cast = (lambda a: a) if compute_dtype is None else (lambda a: a.astype(compute_dtype))

    def conv(a, w, b):
        return _conv.conv2d(cast(a), cast(w), cast(b), padding="VALID", method=conv_method).astype(dtype)

    def dense(a, w, b):
        return jnp.matmul(cast(a), cast(w)).astype(dtype) + b

    out = {}
    if variant == "modern":
        relu = jax.nn.relu
        out["c1"] = relu(conv(h, params["c1"]["w"], params["c1"]["b"]))
        out["s2"] = _conv.max_pool(out["c1"], window=2)
        out["c3"] = relu(conv(out["s2"], params["c3"]["w"], params["c3"]["b"]))
        out["s4"] = _conv.max_pool(out["c3"], window=2)
        out["c5"] = relu(conv(out["s4"], params["c5"]["w"], params["c5"]["b"])).reshape(h.shape[0], 120)
        out["f6"] = relu(dense(out["c5"], params["f6"]["w"], params["f6"]["b"]))
        out["out"] = dense(out["f6"], params["out"]["w"], params["out"]["b"])
        return out

    def subsample(a, p):
        window_sum = _conv.avg_pool(a, window=2) * jnp.asarray(4, dtype)
        return _squash(window_sum * p["coef"] + p["b"])

    h = h * jnp.asarray(_INK - _BACKGROUND, dtype) + jnp.asarray(_BACKGROUND, dtype)
    out["c1"] = _squash(conv(h, params["c1"]["w"], params["c1"]["b"]))
    out["s2"] = subsample(out["c1"], params["s2"])
    c3_w = params["c3"]["w"] * jnp.asarray(C3_MASK, dtype)
    out["c3"] = _squash(conv(out["s2"], c3_w, params["c3"]["b"]))
    out["s4"] = subsample(out["c3"], params["s4"])
    out["c5"] = _squash(conv(out["s4"], params["c5"]["w"], params["c5"]["b"])).reshape(h.shape[0], 120)
    out["f6"] = _squash(dense(out["c5"], params["f6"]["w"], params["f6"]["b"]))
    codes = jnp.asarray(RBF_CODES, dtype)
    out["out"] = -jnp.sum(jnp.square(out["f6"][:, None, :] - codes[None, :, :]), axis=-1)
    return out


def _make_from_config(**config) -> Model:
    return make(**config)


register_factory("lenet5", _make_from_config)
