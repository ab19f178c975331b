"""Terminal-safe text: what the CLI prints of names it read from a user's file.

Tensor, layer and file names come from untrusted files. Printed raw, a newline in a name fakes
a second output line and an escape sequence (`ESC [ 2 J`, OSC 52, a bidi override) drives the
terminal. Everything the CLI prints therefore goes through `escape` (names inside one-line
messages and table cells) or through `SafeStream` (every line on stdout/stderr: control
characters other than the line breaks the CLI itself writes become visible escapes).
Invalid UTF-8 in a file name (decoded by Python as lone surrogates) is shown as `\\xNN` instead
of failing to print. Error lines are capped (`error_line`) so a hostile file cannot produce a
screenful of text, while the file and tensor names stay readable at both ends.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any, TextIO

from inspector.core.errors import FormatError

__all__ = ["SafeStream", "cap", "error_line", "escape"]

MAX_ERROR_CHARS = 1000
"""Longest error line the CLI prints (characters, before the `quant-inspector: error: ` tag)."""
MAX_NAME_CHARS = 300
"""Longest file or tensor name inside an error line; longer ones keep both ends."""

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape_char(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of invalid UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    return not ch.isprintable() and unicodedata.category(ch) in _UNSAFE_CATEGORIES


def escape(text: object, keep: str = "") -> str:
    """`text` with every control, format (bidi, zero-width), separator and unpaired surrogate
    character shown as a backslash escape; characters in `keep` (e.g. "\\n") pass unchanged.
    Backslashes themselves are left alone (Windows paths stay readable). Linear time: only
    characters outside printable ASCII are looked at one by one (`--json` output is ASCII)."""
    s = str(text)
    if s.isprintable():
        return s

    def one(m: re.Match[str]) -> str:
        ch = m.group()
        return _escape_char(ch) if _unsafe(ch) else ch

    return _candidates(keep).sub(one, s)


@functools.lru_cache(maxsize=8)
def _candidates(keep: str) -> re.Pattern[str]:
    """Characters that may need escaping: everything but printable ASCII and `keep`."""
    return re.compile(f"[^\\x20-\\x7e{re.escape(keep)}]")


def cap(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters by an ellipsis in the middle, so both the
    beginning (folders, the first words) and the end (the file or tensor name) stay."""
    if len(text) <= limit:
        return text
    head = max(1, (limit - 1) * 2 // 3)
    tail = max(0, limit - 1 - head)
    return text[:head] + "…" + (text[-tail:] if tail else "")


def error_line(exc: BaseException) -> str:
    """One printable line for an error: a `FormatError`'s file, tensor and reason each escaped
    and capped (the names at `MAX_NAME_CHARS`, the whole at `MAX_ERROR_CHARS`)."""
    if isinstance(exc, FormatError):
        where = cap(escape(exc.path), MAX_NAME_CHARS)
        if exc.tensor:
            where += f": tensor '{cap(escape(exc.tensor), MAX_NAME_CHARS)}'"
        room = max(MAX_ERROR_CHARS - len(where) - 2, MAX_ERROR_CHARS // 3)
        return f"{where}: {cap(escape(exc.reason), room)}"
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{cap(escape(exc.filename), MAX_NAME_CHARS)}: " if exc.filename else ""
        return where + cap(escape(exc.strerror), MAX_ERROR_CHARS - len(where))
    return cap(escape(exc), MAX_ERROR_CHARS)


class SafeStream:
    """A text stream that escapes what a terminal would interpret (see `escape`), keeping the
    newlines and tabs the CLI writes itself. Everything else is delegated to `raw`."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(escape(text, keep="\n\t"))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)
