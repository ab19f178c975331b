"""The export matrix whose bytes must not change across refactors (issue 12).

`python tests/export/golden_exports.py` (re)writes `data/export_hashes.json`: the sha256 of every
file each (input, format, scheme) export writes. `test_golden_hashes.py` exports the same matrix
and compares. Only regenerate when an export is *meant* to change, and say why in the commit.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared" / "models").resolve()
HASHES = Path(__file__).with_name("data") / "export_hashes.json"

ALL_SCHEMES = (
    "float32",
    "float16",
    "bfloat16",
    "uint8",
    "uint16",
    "affine4",
    "affine12",
    "int8",
    "int4",
    "int4:group=8",
    "int8:clip=mse",
    "kmeans3",
    "kmeans8",
    "uint8:sparsity=0.5",
    "float16:sparsity=0.3",
    "uint8:clip=percentile:99",
    "affine6:clip=mse",
)
FEW_SCHEMES = ("float16", "uint8", "int8", "int4", "kmeans4")

# (case name, input path relative to REPO or SHARED, formats, schemes)
CASES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "convnet-h5",
        "resources/digits_convnet/digits_convnet.h5",
        ("tfjs", "keras", "safetensors", "npz"),
        ALL_SCHEMES,
    ),
    (
        "convnet-keras",
        "resources/digits_convnet/digits_convnet.keras",
        ("keras", "safetensors"),
        FEW_SCHEMES,
    ),
    ("convnet-tfjs", "resources/digits_convnet/tfjs/model.json", ("tfjs", "npz"), FEW_SCHEMES),
    (
        "depthwise-h5",
        "resources/digits_depthwise/digits_depthwise.h5",
        ("tfjs", "keras", "safetensors"),
        FEW_SCHEMES,
    ),
    ("mlp-tfjs", "resources/diabetes_mlp/tfjs/model.json", ("tfjs", "safetensors"), FEW_SCHEMES),
    ("fer-h5", "@keras-h5-fer-emotion/emotion_model.hdf5", ("tfjs", "keras"), FEW_SCHEMES),
    ("blazeface-tfjs", "@tfjs-graph-human-blazeface-f32/model.json", ("tfjs",), FEW_SCHEMES),
    (
        "silero-safetensors",
        "@safetensors-silero-vad-16k/silero_vad_16k.safetensors",
        ("safetensors", "npz"),
        ALL_SCHEMES,
    ),
    (
        "rapidocr-onnx",
        "@onnx-rapidocr-cls-v2/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        ("onnx", "safetensors"),
        ("float16", "uint8", "int4"),
    ),
    (
        "pitch-onnx",
        "@onnx-basic-pitch-nmp/nmp.onnx",
        ("onnx", "npz"),
        ("float16", "uint8", "int8", "int4", "kmeans4"),
    ),
)
_SUFFIX = {
    "tfjs": "",
    "keras": ".h5",
    "safetensors": ".safetensors",
    "npz": ".npz",
    "onnx": ".onnx",
}


def input_path(rel: str) -> Path:
    return SHARED / rel[1:] if rel.startswith("@") else REPO / rel


def matrix() -> Iterator[tuple[str, Path, str, str]]:
    for case, rel, formats, schemes in CASES:
        for fmt in formats:
            for spec in schemes:
                yield f"{case}|{fmt}|{spec}", input_path(rel), fmt, spec


def digest(out: Path) -> str:
    """sha256 over (relative name, content) of every file written, in name order.

    HDF5 files (and the weights inside a `.keras` zip) are hashed by content — every group,
    attribute and dataset in order — because libhdf5 stamps object headers differently from
    run to run, so two identical exports differ in a few header bytes.
    """
    h = hashlib.sha256()
    files = sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else [out]
    for p in files:
        h.update(str(p.relative_to(out) if out.is_dir() else p.name).encode() + b"\0")
        _content(h, p.read_bytes())
    return h.hexdigest()


def _content(h: Any, data: bytes) -> None:
    if data[:8] == b"\x89HDF\r\n\x1a\n":
        _hdf5(h, data)
    elif data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                h.update(info.filename.encode() + b"\0" + bytes([info.compress_type]))
                _content(h, zf.read(info))
    else:
        h.update(data)


def _hdf5(h: Any, data: bytes) -> None:
    import h5py
    import numpy as np

    def attrs(obj: Any) -> None:
        for key in sorted(obj.attrs):
            h.update(key.encode() + b"=" + repr(np.asarray(obj.attrs[key]).tolist()).encode())

    def walk(group: Any) -> None:
        attrs(group)
        for key in group:  # creation order is what Keras loads by; h5py lists by name
            obj = group[key]
            h.update(b"/" + key.encode())
            if isinstance(obj, h5py.Dataset):
                h.update(str(obj.dtype).encode() + repr(obj.shape).encode())
                h.update(np.ascontiguousarray(obj[()]).tobytes())
                attrs(obj)
            else:
                walk(obj)

    with h5py.File(io.BytesIO(data), "r") as f:
        walk(f)


def export_digest(src: Path, fmt: str, spec: str, tmp: Path) -> str:
    from inspector.core.plan import Plan
    from inspector.formats import open_model
    from inspector.formats.export import export_model

    suffix = ".keras" if fmt == "keras" and src.suffix == ".keras" else _SUFFIX[fmt]
    out = tmp / f"out{suffix}"
    with open_model(src) as model:
        export_model(model, Plan().with_default(spec), fmt, out)
    return digest(out)


def safe_digest(src: Path, fmt: str, spec: str, tmp: Path) -> str:
    """The digest, or `refused: <error class>` for an export the product refuses today."""
    from inspector.core.errors import InspectorError

    try:
        return export_digest(src, fmt, spec, tmp)
    except InspectorError as exc:
        return f"refused: {type(exc).__name__}"


def main() -> int:
    hashes: dict[str, str] = {}
    for key, src, fmt, spec in matrix():
        if not src.exists():
            print(f"missing {src}", file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory() as tmp:
            hashes[key] = safe_digest(src, fmt, spec, Path(tmp))
        print(key, hashes[key][:12], flush=True)
    HASHES.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    print(f"{len(hashes)} exports -> {HASHES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
