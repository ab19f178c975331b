"""The exact gzip size of what an export writes (the TF.js example's gzip ratio).

Tensors are quantized again one at a time by `quantize_tensor`, the export's own code path,
and streamed through the target's archive (the file, or for TF.js the tar of the folder).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING

from inspector.core.cancel import Cancelled
from inspector.core.metrics import parallel_gzip_nbytes
from inspector.core.model import Model
from inspector.core.plan import Plan
from inspector.core.quantize import quantize_tensor
from inspector.core.target import Target

if TYPE_CHECKING:
    from inspector.core.preview import TensorPreview

__all__ = ["EXACT_GZIP_BELOW", "exact_gzip"]

EXACT_GZIP_BELOW = 8 << 20
"""Stored bytes up to which `iter_preview` gzips the whole archive exactly (~0.2 s at most)."""
_GZIP_PIECE = 1 << 20


def exact_gzip(
    model: Model,
    plan: Plan,
    target: Target,
    rows: Sequence[TensorPreview],
    cancelled: Callable[[], bool] | None = None,
    workers: int | None = None,
) -> Generator[tuple[int, int], None, int]:
    """The gzip size (level 6, bytes) of what the export writes: the target's archive stream
    (for TF.js the tar of model.json and the shards).

    Up to `EXACT_GZIP_BELOW` bytes, or with one worker, the stream goes through one deflate:
    exactly `gzip`'s zlib-6 size. Larger archives are deflated pigz-style on `workers` threads
    (default: up to 2 CPUs) in 1 MiB blocks primed with the previous 32 KiB
    (`parallel_gzip_nbytes`): a valid gzip stream whose size is within ~0.01 % of the single
    stream's (measured; see benchmarks/RESULTS.md), at about twice the speed on two cores.

    Tensors are quantized again one at a time by `quantize_tensor`, the export's own code
    path, so nothing but one tensor is held. Yields (bytes done, bytes in all) every 1 MiB and
    raises `Cancelled` when `cancelled()` turns True. `rows` are the plan's previews (they give
    model.json). zlib runs at ~40 MB/s per core.
    """
    overhead = target.overhead_bytes(model, rows) or b""
    stored = sum(r.quantized_bytes for r in rows if not r.optimizer)
    total = stored + len(overhead)
    stream = target.archive(overhead, stored, _stored_chunks(model, plan, target))
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers > 1 and total > EXACT_GZIP_BELOW:
        blocks = parallel_gzip_nbytes(stream, 6, workers)
        try:
            while True:
                if cancelled is not None and cancelled():
                    raise Cancelled("exact gzip size cancelled")
                yield min(next(blocks), total), total
        except StopIteration as stop:
            return stop.value
        finally:
            blocks.close()
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    size = done = 0
    for chunk in stream:
        view = memoryview(chunk).cast("B")
        for start in range(0, len(view), _GZIP_PIECE):
            if cancelled is not None and cancelled():
                raise Cancelled("exact gzip size cancelled")
            piece = view[start : start + _GZIP_PIECE]
            size += len(comp.compress(piece))
            done += len(piece)
            yield min(done, total), total
    return size + len(comp.flush())


def _stored_chunks(model: Model, plan: Plan, target: Target) -> Iterator[bytes]:
    for tensor in model:
        if tensor.info.optimizer:
            continue
        q = quantize_tensor(tensor, plan.scheme_for(tensor.info), target)
        yield target.tensor_bytes(model, q)
