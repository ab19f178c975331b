"""The one code path from a tensor to what a file stores: `quantize_tensor`.

The preview, the exact gzip size, the evaluation and every writer call it (DESIGN §7 rule 7:
what the preview reports is what the export writes). `TensorCache` keeps one result per
(tensor, scheme, target) so an edit recomputes one tensor, whoever asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Generic, TypeVar

import numpy as np

from inspector.core.chunking import finite_minmax
from inspector.core.model import Tensor, TensorInfo
from inspector.core.rounding.data import NO_DATA
from inspector.core.rounding.options import rounding_of
from inspector.core.schemes import Encoded, Scheme
from inspector.core.target import NATIVE, Storage, Target

__all__ = ["QuantizedTensor", "TensorCache", "quantize_tensor", "skip_reason"]

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """A tensor after its storage stages: what is stored and what a runtime will decode."""

    info: TensorInfo
    scheme: Scheme
    storage: Storage
    encoded: Encoded | None
    first: Encoded | None
    original: np.ndarray
    decoded_values: np.ndarray | None
    skipped: str | None
    nonfinite: int = 0
    rounding_note: str = ""

    @cached_property
    def decoded(self) -> np.ndarray:
        """float32 values a runtime decodes (the last stage's decode, made on first use: the
        preview measures affine codes through a lookup table without this full array)."""
        if self.decoded_values is not None:
            return self.decoded_values
        assert self.encoded is not None and self.storage.stored is not None
        return self.storage.stored.decode(self.encoded)

    @property
    def note(self) -> str:
        """What the user should know about how this tensor is stored: the target's note (what
        was baked and why) and each stage family's (e.g. a fallback type for a row length)."""
        notes = [self.storage.note]
        notes += [s.family.note(s, self.info.shape) for s in self.storage.stages]
        return "; ".join(n for n in (*notes, self.rounding_note) if n)

    @property
    def stored_nbytes(self) -> int:
        """Bytes the file holds for this tensor (codes + parameters, or the raw values)."""
        return self.encoded.nbytes if self.encoded is not None else self.info.nbytes

    def stored_bytes(self) -> bytes:
        if self.encoded is not None:
            return self.encoded.to_bytes()
        return np.ascontiguousarray(self.original).tobytes()


def skip_reason(info: TensorInfo, scheme: Scheme) -> str | None:
    """Why `quantize_tensor` keeps this tensor as it is (None: it quantizes it)."""
    if info.optimizer:
        return "optimizer state"
    if not info.is_float:
        return f"{info.dtype} tensor"
    if info.kept is not None and (scheme.is_identity or not info.kept_overridable):
        return info.kept
    if info.size == 0:
        return "empty tensor"
    if not scheme.applies_to(info):
        return f"fewer than {scheme.skip} elements" if scheme.skip else "kept as is"
    return None


def quantize_tensor(tensor: Tensor, scheme: Scheme, target: Target = NATIVE) -> QuantizedTensor:
    """Apply the target's storage stages for `scheme` to one tensor.

    Tensors holding NaN/Inf are kept as they are (and reported with the count) so the rest of
    the model still previews; integer tensors, optimizer state and tiny tensors are kept too,
    and so are tensors that are not weights (`TensorInfo.kept`) unless they may be overridden.
    """
    info = tensor.info
    values = tensor.load()
    storage = target.storage(info, scheme)
    reason = skip_reason(info, scheme) or (None if storage.stages else "kept as is")
    nonfinite = 0
    if reason is None:
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes ±inf
            x = np.asarray(values, dtype=np.float32)
        mn, mx, nonfinite = finite_minmax(x.reshape(-1))
        if nonfinite:
            reason = f"{nonfinite} non-finite values (NaN/Inf)"
    if reason is not None:
        return QuantizedTensor(
            info, scheme, Storage(()), None, None, values, values, reason, nonfinite
        )
    decoded, first, enc, note = x, None, None, ""
    for i, stage in enumerate(storage.stages):
        if i:
            assert enc is not None  # the previous stage encoded
            decoded = storage.stages[i - 1].decode(enc)
            mn, mx, bad = finite_minmax(decoded.reshape(-1))
            if bad:
                # A value decoded past float32's max (±inf) cannot be re-stored by the next stage.
                why = f"{storage.stages[i - 1]} decodes values past the float32 range"
                return QuantizedTensor(info, scheme, Storage(()), None, None, values, values, why)
        known = (mn, mx) if decoded.size and decoded.dtype == np.float32 else None
        enc = stage.encode(
            decoded, channel_axis=info.channel_axis, value_range=known, tensor=info.name
        )
        if rounding_of(stage) == "gptq":
            enc, note = _data_rounded(tensor, enc, decoded, target)
        first = first or enc
    return QuantizedTensor(info, scheme, storage, enc, first, x, None, None, 0, note)


def _data_rounded(
    tensor: Tensor, enc: Encoded, values: np.ndarray, target: Target
) -> tuple[Encoded, str]:
    """`enc` with the codes the target's data rounding chooses, or as is with the reason."""
    if target.rounding is None:
        return enc, NO_DATA
    codes, why = target.rounding.choose(tensor, enc, values)
    if codes is None:
        return enc, f"round=gptq: {why}; nearest"
    return replace(enc, codes=codes), ""


class TensorCache(Generic[T]):
    """Results of `compute(tensor, scheme, target)` keyed by (tensor name, scheme spec,
    `target.cache_key`: its name, plus the calibration data of a gptq scheme), reused across
    plan edits so changing one tensor's scheme recomputes one tensor. Not locked: two workers
    racing on one key only compute it twice."""

    def __init__(self, compute: Callable[[Tensor, Scheme, Target], T]) -> None:
        self._compute = compute
        self._items: dict[tuple[str, str, str], T] = {}

    def get(self, tensor: Tensor, scheme: Scheme, target: Target) -> T:
        key = (tensor.name, scheme.spec, target.cache_key(scheme))
        if key not in self._items:
            self._items[key] = self._compute(tensor, scheme, target)
        return self._items[key]

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
