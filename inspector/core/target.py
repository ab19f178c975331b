"""Export targets: how a file format stores a scheme it may not express natively.

TF.js stores only uint8/uint16/float16/float32, so a per-channel int8 scheme is *baked*: the
values it produces are re-stored in something TF.js can hold. A `Storage` names those stages,
and the preview applies exactly them, so what the preview reports is what the export writes
(DESIGN §7 rule 7). Formats supply their `Target` from `formats/`; core knows only the shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from inspector.core.model import TensorInfo
from inspector.core.rounding.options import rounding_of
from inspector.core.schemes import Scheme

if TYPE_CHECKING:
    from inspector.core.model import Model
    from inspector.core.rounding.data import DataRounding

__all__ = ["NATIVE", "Storage", "Target", "native_storage", "single_file_archive"]


@dataclass(frozen=True)
class Storage:
    """Schemes applied in order (x → decode(encode(x)) per stage); the last one is stored.

    No stages means the tensor is written as it is. `note` tells the user what was baked and why.
    """

    stages: tuple[Scheme, ...]
    note: str = ""

    @property
    def stored(self) -> Scheme | None:
        return self.stages[-1] if self.stages else None


def native_storage(info: TensorInfo, scheme: Scheme) -> Storage:
    """Store every scheme as itself (safetensors codes+scales, npz, the preview's default)."""
    return Storage(() if scheme.is_identity else (scheme,))


def _no_overhead(model: Model, previews: Sequence[Any]) -> bytes:
    return b""


def _no_option_bytes(model: Model, info: TensorInfo, stored: Scheme) -> int:
    return 0


def _stored_bytes(model: Model, quantized: Any) -> bytes:
    return quantized.stored_bytes()


def single_file_archive(
    overhead: bytes, stored_total: int, chunks: Iterable[bytes | memoryview]
) -> Iterator[bytes | memoryview]:
    """One file: the container's own bytes, then every tensor's stored bytes in order."""
    yield overhead
    yield from chunks


@dataclass(frozen=True)
class Target:
    """A named export format's storage rule and the bytes it adds around the tensors.

    `overhead_bytes(model, previews)` returns the container's own bytes (model.json, headers,
    graph) as the export would write them; they are counted in the model totals (and in the gzip
    ratio) so predicted and written sizes agree.

    `tensor_bytes(model, quantized)` gives the bytes the writer stores for one
    `QuantizedTensor`, and `archive(overhead, stored_total, chunks)` turns the container bytes
    and the tensors' bytes (file order, optimizer state left out; `stored_total` bytes in all)
    into the byte stream the gzip ratio is defined on: the file itself, or for TF.js the tar of
    model.json and the shards. The exact gzip size is that stream through one deflate.

    `option_bytes(model, info, stored)` is the part of the overhead one tensor brings when it
    is stored as `stored` (ONNX: the nodes that decode it), so the budget solver can weigh it
    per tensor; 0 where the container's bytes barely depend on the plan.

    `rounding` chooses the codes of `round=gptq` stages from calibration data (None: they
    round to nearest, with a note); `with_rounding` attaches one, `cache_key` tells caches
    apart.
    """

    name: str
    store: Callable[[TensorInfo, Scheme], Storage] = native_storage
    overhead_bytes: Callable[[Model, Sequence[Any]], bytes] = field(default=_no_overhead)
    tensor_bytes: Callable[[Model, Any], bytes] = field(default=_stored_bytes)
    archive: Callable[[bytes, int, Iterable[bytes | memoryview]], Iterator[bytes | memoryview]] = (
        field(default=single_file_archive)
    )
    option_bytes: Callable[[Model, TensorInfo, Scheme], int] = field(default=_no_option_bytes)

    rounding: DataRounding | None = field(default=None, compare=False)

    def storage(self, info: TensorInfo, scheme: Scheme) -> Storage:
        return self.store(info, scheme)

    def with_rounding(self, rounding: DataRounding | None) -> Target:
        """This target with `rounding` choosing the codes of `round=gptq` stages."""
        return replace(self, rounding=rounding)

    def cache_key(self, scheme: Scheme) -> str:
        """What, besides tensor and spec, a cached result under this target depends on."""
        if rounding_of(scheme) == "gptq" and self.rounding is not None:
            return f"{self.name}+{self.rounding.key}"
        return self.name


NATIVE = Target("native")
