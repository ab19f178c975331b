"""What a file format declares (`FormatSpec`), what its writer receives (`ExportOptions`), and
the cheap look at a file that sniffing uses (`Probe`).

Every list of formats the product shows — the CLI's `--format` choices, the GUI's open filter
and export dialog, the summary's target menu, drag-and-drop, the "what can export to what" rule
— is generated from the registered specs (`registry.py`). A format is one subpackage whose
`__init__.py` defines `FORMAT = FormatSpec(...)` and stays light: readers, writers and targets
are named as `"module:attribute"` strings and imported on first use.
"""

from __future__ import annotations

import importlib
import os
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspector.core.model import Model
    from inspector.core.plan import Plan
    from inspector.core.target import Target

__all__ = ["ExportOptions", "FormatSpec", "Probe", "load_attr"]


def load_attr(ref: str) -> Any:
    """The object a `"package.module:attribute"` reference names (imported now)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


class Probe:
    """A file or folder looked at once for sniffing: the first bytes, the size, the member names
    of a zip — each read at most once, whichever format asks first."""

    HEAD = 64

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @cached_property
    def is_dir(self) -> bool:
        return self.path.is_dir()

    @cached_property
    def size(self) -> int:
        return self.path.stat().st_size

    @cached_property
    def head(self) -> bytes:
        """The first `HEAD` bytes (fewer for a short file; b"" for a folder)."""
        return b"" if self.is_dir else self.read_at(0, self.HEAD)

    def read_at(self, offset: int, n: int) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return fh.read(n)

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()

    @cached_property
    def zip_names(self) -> list[str] | None:
        """Member names when the file starts like a zip; None when it does not, or when it is
        a damaged zip (the reader then gives the precise reason)."""
        if self.head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
            return None
        try:
            with zipfile.ZipFile(self.path) as zf:
                return zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
            return None

    @property
    def is_zip(self) -> bool:
        return self.head[:4] in (b"PK\x03\x04", b"PK\x05\x06")

    def u64(self, offset: int = 0) -> int:
        """The little-endian u64 at `offset` of the head (0 when the file is shorter)."""
        raw = self.head[offset : offset + 8]
        return struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0


@dataclass(frozen=True)
class FormatSpec:
    """One file format: how to recognise, read and write it, and what the GUI/CLI call it.

    - `name`: the `--format` name (a contract, DESIGN §6); `label`: what menus show.
    - `readers`: input kind → `"module:function"` (`function(path) -> Model`); an input kind is
      what `Model.format` says (`tfjs` and `tfjs-weights` are two kinds of one format).
    - `sniff(probe)`: the input kind of a file by its content, or None. Specs are asked in
      registration order, so weak checks (ONNX has no magic bytes) register last.
    - `suffixes`: suffix → input kind, used when the content is damaged so the right reader
      gives the precise reason; `open_patterns`: the GUI open dialog's globs.
    - `writer`/`target`: `"module:attribute"` of `write(model, stream, dest, opts)` and of the
      `Target` (how the format stores each scheme); None for a read-only format.
    - `writes_folder`: the export is a folder (TF.js); `input_folder`: the input's folder is
      part of it (never written into). `export_fields`: the `ExportOptions` fields this format
      reads (the export dialog shows their controls). `exports_from(model)`: "" when `model`
      can be written in this format, else the reason (ONNX needs an ONNX graph).
    - `default_export`: the format an input of this format exports to by default (itself when
      it has a writer); `menu_rank`: position in menus (lower first).
    """

    name: str
    label: str
    readers: Mapping[str, str]
    sniff: Callable[[Probe], str | None]
    suffixes: Mapping[str, str] = field(default_factory=dict)
    open_patterns: tuple[str, ...] = ()
    writer: str | None = None
    target: str | None = None
    writes_folder: bool = False
    input_folder: bool = False
    export_fields: frozenset[str] = frozenset()
    exports_from: Callable[[Model], str] | None = None
    default_export: str | None = None
    export_suffix: Callable[[Model], str] | str = ""
    menu_rank: int = 100

    @property
    def writable(self) -> bool:
        return self.writer is not None

    def refusal(self, model: Model) -> str:
        """Why `model` cannot be exported in this format ("" when it can)."""
        if not self.writable:
            return f"{self.label} is read-only here"
        return self.exports_from(model) if self.exports_from is not None else ""

    def suffix_for(self, model: Model) -> str:
        """The output suffix an export of `model` gets ("" for a folder)."""
        return self.export_suffix(model) if callable(self.export_suffix) else self.export_suffix


@dataclass(frozen=True)
class ExportOptions:
    """What a writer needs besides the tensors.

    `shard_bytes`: the TF.js shard size limit; `max_shard_bytes`: the largest shard of a sharded
    safetensors export (0: one file); `dequantized`: plain F32/F16 values instead of codes +
    scales (safetensors); `weights_only`: TF.js `weights_manifest.json` + shards without
    topology. `source` is the input, `out` the final output path (the writer writes to a
    temporary beside it). A writer appends model-level notes (e.g. "opset raised from 17 to
    21") to `notes`.
    """

    plan: Plan
    target: Target
    shard_bytes: int = 4 << 20
    max_shard_bytes: int = 0
    dequantized: bool = False
    weights_only: bool = False
    source: Path = field(default_factory=Path)
    out: Path = field(default_factory=Path)
    notes: list[str] = field(default_factory=list)
