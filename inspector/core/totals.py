"""Model totals from per-tensor previews (DESIGN §4): sizes, ratios, global SQNR, worst tensors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from inspector.core.metrics import gzip_estimate, sqnr_db

if TYPE_CHECKING:
    from inspector.core.preview import TensorPreview

__all__ = ["WORST_COUNT", "summarize"]

WORST_COUNT = 5


def summarize(
    tensors: Sequence[TensorPreview],
    overhead: bytes = b"",
    overhead_gzip: int | None = None,
    gzip_exact: int | None = None,
) -> dict[str, Any]:
    """Model totals from per-tensor previews; optimizer state is left out.

    `overhead` is the container's own bytes (model.json, headers) that the export also writes;
    the gzip ratio is the TF.js example's: total bytes ÷ gzipped bytes of everything written.
    `gzip_exact` is that gzipped size measured on the whole archive (`exact_gzip`); without it
    the size is the sum of the per-tensor estimates, and `gzip_uncertainty` is its relative
    1-sigma band (the tensors' sampling errors, independent, added in quadrature).
    `entropy_bits_per_weight` and `huffman_bytes` are the entropy-coding bound and a real
    Huffman coding of the stored codes (core/entropy.py).
    """
    weights = [t for t in tensors if not t.optimizer]
    params = sum(math.prod(t.shape) for t in weights)
    original = sum(t.original_bytes for t in weights)
    quantized = sum(t.quantized_bytes for t in weights) + len(overhead)
    if overhead_gzip is None:
        overhead_gzip = gzip_estimate(memoryview(overhead))[0] if overhead else 0
    gz = sum(t.gzip_bytes for t in weights) + overhead_gzip
    band = math.sqrt(sum((t.gzip_uncertainty * t.gzip_bytes) ** 2 for t in weights))
    uncertainty = band / gz if gz else 0.0
    if gzip_exact is not None:
        gz, uncertainty = gzip_exact, 0.0
    signal = sum(t.signal_energy for t in weights)
    noise = sum(t.mse * math.prod(t.shape) for t in weights if t.skipped is None)
    ranked = sorted((t for t in weights if t.skipped is None), key=lambda t: t.sqnr_db)
    return {
        "parameters": params,
        "tensors": len(weights),
        "original_bytes": original,
        "quantized_bytes": quantized,
        "overhead_bytes": len(overhead),
        "compression_ratio": original / quantized if quantized else 1.0,
        "bits_per_weight": 8.0 * (quantized - len(overhead)) / params if params else 0.0,
        "mse": noise / params if params else 0.0,
        "sqnr_db": sqnr_db(signal, noise),
        "gzip_bytes": gz,
        "gzip_ratio": quantized / gz if gz else 1.0,
        "gzip_uncertainty": uncertainty,
        "gzip_exact": gzip_exact is not None,
        "nonfinite_tensors": [t.name for t in weights if t.nonfinite],
        "worst": [t.name for t in ranked[:WORST_COUNT]],
        **_entropy_totals(weights, params, len(overhead)),
    }


def _entropy_totals(weights: Sequence[TensorPreview], params: int, overhead: int) -> dict[str, Any]:
    """The model's entropy bound (bits per weight: tensors without a code alphabet count at
    their stored size) and the bytes with every tensor's codes Huffman-coded, plus overhead."""
    bits = sum(
        t.entropy_bits_per_weight * math.prod(t.shape)
        if t.entropy_bits_per_weight is not None
        else 8.0 * t.quantized_bytes
        for t in weights
    )
    return {
        "entropy_bits_per_weight": bits / params if params else 0.0,
        "huffman_bytes": sum(t.huffman_bytes for t in weights) + overhead,
    }
