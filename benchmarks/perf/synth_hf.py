"""Synthetic Hugging Face checkpoints for the benchmarks: sharded safetensors with an index, and
a PyTorch `.bin` in torch.save's zip layout, written without torch.

The `.bin` is what `torch.save(state_dict)` writes: `archive/data.pkl` (pickle protocol 2,
`_rebuild_tensor_v2` of `HalfStorage`/`FloatStorage` persistent ids), `archive/version`,
`archive/byteorder` and one stored record `archive/data/<i>` per tensor.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
import struct
import sys
import types
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["torch_state_dict_pickle", "write_sharded", "write_torch_zip"]

_ST = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
_STORAGE = {"float32": "FloatStorage", "float16": "HalfStorage", "bfloat16": "BFloat16Storage"}


def write_sharded(
    folder: Path, tensors: Iterable[tuple[str, np.ndarray]], max_bytes: int = 5 * 10**9
) -> list[Path]:
    """Shards of at most `max_bytes` (huggingface_hub's rule) plus the index; returns files."""
    shards: list[list[tuple[str, np.ndarray]]] = [[]]
    size = 0
    for name, arr in tensors:
        if shards[-1] and size + arr.nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, arr))
        size += arr.nbytes
    n = len(shards)
    weight_map, total, files = {}, 0, []
    for i, shard in enumerate(shards, 1):
        path = folder / f"model-{i:05d}-of-{n:05d}.safetensors"
        _write_one(path, shard)
        files.append(path)
        for name, arr in shard:
            weight_map[name] = path.name
            total += arr.nbytes
    index = folder / "model.safetensors.index.json"
    doc = {"metadata": {"total_size": total}, "weight_map": weight_map}
    index.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return [index, *files]


def _write_one(path: Path, tensors: list[tuple[str, np.ndarray]]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, arr in tensors:
        code = _ST[arr.dtype.name]
        header[name] = {
            "dtype": code,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        offset += arr.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text)
        for _, arr in tensors:
            fh.write(memoryview(np.ascontiguousarray(arr)).cast("B"))


class _Storage:
    def __init__(self, key: str, dtype: str, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel


class _Tensor:
    """Pickles as torch.Tensor does: `_rebuild_tensor_v2(storage, offset, size, stride, …)`."""

    def __init__(self, storage: _Storage, shape: tuple[int, ...]) -> None:
        self.storage, self.shape = storage, shape

    def __reduce__(self) -> tuple:
        strides = tuple(int(np.prod(self.shape[k + 1 :])) for k in range(len(self.shape)))
        args = (self.storage, 0, self.shape, strides, False, collections.OrderedDict())
        return _TORCH["torch._utils"]._rebuild_tensor_v2, args


def _fake_torch() -> dict[str, types.ModuleType]:
    """Modules named like torch's, holding objects whose names pickle writes as GLOBALs."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: object) -> None:  # never called: only its name is pickled
        raise NotImplementedError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    for name in _STORAGE.values():
        setattr(torch, name, type(name, (), {"__module__": "torch", "__qualname__": name}))
    return {"torch": torch, "torch._utils": utils}


_TORCH = _fake_torch()


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> tuple | None:
        if isinstance(obj, _Storage):
            kind = getattr(_TORCH["torch"], _STORAGE[obj.dtype])
            return ("storage", kind, obj.key, "cpu", obj.numel)
        return None


def torch_state_dict_pickle(entries: list[tuple[str, str, tuple[int, ...]]]) -> bytes:
    """data.pkl of an OrderedDict {name: tensor} whose i-th tensor is storage record `i`,
    pickled (protocol 2) as torch.save pickles it."""
    sd = collections.OrderedDict(
        (name, _Tensor(_Storage(str(i), dtype, int(np.prod(shape))), shape))
        for i, (name, dtype, shape) in enumerate(entries)
    )
    saved = {k: sys.modules.get(k) for k in _TORCH}
    sys.modules.update(_TORCH)
    try:
        buf = io.BytesIO()
        _Pickler(buf, protocol=2).dump(sd)
        return buf.getvalue()
    finally:
        for k, mod in saved.items():
            if mod is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = mod


def write_torch_zip(path: Path, tensors: Iterable[tuple[str, np.ndarray]]) -> None:
    """A torch.save-style zip: data.pkl, then one stored record per tensor (streamed)."""
    tensors = list(tensors)
    archive = path.stem
    entries = [(n, a.dtype.name, tuple(a.shape)) for n, a in tensors]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(f"{archive}/data.pkl", torch_state_dict_pickle(entries))
        zf.writestr(f"{archive}/byteorder", "little")
        for i, (_, arr) in enumerate(tensors):
            info = zipfile.ZipInfo(f"{archive}/data/{i}")
            with zf.open(info, "w", force_zip64=True) as fh:
                flat = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
                for s in range(0, flat.size, 64 << 20):
                    fh.write(flat[s : s + (64 << 20)])
        zf.writestr(f"{archive}/version", "3\n")
