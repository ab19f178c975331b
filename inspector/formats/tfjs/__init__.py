"""TF.js: `model.json` (layers or graph model) plus weight shards, and bare weight manifests."""

from __future__ import annotations

from inspector.core.errors import FormatError
from inspector.formats._json import MAX_MODEL_JSON_BYTES, parse_json
from inspector.formats.base import FormatSpec, Probe

__all__ = ["FORMAT", "is_weights_manifest"]

_JSON_SNIFF_BYTES = 64 * 1024 * 1024


def is_weights_manifest(obj: object) -> bool:
    """True for a JSON list of `{paths, weights}` groups (a TF.js weights manifest)."""
    return (
        isinstance(obj, list)
        and len(obj) > 0
        and all(isinstance(g, dict) and "paths" in g and "weights" in g for g in obj)
    )


def _sniff(probe: Probe) -> str | None:
    if probe.is_dir:
        return "tfjs" if (probe.path / "model.json").is_file() else None
    if probe.head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"["):
        return None
    p, size = probe.path, probe.size
    if size > _JSON_SNIFF_BYTES and p.name != "model.json":
        return None
    if size > MAX_MODEL_JSON_BYTES:
        return "tfjs" if p.name == "model.json" else None
    try:
        # read(n) allocates n bytes up front: ask for what the file holds, not the limit.
        doc = parse_json(p, probe.read_at(0, size))
    except OSError:
        return "tfjs" if p.name == "model.json" else None
    except FormatError as exc:
        # A JSON file past the structure limits goes to the reader, which names the limit; one
        # that is not JSON at all (cut short, invalid) and not called model.json is left to the
        # registry, which says truncated or invalid instead of presuming TF.js.
        syntax = "is not valid JSON" in exc.reason
        if p.name == "model.json" or (probe.suffix == ".json" and not syntax):
            return (
                "tfjs" if probe.head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{" else "tfjs-weights"
            )
        return None
    if isinstance(doc, dict) and ("weightsManifest" in doc or "modelTopology" in doc):
        return "tfjs"
    return "tfjs-weights" if is_weights_manifest(doc) else None


FORMAT = FormatSpec(
    name="tfjs",
    label="TF.js (model.json + shards)",
    readers={
        "tfjs": "inspector.formats.tfjs.reader:read_tfjs",
        "tfjs-weights": "inspector.formats.tfjs.reader:read_tfjs_weights",
    },
    sniff=_sniff,
    open_patterns=("model.json", "*.json"),
    writer="inspector.formats.tfjs.writer:write",
    target="inspector.formats.tfjs.writer:TFJS",
    writes_folder=True,
    input_folder=True,
    export_fields=frozenset({"shard_bytes", "weights_only"}),
    menu_rank=10,
)
