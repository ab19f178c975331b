"""Model totals from per-tensor previews (DESIGN §4): sizes, ratios, global SQNR, worst tensors."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from inspector.core.collapse import collapse_flagged
from inspector.core.formatting import format_bytes
from inspector.core.metrics import gzip_estimate, sqnr_db
from inspector.core.model import TensorInfo
from inspector.core.schemes import SchemeError, parse_scheme

if TYPE_CHECKING:
    from inspector.core.model import Model
    from inspector.core.plan import Plan
    from inspector.core.preview import TensorPreview
    from inspector.core.target import Target

__all__ = [
    "WORST_COUNT",
    "input_bytes",
    "input_stored_nbytes",
    "lost_savings",
    "plan_weight_bytes",
    "restored_larger",
    "summarize",
]

WORST_COUNT = 5


def summarize(
    tensors: Sequence[TensorPreview],
    overhead: bytes = b"",
    overhead_gzip: int | None = None,
    gzip_exact: int | None = None,
    file_bytes_before: int | None = None,
) -> dict[str, Any]:
    """Model totals from per-tensor previews; optimizer state is left out.

    Sizes compare like with like (DESIGN §4): `file_bytes_before` is what the input holds on
    disk (every file of it; None: the tensors' stored bytes, optimizer state included) and
    `file_bytes_after` what the export writes (the tensors as stored plus `overhead`), so
    `compression_ratio` is a ratio of whole files. `original_bytes` / `weight_bytes_after`
    are the weights alone, before (as the input stores them, an already-quantized input at its
    codes) and after; `optimizer_bytes` is the optimizer state the export leaves out.

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
    optimizer = [t for t in tensors if t.optimizer]
    optimizer_bytes = sum(t.original_bytes for t in optimizer)
    before = original + optimizer_bytes if file_bytes_before is None else file_bytes_before
    weights_after = quantized - len(overhead)
    return {
        "parameters": params,
        "tensors": len(weights),
        "original_bytes": original,
        "quantized_bytes": quantized,
        "weight_bytes_after": weights_after,
        "overhead_bytes": len(overhead),
        "file_bytes_before": before,
        "file_bytes_after": quantized,
        "optimizer_tensors": len(optimizer),
        "optimizer_bytes": optimizer_bytes,
        "compression_ratio": before / quantized if quantized else 1.0,
        "weight_ratio": original / (quantized - len(overhead))
        if quantized > len(overhead)
        else 1.0,
        "bits_per_weight": 8.0 * (quantized - len(overhead)) / params if params else 0.0,
        "mse": noise / params if params else 0.0,
        "sqnr_db": sqnr_db(signal, noise),
        "gzip_bytes": gz,
        "gzip_ratio": quantized / gz if gz else 1.0,
        "gzip_uncertainty": uncertainty,
        "gzip_exact": gzip_exact is not None,
        "nonfinite_tensors": [t.name for t in weights if t.nonfinite],
        "worst": [t.name for t in ranked[:WORST_COUNT]],
        "collapsed_tensors": [
            t.name for t in weights if collapse_flagged(t.collapsed_channels, t.channels)
        ],
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


def input_bytes(model: Model) -> int:
    """What a budget of "25 %" is a percentage of: the input's bytes on disk (the summary's
    "File before"), so the budget and the file it limits are one accounting; the tensors'
    stored bytes when the file size is unknown."""
    if model.file_bytes:
        return model.file_bytes
    return sum(input_stored_nbytes(t.info) for t in model)


def input_stored_nbytes(info: TensorInfo) -> int:
    """Bytes the input file stores for a tensor: an already-quantized tensor's codes and
    parameters (a TF.js uint8 weight is one byte per value, not the float32 it decodes to),
    else its logical values."""
    if info.stored is not None:
        try:
            return parse_scheme(info.stored.scheme).encoded_nbytes(info)
        except (SchemeError, ValueError):
            return info.nbytes
    return info.nbytes


def plan_weight_bytes(model: Model, plan: Plan, target: Target) -> int:
    """The weights' stored bytes under `target` for `plan`, from shapes alone (no values
    read): what each tensor's last storage stage holds, raw values where it is kept.

    An estimate for comparing formats (it cannot know the tensors that turn out non-finite);
    the preview's `weight_bytes_after` is the exact figure for the chosen one.
    """
    from inspector.core.quantize import skip_reason

    total = 0
    for tensor in model:
        info = tensor.info
        if info.optimizer:
            continue
        scheme = plan.scheme_for(info)
        stored = target.storage(info, scheme).stored
        if stored is None or skip_reason(info, scheme) is not None:
            total += info.nbytes
        else:
            total += stored.encoded_nbytes(info)
    return total


def lost_savings(
    chosen: str, by_format: Mapping[str, int], native: int, slack: float = 1.05
) -> tuple[str, str] | None:
    """When format `chosen` stores the plan's weights larger than the schemes themselves do
    (`native` bytes; e.g. Keras keeps floats), the format that stores them smallest and a
    sentence saying so; None when nothing is lost (within `slack`).

    `by_format` maps format name → `plan_weight_bytes` under it (formats that cannot hold the
    input left out).
    """
    mine = by_format.get(chosen)
    if mine is None or mine <= native * slack:
        return None
    best = min(by_format, key=lambda f: (by_format[f], f != chosen))
    if by_format[best] >= mine:
        return None
    return best, (
        f"{chosen} stores this plan's weights in {format_bytes(mine)}, not the "
        f"{format_bytes(native)} its schemes need; {best} would store "
        f"{format_bytes(by_format[best])}"
    )


def restored_larger(
    model: Model, plan: Plan, target: Target
) -> list[tuple[str, str, int, int, int]]:
    """Schemes `target` re-stores in more bytes than the scheme itself needs (TF.js keeps int4
    groups as uint16 codes, Keras keeps floats): (scheme, stored as, tensors, bytes the scheme
    needs, bytes stored), largest loss first. From shapes alone."""
    from inspector.core.quantize import skip_reason

    found: dict[tuple[str, str], list[int]] = {}
    for tensor in model:
        info = tensor.info
        scheme = plan.scheme_for(info)
        if info.optimizer or scheme.is_identity or skip_reason(info, scheme) is not None:
            continue
        stored = target.storage(info, scheme).stored
        need = scheme.encoded_nbytes(info)
        have = info.nbytes if stored is None else stored.encoded_nbytes(info)
        if have > need:
            key = (scheme.spec, "float32" if stored is None else stored.spec)
            entry = found.setdefault(key, [0, 0, 0])
            entry[0] += 1
            entry[1] += need
            entry[2] += have
    rows = [(s, st, n, need, have) for (s, st), (n, need, have) in found.items()]
    return sorted(rows, key=lambda r: r[3] - r[4])
