"""Pick a reader by looking at a file's content (magic bytes, JSON shape), not only its suffix.

Format names (`Model.format`): `tfjs` (model.json + shards), `tfjs-weights` (bare weights
manifest), `keras-h5` (any Keras HDF5: legacy full model, legacy weights-only, Keras 3
`.weights.h5`), `keras` (Keras 3 `.keras` zip), `safetensors`, `npz`, `onnx` (ONNX protobuf:
no magic bytes, so `.onnx` suffix plus a protobuf-key check of the first byte).
"""

from __future__ import annotations

import importlib
import os
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

from inspector.core.errors import FormatError
from inspector.core.model import Model
from inspector.formats._common import MAX_JSON_BYTES, load_json_bytes

__all__ = ["FORMATS", "open_model", "sniff_format"]

FORMATS: tuple[str, ...] = (
    "tfjs",
    "tfjs-weights",
    "keras-h5",
    "keras",
    "safetensors",
    "npz",
    "onnx",
)

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_JSON_SNIFF_BYTES = 64 * 1024 * 1024


_READERS = {
    "tfjs": ("tfjs.reader", "read_tfjs"),
    "tfjs-weights": ("tfjs.reader", "read_tfjs_weights"),
    "keras-h5": ("keras.h5_reader", "read_keras_h5"),
    "keras": ("keras.zip_reader", "read_keras_zip"),
    "safetensors": ("safetensors.reader", "read_safetensors"),
    "npz": ("npz.reader", "read_npz"),
    "onnx": ("onnx.reader", "read_onnx"),
}
# When the content is damaged, the suffix still says which reader gives the precise reason.
_BY_SUFFIX = {
    ".h5": "keras-h5",
    ".hdf5": "keras-h5",
    ".keras": "keras",
    ".safetensors": "safetensors",
    ".npz": "npz",
    ".onnx": "onnx",
}


def _reader(fmt: str) -> Callable[[Path], Model]:
    module, func = _READERS[fmt]
    return getattr(importlib.import_module(f"inspector.formats.{module}"), func)


def sniff_format(path: str | os.PathLike) -> str | None:
    """The format name of `path` judged by its content, or None when it is none of ours.

    A folder counts as TF.js when it holds `model.json`.
    """
    p = Path(path)
    try:
        if p.is_dir():
            return "tfjs" if (p / "model.json").is_file() else None
        with open(p, "rb") as fh:
            head = fh.read(16)
            size = os.fstat(fh.fileno()).st_size
            if _is_hdf5(fh, head):
                return "keras-h5"
    except OSError:
        return None
    if head[:4] in _ZIP_MAGICS:
        return _sniff_zip(p)
    if _is_safetensors(head, size):
        return "safetensors"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        fmt = _sniff_json(p, size)
        if fmt is not None:
            return fmt
    from inspector.formats.onnx.reader import looks_like_onnx

    if looks_like_onnx(p):
        return "onnx"
    return _BY_SUFFIX.get(p.suffix.lower())


def open_model(path: str | os.PathLike) -> Model:
    """Open a model file or folder with the reader its content calls for (headers only)."""
    p = Path(path)
    if not p.exists():
        raise FormatError(p, "no such file or folder")
    fmt = sniff_format(p)
    if fmt is None:
        if p.is_dir():
            raise FormatError(p, "folder holds no model.json")
        raise FormatError(
            p, "not a recognised model file (TF.js, Keras .h5/.keras, safetensors, npz, ONNX)"
        )
    return _reader(fmt)(p)


def _is_hdf5(fh, head: bytes) -> bool:
    if head[:8] == _HDF5_MAGIC:
        return True
    for offset in (512, 1024, 2048, 4096):  # HDF5 user blocks put the signature here
        fh.seek(offset)
        if fh.read(8) == _HDF5_MAGIC:
            return True
    return False


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _sniff_zip(p: Path) -> str | None:
    try:
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return _BY_SUFFIX.get(p.suffix.lower())
    if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
        return "keras"
    if p.suffix.lower() == ".npz" or (names and all(n.endswith(".npy") for n in names)):
        return "npz"
    if p.suffix.lower() == ".keras":
        return "keras"
    return None


def _sniff_json(p: Path, size: int) -> str | None:
    if size > _JSON_SNIFF_BYTES and p.name != "model.json":
        return None
    try:
        with open(p, "rb") as fh:
            # read(n) allocates n bytes up front: ask for what the file holds, not the limit.
            data = fh.read(min(size, MAX_JSON_BYTES) + 1)
        doc = load_json_bytes(p, data)
    except (OSError, FormatError):
        return "tfjs" if p.name == "model.json" else None
    from inspector.formats.tfjs.reader import is_weights_manifest

    if isinstance(doc, dict) and ("weightsManifest" in doc or "modelTopology" in doc):
        return "tfjs"
    if is_weights_manifest(doc):
        return "tfjs-weights"
    return None
