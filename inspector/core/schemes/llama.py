"""llama.cpp's block quantizers as a scheme family: `q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k
q5_k q6_k iq4_nl iq4_xs` (upper case accepted: `Q4_K`), the same bytes as `llama-quantize`.

The numerics are `inspector.core.ggml` (numba, loaded on first use). Blocks run along the last
axis of the row-major shape (GGUF's `ne[0]`); every other axis is rows. A row length that does
not fit the type's blocks falls back as llama-quantize does (q4_k → q5_0, …, f16 when nothing
fits) and `note()` says so. Codes are the raw ggml block bytes, `(rows, bytes per row)` uint8:
exactly what a GGUF file stores for the tensor, so a GGUF writer copies them and safetensors
stores them as one uint8 array. Parameters: the stored ggml type and the row length.

Option `imatrix=PATH`: llama.cpp's importance matrix (GGUF or legacy .dat), used per tensor by
name as `llama-quantize --imatrix` does (q8_0 ignores it, as llama.cpp does). Core does no I/O:
the file is read by the reader that `inspector.formats.gguf.imatrix` registers here
(`register_importance_reader`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.core.errors import SchemeError
from inspector.core.ggml.fallback import fallback_type
from inspector.core.ggml.types import row_nbytes
from inspector.core.schemes.base import CurveFit, Family, Option, StoredArray, register_family

if TYPE_CHECKING:
    from inspector.core.schemes.scheme import Encoded, Scheme

__all__ = ["IMATRIX", "LLAMA", "LlamaFamily", "register_importance_reader"]

_BITS = {
    "q8_0": 8, "q4_0": 4, "q4_1": 4, "q5_0": 5, "q5_1": 5, "q2_k": 2, "q3_k": 3, "q4_k": 4,
    "q5_k": 5, "q6_k": 6, "iq4_nl": 4, "iq4_xs": 4,
}  # fmt: skip
IMATRIX = Option(
    "imatrix",
    "text",
    None,
    "Importance matrix",
    "llama.cpp imatrix file (GGUF or .dat) weighting the rounding, as llama-quantize --imatrix",
)
ImportanceReader = Callable[[str], Mapping[str, np.ndarray]]
_READERS: list[ImportanceReader] = []


def register_importance_reader(reader: ImportanceReader) -> None:
    """Set the function that reads an imatrix file into {tensor name: importances (ne0 ×
    matrices)}; the formats layer registers it (core reads no files)."""
    _READERS[:] = [reader]


def _importance(scheme: Scheme, tensor: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The tensor's importances as (matrices, ne0), None without option or entry."""
    path = scheme.option("imatrix")
    if not path or scheme.name == "q8_0":
        return None
    if not _READERS:
        raise SchemeError("imatrix=PATH needs the GGUF support (inspector.formats.gguf.imatrix)")
    values = _READERS[0](path).get(tensor)
    if values is None:
        return None
    ne0 = _ne0_rows(shape)[0]
    matrices = math.prod(shape[:-2]) if len(shape) > 2 else 1
    if values.size != ne0 * matrices:
        if tensor in ("token_embd.weight", "per_layer_token_embd.weight"):
            return None  # llama-quantize quantizes it without importances
        raise SchemeError(
            f"imatrix {path}: {values.size} importances for tensor {tensor!r} with rows of {ne0}"
        )
    return np.asarray(values, dtype=np.float32).reshape(matrices, ne0)


def _ne0_rows(shape: tuple[int, ...]) -> tuple[int, int]:
    ne0 = shape[-1] if shape else 1
    return ne0, (math.prod(shape[:-1]) if shape else 1)


