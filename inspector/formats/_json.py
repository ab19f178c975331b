"""Bounded JSON for model headers: size, nesting depth and number of values, checked before
anything downstream walks the document.

Model headers (TF.js `model.json` and weight manifests, Keras `model_config` and `.keras`
`config.json`, safetensors headers) come from the internet. `json.loads` itself is linear and
needs at most ~25 bytes of Python objects per input byte (`[{},{},…]`, the worst case), so the
memory a parse takes is bounded by the text's size, which callers cap per kind of header
(`MAX_*_BYTES`), before inflating or reading it. What is not bounded by size is what code does
with the document afterwards: a topology nested 1,000 deep passed `json.loads` and then blew
the Python stack in the TF.js export (recursive config translation, `copy.deepcopy`, the JSON
encoder). So every document is walked once, iteratively, and refused when it nests deeper
than `MAX_DEPTH` or holds more than `max_values` values. Real headers nest under 30 levels.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from inspector.core.errors import FormatError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_MODEL_JSON_BYTES",
    "parse_json",
    "read_json",
    "regular_file",
]

MAX_DEPTH = 128
"""Nesting levels any model header may have (Keras configs of nested models: ~20)."""
MAX_MODEL_JSON_BYTES = 32 << 20
"""A TF.js model.json or weights manifest (a large graph model's is a few MB)."""
MAX_CONFIG_BYTES = 16 << 20
"""A Keras `model_config` attribute or `.keras` `config.json` once inflated (~10 kB to ~5 MB)."""
BYTES_PER_CONTAINER = 12
"""Least text per object or list a header may spend (real headers: 26-77, see
`parse_json`)."""


def regular_file(path: str | os.PathLike[str], what: str = "file") -> int:
    """The size of `path` after checking it is a regular file (a FIFO, socket or device
    would block a read forever or never end); a `FormatError` naming it otherwise."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise FormatError(path, f"cannot read {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(path, f"{what} is {file_kind(st.st_mode)}, not a regular file")
    return st.st_size


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def parse_json(
    path: str | os.PathLike[str],
    data: bytes,
    what: str = "JSON",
    *,
    max_depth: int = MAX_DEPTH,
    max_values: int | None = None,
    bytes_per_container: int = BYTES_PER_CONTAINER,
) -> Any:
    """Parse UTF-8 JSON (optional BOM) and check its shape: at most `max_depth` levels of
    nesting and `max_values` values (default: one per input byte, which no real document
    reaches: every value takes at least one byte and a separator). Errors name `path`.

    Before parsing, the text may hold at most one `{` or `[` per `bytes_per_container` bytes
    (strings included, so the count is an upper bound): an empty list or object costs 56-64
    bytes of Python objects for 3 bytes of text (`[{},{},…]`), the costliest thing a parse
    builds. Real headers spend 26-77 bytes of text per container (TF.js layers and graph
    model.json, Keras configs, safetensors headers of the demo and third-party models). With
    that check a parse costs at most ~15 bytes of memory per byte of text (a 2-character
    string per 5 bytes is the costliest remaining case)."""
    containers = data.count(b"{") + data.count(b"[")
    if containers * bytes_per_container > len(data) + 2 * bytes_per_container:
        raise FormatError(
            path,
            f"{what} holds {containers} objects and lists in {len(data)} bytes, more than a "
            f"real header has (at most one per {bytes_per_container} bytes)",
        )
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except RecursionError:
        raise FormatError(path, f"{what} nests deeper than {max_depth} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(path, f"{what} is not valid JSON: {exc}") from None
    check_structure(path, doc, what, max_depth, len(data) if max_values is None else max_values)
    return doc


def check_structure(
    path: str | os.PathLike[str], doc: Any, what: str, max_depth: int, max_values: int
) -> None:
    """Refuse `doc` when it nests deeper than `max_depth` or holds more than `max_values`
    values (iterative: no recursion however deep the document is)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    values = 1
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise FormatError(path, f"{what} nests deeper than {max_depth} levels")
        children = node.values() if isinstance(node, dict) else node
        values += len(children)
        if values > max_values:
            raise FormatError(path, f"{what} holds more than {max_values} values")
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def read_json(path: str | os.PathLike[str], what: str, max_bytes: int) -> Any:
    """Read and parse a regular JSON file of at most `max_bytes` bytes."""
    size = regular_file(path, what)
    if size > max_bytes:
        raise FormatError(path, f"{what} is {size} bytes, more than {max_bytes} allowed")
    try:
        with open(path, "rb") as fh:
            data = fh.read(size + 1)  # read(n) allocates n bytes: ask for what it holds
    except OSError as exc:
        raise FormatError(path, f"cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > min(size, max_bytes):
        raise FormatError(Path(path), f"{what} grew while being read")
    return parse_json(path, data, what)
