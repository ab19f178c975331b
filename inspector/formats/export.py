"""Export orchestration: a plan applied to a model, written atomically in a chosen format.

Every tensor goes through `quantize_tensor(tensor, scheme, target)`, the function the preview
uses, so the file holds exactly what the preview measured (DESIGN §7 rule 7). Tensors are
quantized one at a time in file order and handed to the format's writer as a stream: that is the
unit of progress and of cancellation. The output appears only when everything succeeded
(`inspector.formats.atomic`); the input is never written to.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.core.errors import FormatError, InspectorError
from inspector.core.model import Model
from inspector.core.plan import Plan
from inspector.core.preview import Preview, PreviewCache, QuantizedTensor, quantize_tensor
from inspector.core.rounding.data import DataRounding
from inspector.core.target import Target
from inspector.formats.atomic import (
    WriteError,
    atomic_dir,
    atomic_path,
    check_output,
    in_workspace,
)
from inspector.formats.base import ExportOptions, load_attr
from inspector.formats.registry import (
    default_export,
    export_choices,
    export_spec,
    get_target,
    spec_for_input,
)
from inspector.formats.safetensors.sharded_writer import (
    DEFAULT_MAX_SHARD_BYTES,
    sharded_target,
    wants_folder,
)

__all__ = [
    "ExportCancelled",
    "ExportOptions",
    "ExportResult",
    "default_format",
    "export_model",
    "input_paths",
    "result_json",
]

Progress = Callable[[int, int, str], None]
"""`progress(done, total, tensor_name)`: called after each tensor is written."""


class ExportCancelled(InspectorError):
    """The user cancelled an export; nothing was written."""


@dataclass(frozen=True)
class ExportResult:
    """What was written: the output path, every file with its size in bytes, and notes as
    (tensor name, note) pairs, the tensor name "" for a note about the whole model."""

    path: Path
    format: str
    files: tuple[tuple[Path, int], ...]
    notes: tuple[tuple[str, str], ...]
    preview: Preview | None = None

    @property
    def total_bytes(self) -> int:
        return sum(n for _, n in self.files)


def default_format(model: Model) -> str:
    """The export format matching the input's own (DESIGN §6 default)."""
    return default_export(model)


def input_paths(model: Model) -> list[Path]:
    """Everything an export must never write over: the input file, and for formats whose input
    is a folder of files (TF.js) the whole folder, and every file of a split or sharded input."""
    if spec_for_input(model.format).input_folder:
        folder = model.path if model.path.is_dir() else model.path.parent
        return [model.path, folder]
    return [model.path, *model.metadata.get("source_files", [])]


def _check_expressible(model: Model, fmt: str) -> None:
    """Refuse, before anything is written, a format that cannot hold this input."""
    reason = export_spec(fmt).refusal(model)
    if reason:
        own = default_export(model)
        choices = [f for f in (own, *export_choices()) if not export_spec(f).refusal(model)]
        raise InspectorError(
            f"{model.path}: {reason}; this is a {model.format} model: choose --format "
            f"{', '.join(dict.fromkeys(choices))}"
        )


def _stream(
    model: Model,
    plan: Plan,
    target: Target,
    progress: Progress | None,
    cancelled: Callable[[], bool] | None,
    notes: list[tuple[str, str]],
) -> Iterator[QuantizedTensor]:
    tensors = list(model)
    for i, tensor in enumerate(tensors):
        if cancelled is not None and cancelled():
            raise ExportCancelled("export cancelled; nothing was written")
        try:
            q = quantize_tensor(tensor, plan.scheme_for(tensor.info), target)
        except (FormatError, ExportCancelled):
            raise
        except InspectorError as exc:
            raise FormatError(model.path, str(exc), tensor.name) from exc
        if q.note:
            notes.append((tensor.name, q.note))
        yield q
        if progress is not None:
            progress(i + 1, len(tensors), tensor.name)


