"""Boundary checks shared by every reader: JSON, shapes, names, paths and byte ranges.

Model files come from the internet, so everything a header declares is validated here before it
is trusted: a shape must be a list of non-negative ints whose element count fits in the bytes
the file actually holds, a relative path must stay inside the model's folder, and a byte range
must lie inside its file. Every failure is a `FormatError` naming the file and the tensor.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from inspector.core.errors import FormatError

__all__ = [
    "MAX_JSON_BYTES",
    "check_shape",
    "check_unique",
    "contained_path",
    "keras_channel_axis",
    "layer_of",
    "load_json_bytes",
    "read_json_file",
    "read_range",
    "wrap_loader",
]

# A 7B-parameter graph model's model.json is a few MB; anything far larger is not a header.
MAX_JSON_BYTES = 512 * 1024 * 1024


def load_json_bytes(path: str | os.PathLike[str], data: bytes, what: str = "JSON") -> Any:
    """Parse JSON bytes (UTF-8, optional BOM); any syntax or encoding error names `path`."""
    try:
        text = data.decode("utf-8-sig")
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(path, f"{what} is not valid: {exc}") from None


def read_json_file(path: str | os.PathLike[str], what: str = "JSON") -> Any:
    """Read and parse a JSON file no larger than `MAX_JSON_BYTES`."""
    try:
        size = os.path.getsize(path)
        if size > MAX_JSON_BYTES:
            raise FormatError(path, f"{what} is {size} bytes, larger than any model header")
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise FormatError(path, f"cannot read {what}: {exc.strerror or exc}") from None
    return load_json_bytes(path, data, what)


def check_shape(
    path: str | os.PathLike[str],
    name: str,
    shape: Any,
    max_elements: int | None = None,
) -> tuple[int, ...]:
    """A declared shape as a tuple of ints, or a `FormatError`.

    `max_elements` is how many elements the bytes present in the file can hold; a shape
    declaring more (negative, overflowing or absurd dimensions) is rejected before anything
    is allocated.
    """
    if not isinstance(shape, list | tuple):
        raise FormatError(path, f"shape must be a list of integers, got {shape!r:.80}", name)
    dims: list[int] = []
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int | np.integer):
            raise FormatError(path, f"shape must be a list of integers, got {shape!r:.80}", name)
        if d < 0:
            raise FormatError(path, f"negative dimension in shape {list(shape)}", name)
        dims.append(int(d))
    if len(dims) > 64:
        raise FormatError(path, f"shape has {len(dims)} dimensions", name)
    count = math.prod(dims)
    if max_elements is not None and count > max_elements:
        raise FormatError(
            path,
            f"shape {dims} declares {count} elements, more than the file holds "
            f"(at most {max_elements})",
            name,
        )
    return tuple(dims)


def check_unique(path: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Reject a header that names two tensors the same (rules and writers key on names)."""
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise FormatError(path, "duplicate tensor name", n)
        seen.add(n)


def keras_channel_axis(ndim: int, name: str, h5_path: str = "") -> int | None:
    """Output-channel axis of a Keras/TF.js weight: last, except the kernels whose layout puts
    the channels second to last. A DepthwiseConv2D kernel is `(kh, kw, C, multiplier)`: its
    last axis is the depth multiplier (usually 1), so per-channel schemes must use axis −2 or a
    depthwise kernel gets one scale for all channels. Keras 3 names the variable `kernel`, so
    its file path (`layers/depthwise_conv2d/vars/0`) tells the layer class instead.
    """
    if ndim < 2:
        return None
    var = name.rsplit("/", 1)[-1].split(":", 1)[0]
    groups = h5_path.split("/")
    layer_class = groups[groups.index("vars") - 1] if "vars" in groups[1:] else ""
    if var == "depthwise_kernel" or re.match(r"depthwise_conv\d?d(_\d+)?$", layer_class):
        return -2
    if re.match(r"conv\dd_transpose(_\d+)?$", layer_class):
        return -2
    return -1


def layer_of(name: str, sep: str) -> str:
    """The layer part of a tensor name: everything before the last `sep` (the name itself
    when it has none), so tensors of one layer group together."""
    head, found, _ = name.rpartition(sep)
    return head if found and head else name


def contained_path(base_dir: Path, rel: Any, source: str | os.PathLike[str]) -> Path:
    """`base_dir / rel`, refusing anything that leaves `base_dir`.

    Rejects non-strings, absolute and drive paths, `..` components and symlinks whose target
    lies outside the folder, so a downloaded manifest cannot make us read `/etc/passwd`.
    """
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        raise FormatError(source, f"weight file path must be a non-empty string, got {rel!r:.80}")
    norm = rel.replace("\\", "/")
    if (
        PurePosixPath(norm).is_absolute()
        or PureWindowsPath(rel).drive
        or ".." in PurePosixPath(norm).parts
    ):
        raise FormatError(source, f"weight file path {rel!r} leaves the model's folder")
    candidate = base_dir / norm
    try:
        inside = candidate.resolve().is_relative_to(base_dir.resolve())
    except (OSError, RuntimeError) as exc:
        raise FormatError(source, f"weight file path {rel!r} cannot be resolved: {exc}") from None
    if not inside:
        raise FormatError(source, f"weight file path {rel!r} links outside the model's folder")
    return candidate


def read_range(
    segments: Sequence[tuple[Path, int, int]], source: str | os.PathLike[str], tensor: str
) -> np.ndarray:
    """Concatenate byte ranges `(file, offset, length)` into one new uint8 array.

    A range that runs past the end of its file (the file shrank since opening) is a
    `FormatError` naming that file and the tensor.
    """
    total = sum(n for _, _, n in segments)
    out = np.empty(total, dtype=np.uint8)
    view = memoryview(out.data)
    pos = 0
    for file, offset, length in segments:
        try:
            with open(file, "rb") as fh:
                fh.seek(offset)
                got = fh.readinto(view[pos : pos + length])
        except OSError as exc:
            raise FormatError(file, f"cannot read: {exc.strerror or exc}", tensor) from None
        if got != length:
            raise FormatError(file, f"file ends {length - got} bytes early", tensor)
        pos += length
    del view
    return out


def wrap_loader(path: str | os.PathLike[str], tensor: str, exc: Exception) -> FormatError:
    """A `FormatError` for an unexpected failure while reading a tensor's bytes."""
    if isinstance(exc, FormatError):
        return exc
    return FormatError(path, f"cannot read values: {exc}", tensor)
