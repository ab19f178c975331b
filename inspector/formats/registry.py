"""The registry of file formats: sniffing, opening, export targets and every format list.

Formats register in `_BUILTIN` order (each `inspector.formats.<name>` package defines `FORMAT`);
sniffing asks them in that order, so content checks that cannot be fooled come first and ONNX
(no magic bytes) last. A new format is one subpackage plus one entry in `_BUILTIN`
(docs/extending.md).
"""

from __future__ import annotations

import importlib
import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.core.errors import FormatError, InspectorError
from inspector.core.model import Model
from inspector.formats._json import file_kind
from inspector.formats.base import FormatSpec, Probe, load_attr

if TYPE_CHECKING:
    from inspector.core.target import Target

__all__ = [
    "default_export",
    "export_choices",
    "export_spec",
    "formats",
    "get_target",
    "input_file_bytes",
    "input_kinds",
    "model_suffixes",
    "open_filter",
    "open_model",
    "register_format",
    "sniff_format",
    "spec_for_input",
]

_BUILTIN = ("keras", "npz", "safetensors", "gguf", "torch", "tfjs", "tflite", "onnx")
_SPECS: dict[str, FormatSpec] = {}


def register_format(spec: FormatSpec) -> None:
    """Add a format; its name and input kinds must be new."""
    kinds = {k for s in _SPECS.values() for k in s.readers}
    if spec.name in _SPECS or kinds.intersection(spec.readers):
        raise ValueError(f"format {spec.name!r} or one of its input kinds is already registered")
    _SPECS[spec.name] = spec


def _load_builtin() -> None:
    for name in _BUILTIN:
        register_format(importlib.import_module(f"inspector.formats.{name}").FORMAT)


def formats() -> tuple[FormatSpec, ...]:
    """Registered formats in sniffing order."""
    return tuple(_SPECS.values())


def input_kinds() -> tuple[str, ...]:
    """Every `Model.format` value a reader can produce."""
    return tuple(k for s in _SPECS.values() for k in s.readers)


def spec_for_input(kind: str) -> FormatSpec:
    """The format whose reader produces input kind `kind` (a `Model.format` value)."""
    for spec in _SPECS.values():
        if kind in spec.readers or kind == spec.name:
            return spec
    raise InspectorError(f"unknown input format {kind!r}")


def export_choices() -> tuple[str, ...]:
    """The `--format` names (formats with a writer), in menu order."""
    ordered = sorted(_SPECS.values(), key=lambda s: s.menu_rank)
    return tuple(s.name for s in ordered if s.writable)


def export_spec(name: str) -> FormatSpec:
    """The writable format `name`; a clear error listing the choices otherwise."""
    spec = _SPECS.get(name)
    if spec is None or not spec.writable:
        raise InspectorError(
            f"unknown export format {name!r} (choose from {', '.join(export_choices())})"
        )
    return spec


def get_target(name: str) -> Target:
    """The target for a format name or an input kind (an input maps to the format it exports
    as); "native" stores every scheme as itself. Loads the scheme families (and registers the
    GGUF imatrix reader with llama's), which opening a model does not need."""
    import inspector.formats.gguf.imatrix  # noqa: F401 (registers imatrix=PATH)
    from inspector.core.target import NATIVE

    if name == "native":
        return NATIVE
    try:
        spec = spec_for_input(name)
    except InspectorError:
        spec = None
    if spec is not None and not spec.writable and spec.default_export:
        spec = _SPECS[spec.default_export]
    if spec is None or spec.target is None:
        raise InspectorError(
            f"unknown export format {name!r} (choose from {', '.join(export_choices())})"
        )
    target: Target = load_attr(spec.target)
    return target


def default_export(model: Model) -> str:
    """The export format matching the input's own (DESIGN §6 default)."""
    spec = spec_for_input(model.format)
    if spec.writable:
        return spec.name
    if spec.default_export:
        return spec.default_export
    raise InspectorError(f"no export format for input format {model.format!r}")


def model_suffixes() -> tuple[str, ...]:
    """File suffixes (lower case) some reader recognises, for drag-and-drop."""
    return tuple(dict.fromkeys(sfx for s in _SPECS.values() for sfx in s.suffixes))