def export_model(
    model: Model,
    plan: Plan,
    fmt: str | None,
    out: str | Path,
    *,
    force: bool = False,
    shard_bytes: int = 4 << 20,
    dequantized: bool = False,
    weights_only: bool = False,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    with_preview: bool = False,
    cache: PreviewCache | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    rounding: DataRounding | None = None,
) -> ExportResult:
    """Write `model` under `plan` as `fmt` (None: the input's format) to `out`.

    `out` is a folder for TF.js, and for safetensors when it is a folder or has no suffix (the
    sharded Hugging Face layout, shards of at most `max_shard_bytes`); a file otherwise.
    Refuses to replace an existing `out` unless `force`, and always refuses the input itself.
    `with_preview` also computes the preview (metrics for a report), reusing `cache` when given.
    `rounding` chooses the codes of `round=gptq` tensors (pass the preview's object to reuse
    the codes it already computed).
    """
    fmt = fmt or default_format(model)
    spec = export_spec(fmt)
    _check_expressible(model, fmt)
    write = load_attr(spec.writer or "")
    target = get_target(fmt).with_rounding(rounding)
    path = check_output(out, input_paths(model), force)
    if shard_bytes < 1 or max_shard_bytes < 1:
        raise InspectorError(
            f"shard size must be positive, got {min(shard_bytes, max_shard_bytes)} bytes"
        )
    sharded = fmt == "safetensors" and wants_folder(path)
    if sharded:
        target = sharded_target(max_shard_bytes).with_rounding(rounding)
    opts = ExportOptions(
        plan,
        target,
        shard_bytes=shard_bytes,
        dequantized=dequantized,
        weights_only=weights_only,
        max_shard_bytes=max_shard_bytes if sharded else 0,
        source=model.path,
        out=path,
    )
    notes: list[tuple[str, str]] = []
    stream = _stream(model, plan, target, progress, cancelled, notes)
    multi_file = spec.writes_folder or sharded
    ctx = atomic_dir(path) if multi_file else atomic_path(path)
    with _named_errors(model, path), ctx as tmp:
        written = write(model, stream, tmp, opts)
        sizes = [(p, p.stat().st_size) for p in written]
    notes.extend(("", note) for note in opts.notes)
    final = tuple((path / p.relative_to(tmp) if multi_file else path, n) for p, n in sizes)
    preview = None
    if with_preview:
        from inspector.core.preview import run_preview

        preview = run_preview(model, plan, target, cache)
    return ExportResult(path, fmt, final, tuple(notes), preview)


_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


@contextlib.contextmanager
def _named_errors(model: Model, out: Path) -> Iterator[None]:
    """Errors of a write name the output the user chose, never the hidden workspace, and a
    system error without a file name ("No space left on device") says which file it hit."""
    try:
        yield
    except WriteError:
        raise
    except FormatError as exc:
        if in_workspace(Path(exc.path), out) or Path(exc.path) == out:
            reason = exc.reason
            if str(model.path) not in reason:  # say which input the refusal is about
                reason += f" (exporting {model.path})"
            raise FormatError(out, reason, exc.tensor) from exc
        raise
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) and exc.filename is None:
            raise
        reason = exc.strerror or str(exc) or type(exc).__name__
        name = exc.filename
        if name is None or in_workspace(Path(os.fsdecode(name)), out):
            if exc.errno in _WRITE_ERRNOS or name is not None:
                raise WriteError(out, f"cannot write: {reason}") from exc
            raise FormatError(out, f"{reason} (exporting {model.path})") from exc
        raise FormatError(os.fsdecode(name), reason) from exc


def result_json(result: ExportResult) -> dict[str, Any]:
    """A JSON-able summary of an export (for `--json` and reports)."""
    return {
        "path": str(result.path),
        "format": result.format,
        "files": [{"path": str(p), "bytes": n} for p, n in result.files],
        "total_bytes": result.total_bytes,
        "notes": [{"tensor": t, "note": n} for t, n in result.notes],
    }
