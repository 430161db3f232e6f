"""Known peak FLOP/s and memory bandwidth of GPUs and TPUs, per JAX device.

Vendor datasheet numbers, dense (no structured sparsity), for one JAX device:
one GPU; one TPU chip for v4 and later (a "megacore" chip is one JAX device);
one TensorCore for TPU v2/v3 (JAX shows each chip as two devices, so the
chip's numbers are halved). On CPU there is no table: the suite measures a
large matmul in the same run and uses that as the peak.

Which peak applies depends on the matmul dtype and precision:

* GPU, float32 inputs: ``default``/``high`` allow TensorFloat-32 on Ampere and
  later (the ``tf32`` column); ``highest`` is true fp32 (the ``fp32`` column).
  GPUs without TF32 (V100, T4) use ``fp32`` for all three.
* TPU, float32 inputs: the MXU multiplies bfloat16; ``default`` is one bf16 pass
  (the bf16 peak), ``high`` three passes (bf16_3x, peak / 3), ``highest`` six
  passes (about fp32, peak / 6).
* bfloat16 / float16 inputs: the ``bf16`` column (GPUs without bf16 tensor cores
  use their fp16 tensor-core peak).
"""

from __future__ import annotations

from typing import NamedTuple

TERA = 1e12


class Peak(NamedTuple):
    """Peak rates of one JAX device. FLOP/s entries may be None where the chip has no such unit."""

    name: str
    fp32: float | None
    tf32: float | None
    bf16: float | None
    bandwidth: float  # bytes/s of device memory (HBM/GDDR)


# Order matters: the first entry whose every key is in the device kind wins, so the
# specific variants ("h100 pcie", "v5 lite") come before the general ones.
_TABLE: tuple[tuple[tuple[str, ...], Peak], ...] = (
    (("h200",), Peak("NVIDIA H200", 67 * TERA, 494.7 * TERA, 989.4 * TERA, 4.8 * TERA)),
    (("gh200",), Peak("NVIDIA GH200", 67 * TERA, 494.7 * TERA, 989.4 * TERA, 4.0 * TERA)),
    (("h100", "pcie"), Peak("NVIDIA H100 PCIe", 51 * TERA, 378 * TERA, 756 * TERA, 2.0 * TERA)),
    (("h100", "nvl"), Peak("NVIDIA H100 NVL", 60 * TERA, 417.5 * TERA, 835 * TERA, 3.9 * TERA)),
    (("h100",), Peak("NVIDIA H100 SXM", 67 * TERA, 494.7 * TERA, 989.4 * TERA, 3.35 * TERA)),
    (("a100", "80gb"), Peak("NVIDIA A100 80GB", 19.5 * TERA, 156 * TERA, 312 * TERA, 2.039 * TERA)),
    (("a100",), Peak("NVIDIA A100 40GB", 19.5 * TERA, 156 * TERA, 312 * TERA, 1.555 * TERA)),
    (("l40s",), Peak("NVIDIA L40S", 91.6 * TERA, 183 * TERA, 362 * TERA, 0.864 * TERA)),
    (("l4",), Peak("NVIDIA L4", 30.3 * TERA, 60 * TERA, 121 * TERA, 0.3 * TERA)),
    (("a10g",), Peak("NVIDIA A10G", 31.2 * TERA, 62.5 * TERA, 125 * TERA, 0.6 * TERA)),
    (("v100",), Peak("NVIDIA V100", 15.7 * TERA, None, 125 * TERA, 0.9 * TERA)),  # bf16 column: fp16 tensor cores
    (("t4",), Peak("NVIDIA T4", 8.1 * TERA, None, 65 * TERA, 0.32 * TERA)),  # bf16 column: fp16 tensor cores
    (("tpu", "v6"), Peak("TPU v6e", None, None, 918 * TERA, 1.64 * TERA)),
    (("tpu", "v5", "lite"), Peak("TPU v5e", None, None, 197 * TERA, 0.819 * TERA)),
    (("tpu", "v5e"), Peak("TPU v5e", None, None, 197 * TERA, 0.819 * TERA)),
    (("tpu", "v5"), Peak("TPU v5p", None, None, 459 * TERA, 2.765 * TERA)),
    (("tpu", "v4"), Peak("TPU v4", None, None, 275 * TERA, 1.2 * TERA)),
    # v2/v3: per TensorCore (two JAX devices per chip).
    (("tpu", "v3"), Peak("TPU v3 (per core)", None, None, 61.5 * TERA, 0.45 * TERA)),
    (("tpu", "v2"), Peak("TPU v2 (per core)", None, None, 22.5 * TERA, 0.35 * TERA)),
)

PRECISIONS = ("default", "high", "highest")
_TPU_PASSES = {"default": 1, "high": 3, "highest": 6}


def lookup(device_kind: str) -> Peak | None:
    """The ``Peak`` of a device kind string (``jax.devices()[0].device_kind``), or None if unknown.

    >>> lookup("NVIDIA H100 80GB HBM3").name
    'NVIDIA H100 SXM'
    >>> lookup("TPU v5 lite").name
    'TPU v5e'
    """
    kind = device_kind.lower()
    for keys, peak in _TABLE:
        if all(key in kind for key in keys):
            return peak
    return None


def peak_flops(device_kind: str, *, dtype: str = "float32", precision: str | None = "default") -> float | None:
    """Peak matmul FLOP/s of a device for a dtype and matmul precision, None when unknown (e.g. CPU).

    Args:
      device_kind: the device's ``device_kind`` string.
      dtype: the matmul input dtype name: "float32", "bfloat16" or "float16".
      precision: "default", "high" or "highest" (None means "default").
    """
    precision = precision or "default"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got precision={precision!r}")
    peak = lookup(device_kind)
    if peak is None:
        return None
    half = dtype in ("bfloat16", "float16")
    if peak.name.startswith("TPU"):
        return peak.bf16 if half else peak.bf16 / _TPU_PASSES[precision]
    if half:
        return peak.bf16
    if precision == "highest" or peak.tf32 is None:
        return peak.fp32
    return peak.tf32


def peak_bandwidth(device_kind: str) -> float | None:
    """Peak device-memory bandwidth in bytes/s, None when unknown (e.g. CPU)."""
    peak = lookup(device_kind)
    return None if peak is None else peak.bandwidth
