"""Tensor bytes of big files: memory maps (GGUF headers) and positional reads
(`PositionalFile`: safetensors, GGUF and PyTorch values).

A mapped file's pages count in the process's RSS once touched, so `ResidentPages` gives back the
pages of all but the last few tensors loaded (`madvise(MADV_DONTNEED)`: they stay in the page
cache and a later access faults them back in). Touching mapped pages past the end of a file that
shrank since it was opened kills the process with SIGBUS, so `mapped_bytes` checks the file's
size before every access and raises a `FormatError` instead — but a view handed out can still be
touched after another process truncates the file. `PositionalFile` reads each tensor into its own
array with `os.preadv` instead: a truncated file is a short read, hence a clean error, whenever
it happens; the cost is one copy of the stored bytes per load.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import threading
from collections import deque
from pathlib import Path

import numpy as np

from inspector.core.errors import FormatError

__all__ = [
    "READ_AHEAD",
    "PositionalFile",
    "ResidentPages",
    "check_regular",
    "close_map",
    "map_file",
    "mapped_bytes",
]


READ_AHEAD = 256 << 20
"""Bytes past the last tensor loaded that the kernel is asked to read in the background
(`MADV_WILLNEED`): a preview walks tensors in file order, so the disk reads the next tensors
while the cores compute this one, instead of stalling on page faults one 128 KiB readahead
window at a time. The pages land in the page cache, not in the process's RSS."""


class ResidentPages:
    """Keeps the mapped pages of the last `keep` tensors loaded and drops older ones from
    the process (`MADV_DONTNEED` on a read-only file map: the data is unchanged, a later
    access reads it back from the page cache), and asks the kernel to read the next
    `READ_AHEAD` bytes ahead. Thread-safe; a no-op without `mmap.madvise`."""

    def __init__(self, mm: mmap.mmap | None, keep: int = 4) -> None:
        self._mm, self._keep = mm, keep
        self._recent: deque[tuple[int, int]] = deque()
        self._lock = threading.Lock()
        self._ahead = 0  # end of the range already asked for

    def used(self, offset: int, nbytes: int) -> None:
        if self._mm is None or not hasattr(self._mm, "madvise") or nbytes <= 0:
            return
        with self._lock:
            if (offset, nbytes) in self._recent:
                return
            self._recent.append((offset, nbytes))
            old = self._recent.popleft() if len(self._recent) > self._keep else None
            start = max(self._ahead, offset + nbytes)
            stop = min(offset + nbytes + READ_AHEAD, len(self._mm))
            ahead = stop - start >= min(READ_AHEAD // 4, len(self._mm) - start)  # large steps
            if ahead:
                self._ahead = stop
        if old is not None:
            self._release(*old)
        if ahead and start < stop:
            self._advise(mmap.MADV_WILLNEED, start, stop - start)

    def _release(self, offset: int, nbytes: int) -> None:
        self._advise(mmap.MADV_DONTNEED, offset, nbytes)

    def _advise(self, option: int, offset: int, nbytes: int) -> None:
        if self._mm is None:
            return
        start = offset - offset % mmap.PAGESIZE
        with contextlib.suppress(ValueError, OSError):  # closed map, or not supported
            self._mm.madvise(option, start, offset + nbytes - start)


def map_file(path: Path) -> tuple[mmap.mmap | None, int]:
    """A read-only map of the whole file and its size in bytes (None for an empty file).
    Anything but a regular file (a FIFO would block the open forever) is refused first."""
    check_regular(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise FormatError(path, f"cannot read: {reason}") from None
    return mm, size


def check_regular(path: Path) -> None:
    """Refuse a path that is not a regular file (FIFO, device, socket) before opening it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise FormatError(path, f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise FormatError(path, "not a regular file (a pipe, device or socket)")


def mapped_bytes(
    path: Path,
    mm: mmap.mmap | None,
    offset: int,
    nbytes: int,
    tensor: str,
    pages: ResidentPages | None = None,
) -> np.ndarray:
    """A read-only uint8 view of `nbytes` mapped bytes at `offset`, after checking that the file
    still holds them (a shrunk file would SIGBUS on access)."""
    if nbytes == 0 or mm is None:
        return np.zeros(0, dtype=np.uint8)
    try:
        now = os.stat(path).st_size
    except OSError as exc:
        raise FormatError(path, f"cannot read: {exc.strerror or exc}", tensor) from None
    if now < offset + nbytes:
        raise FormatError(path, f"file shrank to {now} bytes since it was opened", tensor)
    try:
        arr = np.frombuffer(mm, dtype=np.uint8, count=nbytes, offset=offset)
    except (ValueError, TypeError) as exc:
        raise FormatError(path, f"cannot read values: {exc}", tensor) from None
    if pages is not None:
        pages.used(offset, nbytes)
    return arr


class PositionalFile:
    """An open file read at offsets (thread-safe: `os.preadv` carries its own position)."""

    def __init__(self, path: Path) -> None:
        check_regular(path)
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise FormatError(path, f"cannot read: {exc.strerror or exc}") from None

    def read(self, offset: int, nbytes: int, tensor: str) -> np.ndarray:
        """`nbytes` bytes at `offset` as a new uint8 array; a file that ends early (it shrank
        since it was opened) is a `FormatError` naming the tensor."""
        out = np.empty(nbytes, dtype=np.uint8)
        view, done = out.data, 0
        fd = self._fd
        if fd is None:
            raise FormatError(self.path, "the model was closed", tensor)
        try:
            while done < nbytes:
                got = os.preadv(fd, [view[done:]], offset + done)
                if got == 0:
                    raise FormatError(
                        self.path, f"file ends {nbytes - done} bytes early (did it shrink?)", tensor
                    )
                done += got
        except OSError as exc:
            raise FormatError(self.path, f"cannot read: {exc.strerror or exc}", tensor) from None
        finally:
            view.release()
        return out

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def close_map(mm: mmap.mmap | None) -> None:
    """Close a map; arrays still viewing it keep it open until they are collected."""
    if mm is None:
        return
    with contextlib.suppress(BufferError):
        mm.close()