def open_filter() -> str:
    """The GUI open dialog's filter: all models, then one entry per format."""
    every = " ".join(dict.fromkeys(p for s in _SPECS.values() for p in s.open_patterns))
    parts = [f"Models ({every})"]
    parts += [
        f"{s.label} ({' '.join(s.open_patterns)})" for s in _SPECS.values() if s.open_patterns
    ]
    return ";;".join([*parts, "All files (*)"])


def sniff_format(path: str | os.PathLike[str]) -> str | None:
    """The input kind of `path` judged by its content, or None when it is none of ours (and
    for anything but a regular file or folder: reading a FIFO or a device never ends)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return None
    probe = Probe(path)
    try:
        for spec in _SPECS.values():
            kind = spec.sniff(probe)
            if kind is not None:
                return kind
    except OSError:
        return None
    for spec in _SPECS.values():
        if probe.suffix in spec.suffixes:
            return spec.suffixes[probe.suffix]
    return None


def open_model(path: str | os.PathLike[str]) -> Model:
    """Open a model file or folder with the reader its content calls for (headers only)."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        reason = "no such file or folder" if not p.exists() else f"cannot read: {exc.strerror}"
        raise FormatError(p, reason) from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise FormatError(p, f"is {file_kind(mode)}, not a model file or folder")
    kind = sniff_format(p)
    if kind is None:
        if p.is_dir():
            raise FormatError(p, "folder holds no model.json nor one *.safetensors.index.json")
        hint = _json_hint(p)
        if hint:
            raise FormatError(p, hint)
        names = ", ".join(s.label for s in _SPECS.values())
        raise FormatError(p, f"not a recognised model file ({names})")
    reader = load_attr(spec_for_input(kind).readers[kind])
    model: Model = reader(p)
    model.file_bytes = input_file_bytes(model)
    return model


_JSON_HINT_BYTES = 16 << 20
"""Largest file `_json_hint` reads: a model header, not weights."""


def _json_hint(p: Path) -> str:
    """What is wrong with a file that is JSON but none of ours ("" when it is not JSON): cut
    short (the usual reason a TF.js model.json renamed or downloaded halfway is not
    recognised), invalid, or valid JSON of another kind."""
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            start = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
            if size > _JSON_HINT_BYTES or start[:1] not in (b"{", b"["):
                return ""
            fh.seek(0)
            data = fh.read(size)
    except OSError:
        return ""
    text = data.decode("utf-8-sig", errors="replace").strip()
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text) - 1 or "Unterminated" in exc.msg:
            return f"truncated JSON: {len(data)} bytes end before the document does ({exc.msg})"
        return f"JSON that is not valid: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return "JSON nested too deeply to be a model file"
    return "JSON, but neither a TF.js model.json nor a TF.js weights manifest"


def input_file_bytes(model: Model) -> int | None:
    """Bytes of every file the input is made of, as on disk: model.json and the shards its
    manifest names (TF.js), the index and every shard (sharded safetensors, split GGUF), else
    the file itself. None when a file cannot be measured."""
    files = [model.path] if model.path.is_file() else []
    files += [Path(f) for f in model.metadata.get("source_files", ())]
    manifest = model.metadata.get("weights_manifest")
    if isinstance(manifest, list):
        folder = model.path.parent
        for group in manifest:
            paths = group.get("paths", []) if isinstance(group, dict) else []
            files += [folder / p for p in paths if isinstance(p, str)]
    files += _onnx_external_files(model)
    try:
        measured = sum(os.stat(f).st_size for f in dict.fromkeys(p.resolve() for p in files))
    except OSError:
        return None
    # A file cannot hold less than its tensors: a side file no rule above names still counts.
    # Only a tensor stored quantized needs the scheme families to size it (`info` of a float
    # model imports none of them).
    stored = 0
    for t in model:
        if t.info.stored is None:
            stored += t.info.nbytes
        else:
            from inspector.core.totals import input_stored_nbytes

            stored += input_stored_nbytes(t.info)
    return max(measured, stored) or None


def _onnx_external_files(model: Model) -> list[Path]:
    """The external-data files an ONNX model's initializers point to (beside the model)."""
    proto = model.metadata.get("onnx_proto")
    graph = getattr(proto, "graph", None)
    out: list[Path] = []
    for t in getattr(graph, "initializer", ()):
        for entry in getattr(t, "external_data", ()):
            if entry.key == "location" and entry.value:
                out.append(model.path.parent / entry.value)
    return out


_load_builtin()
