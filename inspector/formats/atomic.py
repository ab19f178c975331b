"""Atomic writes: an export either appears whole at its path or not at all.

Everything is written into a hidden temporary file or folder *in the output's own folder* (so the
final `os.replace` is a rename on one file system, never a copy), flushed and fsync'ed, then
renamed into place. A failure, a cancel or an exception mid-way removes the temporary and leaves
whatever was at the output path before untouched. A multi-file export (TF.js) is a temporary
folder renamed into place; replacing an existing folder (`force`) moves the old one aside first
and deletes it only after the new one is in place.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from inspector.core.errors import FormatError

__all__ = [
    "atomic_dir",
    "atomic_file",
    "atomic_path",
    "check_output",
    "fsync_dir",
    "sweep_stale_temporaries",
]


def _tmp_prefix(target: Path) -> str:
    """Hidden temporaries carry the writer's process id, so a later export can tell the
    leftovers of a killed writer (`kill -9` leaves no chance to clean up) from a live one's."""
    return f".{target.name}.{os.getpid()}."


def sweep_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove temporaries of `target` left by writers that no longer run; returns them."""
    target = Path(target)
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[^/]*\.(tmp|old)(\.body)?$")
    removed: list[Path] = []
    try:
        entries = list(Path(_parent(target)).iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or _alive(int(m.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def check_output(
    out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]], force: bool
) -> Path:
    """Validate an output path before any work: never an input, never silently replaced.

    Refuses `out` when it is (or contains, or lies inside a folder that is) one of `inputs`,
    when it exists and `force` is false, and when its parent folder does not exist.
    """
    path = Path(out)
    for src in inputs:
        if _overlaps(path, Path(src)):
            raise FormatError(path, f"refusing to write over the input {src}")
    if (path.exists() or path.is_symlink()) and not force:
        raise FormatError(path, "already exists (use --force to replace it)")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise FormatError(path, f"folder {parent} does not exist")
    sweep_stale_temporaries(path)
    return path


def _overlaps(out: Path, src: Path) -> bool:
    out_r, src_r = out.resolve(), src.resolve()
    if out_r == src_r or src_r.is_relative_to(out_r):
        return True
    if src.is_dir() and out_r.is_relative_to(src_r):
        return True
    with contextlib.suppress(OSError):
        if out.exists() and os.path.samefile(out, src):
            return True
    return False


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename inside `folder` durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes `path` only when the `with` block ends without error."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        yield fh


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes `path` when the `with` block succeeds.

    Files written into it are fsync'ed before the rename. An existing `path` (the caller has
    checked `force`) is renamed aside and removed once the new folder is in place.
    """
    target = Path(path)
    parent = _parent(target)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), suffix=".tmp", dir=parent))
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                _fsync_file(f)
        fsync_dir(tmp)
        _chmod(tmp, 0o777)
        for f in tmp.rglob("*"):
            _chmod(f, 0o777 if f.is_dir() else 0o666)
        _replace_dir(tmp, target, parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(parent)


def _replace_dir(tmp: Path, target: Path, parent: str) -> None:
    if not (target.exists() or target.is_symlink()):
        os.replace(tmp, target)
        return
    if target.is_dir() and not target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), suffix=".old", dir=parent))
        os.replace(target, old / "x")
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old / "x", target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.unlink(target)
        os.replace(tmp, target)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _chmod(path: str | Path, mode: int) -> None:
    """Temporary files are private (0600/0700); the result gets the usual umask mode."""
    with contextlib.suppress(OSError):
        os.chmod(path, mode & ~_umask())


def _parent(target: Path) -> str:
    return str(target.absolute().parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file path (for libraries that open files by name, such as h5py)
    that becomes `path` only when the `with` block ends without error."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(target), suffix=".tmp", dir=_parent(target))
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync_file(Path(tmp))
        _chmod(tmp, 0o666)
        if target.is_dir() and not target.is_symlink():
            raise FormatError(target, "is a folder; remove it or choose another output path")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(_parent(target))
