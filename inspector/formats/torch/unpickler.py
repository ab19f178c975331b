"""A restricted unpickler for PyTorch's `data.pkl`: an explicit allowlist, our own stand-ins.

`pickle.Unpickler` turns every global a pickle names (GLOBAL, STACK_GLOBAL, INST, OBJ, EXT*)
into an object through `find_class`; here `find_class` answers only the names below, each with
a stand-in of ours that builds plain data (`TensorRef`, `StorageRef`, dicts, tuples) and runs
nothing else. Any other name — `os.system`, `builtins.eval`, a model class, numpy scalars — is
refused with its name before anything is called: the rule `torch.load(weights_only=True)`
enforces, without importing torch. Storages are never read here: `persistent_load` records
which `data/<key>` record a storage names, its dtype and its element count.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.formats._dtypes import storage_dtype

__all__ = ["DTYPES", "Refused", "StorageRef", "TensorRef", "restricted_load"]

# torch dtype name → (numpy dtype of the bytes, logical dtype name); ml_dtypes' types (bfloat16,
# float8) are unsigned integers of their width here, viewed as themselves at load
DTYPES: dict[str, tuple[np.dtype, str]] = {
    "float32": (np.dtype("<f4"), "float32"),
    "float64": (np.dtype("<f8"), "float64"),
    "float16": (np.dtype("<f2"), "float16"),
    "bfloat16": (storage_dtype("bfloat16"), "bfloat16"),
    "float8_e4m3fn": (storage_dtype("float8_e4m3fn"), "float8_e4m3fn"),
    "float8_e5m2": (storage_dtype("float8_e5m2"), "float8_e5m2"),
    "int64": (np.dtype("<i8"), "int64"),
    "int32": (np.dtype("<i4"), "int32"),
    "int16": (np.dtype("<i2"), "int16"),
    "int8": (np.dtype("i1"), "int8"),
    "uint64": (np.dtype("<u8"), "uint64"),
    "uint32": (np.dtype("<u4"), "uint32"),
    "uint16": (np.dtype("<u2"), "uint16"),
    "uint8": (np.dtype("u1"), "uint8"),
    "bool": (np.dtype("?"), "bool"),
    "complex64": (np.dtype("<c8"), "complex64"),
    "complex128": (np.dtype("<c16"), "complex128"),
}
_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64"}
_ALIASES |= {"int": "int32", "short": "int16", "cfloat": "complex64", "cdouble": "complex128"}
_STORAGES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}


class Refused(pickle.UnpicklingError):
    """The pickle names something outside the allowlist, or builds something malformed."""


@dataclass(frozen=True)
class _Dtype:
    name: str


@dataclass(frozen=True)
class _StorageType:
    dtype: str | None  # None: UntypedStorage (bytes; the tensor names its dtype)


@dataclass(frozen=True)
class StorageRef:
    """A storage the pickle refers to: record `data/<key>`, `numel` items of `dtype`
    (bytes for an untyped storage, `dtype` None)."""

    key: str
    dtype: str | None
    numel: int


@dataclass(frozen=True, eq=False)
class TensorRef:
    """A tensor as `_rebuild_tensor_v2/v3` describes it: a strided view of a storage."""

    storage: StorageRef
    dtype: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


class _Marker:
    """Stand-in for a class the pickle only names (torch.Tensor as `_rebuild_from_type_v2`'s
    new type, OrderedDict's state): holds no behaviour."""

    def __setstate__(self, state: Any) -> None:
        return None


class _OrderedDict(dict):  # type: ignore[type-arg]
    """`collections.OrderedDict` (dicts keep order): a state dict's `_metadata` state is
    dropped instead of set as attributes."""

    def __setstate__(self, state: Any) -> None:
        return None


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Refused(f"{what} must be a non-negative integer, got {value!r:.60}")
    return value


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or len(value) > 64:
        raise Refused(f"{what} must be a tuple of integers, got {value!r:.60}")
    return tuple(_int(v, what) for v in value)


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: str | None) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise Refused(
            f"a tensor's storage must come from the archive, got {type(storage).__name__}"
        )
    dtype = dtype or storage.dtype
    if dtype is None:
        raise Refused("a tensor of an untyped storage names no dtype")
    shape, strides = _ints(size, "tensor size"), _ints(stride, "tensor stride")
    if len(shape) != len(strides):
        raise Refused(f"size {shape} and stride {strides} differ in length")
    return TensorRef(storage, dtype, _int(offset, "storage offset"), shape, strides)


def _rebuild_v2(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> TensorRef:
    return _tensor(storage, offset, size, stride, None)


def _rebuild_v3(
    storage: Any, offset: Any, size: Any, stride: Any, grad: Any, hooks: Any, dtype: Any, *_: Any
) -> TensorRef:
    if not isinstance(dtype, _Dtype):
        raise Refused(f"tensor dtype must be a torch dtype, got {dtype!r:.60}")
    return _tensor(storage, offset, size, stride, dtype.name)


def _parameter(data: Any, *_: Any) -> TensorRef:
    if not isinstance(data, TensorRef):
        raise Refused(f"a parameter must wrap a tensor, got {type(data).__name__}")
    return data


def _from_type(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    if func not in (_rebuild_v2, _rebuild_v3, _parameter) or not isinstance(args, tuple):
        raise Refused("_rebuild_from_type_v2 may only rebuild a tensor")
    return func(*args)


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """`_codecs.encode`, which protocol-2 pickles use to spell bytes objects."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise Refused("_codecs.encode may only turn a str into bytes")
    return text.encode(encoding)


def _device(*args: Any) -> str:
    """`torch.device("cuda", 0)` recorded as text (where a tensor once lived)."""
    return ":".join(str(a) for a in args)[:64]


def _allowed() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): _OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_v3,
        ("torch._utils", "_rebuild_parameter"): _parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _from_type,
        ("torch", "Tensor"): _Marker,
        ("torch.nn.parameter", "Parameter"): _Marker,
        ("torch", "Size"): tuple,
        ("torch", "device"): _device,
        ("torch.storage", "UntypedStorage"): _StorageType(None),
        ("_codecs", "encode"): _encode,
    }
    table.update({("torch", name): _StorageType(dt) for name, dt in _STORAGES.items()})
    table.update({("torch", name): _Dtype(name) for name in DTYPES})
    table.update({("torch", alias): _Dtype(name) for alias, name in _ALIASES.items()})
    return table


_ALLOWED = _allowed()


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, storages: dict[str, StorageRef]) -> None:
        super().__init__(io.BytesIO(data))
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise Refused(f"the pickle calls '{module}.{name}', which is not allowed")
        return found

    def persistent_load(self, pid: Any) -> StorageRef:
        if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage":
            raise Refused(f"unknown persistent id {pid!r:.80}")
        _, stype, key, _location, numel = pid
        if not isinstance(stype, _StorageType) or not isinstance(key, str):
            raise Refused(f"malformed storage reference {pid!r:.80}")
        ref = StorageRef(key, stype.dtype, _int(numel, "storage size"))
        known = self._storages.setdefault(key, ref)
        if known != ref:
            raise Refused(f"storage {key!r} is described two ways")
        return known


def restricted_load(data: bytes) -> tuple[Any, dict[str, StorageRef]]:
    """Unpickle `data` with the allowlist; returns the object and the storages it named.

    Raises `Refused` (an `UnpicklingError`) for anything not allowed or malformed; other
    exceptions of a malformed pickle (EOFError, ValueError, …) pass through for the caller.
    """
    storages: dict[str, StorageRef] = {}
    obj = _Unpickler(data, storages).load()
    return obj, storages