class LlamaFamily(Family):
    """ggml block types; the stored type follows llama-quantize's row-length fallback."""

    id = "llama.cpp"
    description = "llama.cpp blocks along the rows (GGUF ne[0]), llama-quantize's bytes"

    def names(self) -> tuple[str, ...]:
        return tuple(_BITS)

    def bits(self, name: str) -> int:
        return _BITS[name]

    def options(self, name: str) -> tuple[Option, ...]:
        return (IMATRIX,)

    def note(self, scheme: Scheme, shape: tuple[int, ...]) -> str:
        return fallback_type(scheme.name, _ne0_rows(shape)[0]).reason or ""

    def fit(
        self,
        scheme: Scheme,
        x: np.ndarray,
        axis: int | None,
        value_range: tuple[float, float] | None,
        tensor: str = "",
    ) -> tuple[dict[str, Any], Any]:
        params = self.dry_params(scheme, tuple(x.shape), axis)
        big = value_range is None or max(abs(value_range[0]), abs(value_range[1])) >= 65504.0
        return params, (_importance(scheme, tensor, tuple(x.shape)), big)

    def quantize(
        self,
        scheme: Scheme,
        x: np.ndarray,
        params: Mapping[str, Any],
        axis: int | None,
        state: Any = None,
    ) -> tuple[np.ndarray, int]:
        from inspector.core.ggml.dequant import dequantize
        from inspector.core.ggml.quant import quantize

        importance, big = state if state is not None else (None, True)
        ne0, type_name = params["ne0"], params["type"]
        rows = np.asarray(x, dtype=np.float32).reshape(_ne0_rows(tuple(x.shape))[1], ne0)
        if rows.size == 0:  # no values: rows of zero bytes, or no rows at all
            return np.zeros((rows.shape[0], row_nbytes(type_name, ne0)), np.uint8), 0
        if importance is None or importance.shape[0] == 1:
            qw = None if importance is None else importance[0]
            codes = quantize(rows, type_name, qw)
        else:  # one importance vector per expert matrix
            per = rows.shape[0] // importance.shape[0]
            codes = np.concatenate(
                [quantize(rows[i * per : (i + 1) * per], type_name, importance[i])
                 for i in range(importance.shape[0])]
            )  # fmt: skip
        overflow = 0
        if big and rows.size:  # an fp16 scale (or f16 value) past 65504 decodes to inf/nan
            overflow = int(np.count_nonzero(~np.isfinite(dequantize(codes, type_name, rows.shape))))
        return codes, overflow

    def dequantize(self, scheme: Scheme, codes: np.ndarray, params: Mapping[str, Any]) -> Any:
        from inspector.core.ggml.dequant import dequantize

        ne0 = params["ne0"]
        rows = codes.shape[0] if codes.ndim else 0
        if rows * ne0 == 0:
            return np.zeros((rows, ne0), np.float32)
        return dequantize(codes, params["type"], (rows, ne0))

    def stored_arrays(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> tuple[StoredArray, ...]:
        ne0, rows = _ne0_rows(shape)
        per_row = row_nbytes(fallback_type(scheme.name, ne0).type, ne0)
        return (StoredArray("codes", "uint8", (rows, per_row), rows * per_row),)

    def array_data(self, enc: Encoded) -> list[bytes | np.ndarray]:
        return [np.ascontiguousarray(enc.codes, dtype=np.uint8).reshape(-1)]

    def byte_views(self, enc: Encoded) -> list[Any]:
        return self.array_data(enc)

    def from_arrays(
        self,
        scheme: Scheme,
        shape: tuple[int, ...],
        axis: int | None,
        arrays: Sequence[np.ndarray],
    ) -> Encoded:
        from inspector.core.schemes.scheme import Encoded

        layout = self.stored_arrays(scheme, shape, axis)[0]
        raw = np.asarray(arrays[0]).reshape(-1).view(np.uint8)
        if raw.size != layout.nbytes:
            raise SchemeError(
                f"{scheme.name} blocks of {shape} take {layout.nbytes} bytes, got {raw.size}"
            )
        codes = raw.reshape(layout.shape)
        return Encoded(scheme, shape, codes, self.dry_params(scheme, shape, axis))

    def dry_params(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> dict[str, Any]:
        ne0 = _ne0_rows(shape)[0]
        return {"type": fallback_type(scheme.name, ne0).type.name, "ne0": ne0}

    def curve_fit(
        self, scheme: Scheme, x: np.ndarray, axis: int | None, channel: int | None
    ) -> CurveFit:
        return _BlockLevels(scheme, x)


class _BlockLevels(CurveFit):
    """The levels of the tensor's widest block (largest |w|) as llama.cpp stores it: a value
    is drawn at the nearest of them. Other blocks have their own scales; this is the one that
    sets the tensor's range."""

    def __init__(self, scheme: Scheme, x: np.ndarray) -> None:
        from inspector.core.ggml.dequant import dequantize
        from inspector.core.ggml.quant import quantize

        ne0 = x.shape[-1] if x.ndim and x.shape[-1] else 1
        stored = fallback_type(scheme.name, ne0).type
        self._f16 = stored.name == "f16"
        rows = np.asarray(x, np.float32).reshape(-1, ne0)
        width = stored.block_size
        blocks = rows.reshape(-1, width) if rows.size else np.zeros((1, width), np.float32)
        widest = blocks[int(np.argmax(np.abs(blocks).max(axis=1)))][None, :]
        decoded = dequantize(quantize(widest, stored.name), stored.name, widest.shape)
        self._levels = np.unique(decoded[np.isfinite(decoded)]).astype(np.float32)

    def stored(self, grid: np.ndarray) -> np.ndarray:
        levels = self._levels
        if self._f16:  # the fallback stores each value as a half
            with np.errstate(over="ignore"):
                return np.asarray(grid, np.float32).astype(np.float16).astype(np.float32)
        if levels.size == 0:
            return np.zeros(grid.shape, np.float32)
        pos = np.clip(np.searchsorted(levels, grid), 1, max(1, levels.size - 1))
        lo, hi = levels[pos - 1], levels[np.minimum(pos, levels.size - 1)]
        return np.where(np.abs(grid - lo) <= np.abs(hi - grid), lo, hi).astype(np.float32)

    def levels(self, vmin: float, vmax: float, max_levels: int) -> np.ndarray | None:
        if self._f16:
            return None
        inside = self._levels[(self._levels >= vmin) & (self._levels <= vmax)]
        return inside if inside.size <= max_levels else None

    def clip_range(self) -> tuple[float, float] | None:
        if self._f16 or self._levels.size == 0:
            return None
        return float(self._levels[0]), float(self._levels[-1])


LLAMA = register_family(LlamaFamily())
