"""Atomic writes: an export either appears whole at its path or not at all.

Everything is written inside a private *workspace*: a hidden folder `.qi-<pid>-<random>.tmp`
created (mode 0700) in the output's own folder, so the final `os.replace` is a rename on one
file system, never a copy. The workspace holds the payload (`payload`, a file or a folder), any
scratch files a writer needs beside it, and, while an existing output is being replaced, the old
one (`old`). A failure, a cancel or an exception removes the workspace and leaves whatever was at
the output path untouched; success renames the payload into place, then removes the workspace.

A writer killed with `kill -9` leaves its workspace behind. `sweep_stale_temporaries` removes
such leftovers, but only ones it can verify this program made: a real folder (not a symlink)
owned by this user, named like a workspace, holding a marker file whose JSON names the folder
itself and the writer's process (id, start time, boot) — and that process is gone. A user's
file or folder whose *name* merely looks like a temporary is never touched. When the killed
writer had already moved the old output aside and the output path is empty, the sweep puts the
old output back. Workspace names are short (< 40 bytes), so any output name the file system
allows (up to NAME_MAX, 255 bytes) works.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from inspector.core.errors import FormatError

__all__ = [
    "MARKER",
    "WriteError",
    "atomic_dir",
    "atomic_file",
    "atomic_path",
    "check_output",
    "fsync_dir",
    "in_workspace",
    "sweep_stale_temporaries",
]

MARKER = ".quant-inspector-workspace"
"""The marker file inside each workspace (JSON: magic, workspace, pid, start, boot, target)."""
_MAGIC = "quant-inspector atomic-write workspace v1"
_WORKSPACE = re.compile(r"^\.qi-(\d{1,10})-[A-Za-z0-9_]{1,16}\.tmp$")
_MAX_MARKER_BYTES = 1 << 16
_PAYLOAD = "payload"
_OLD = "old"


class WriteError(FormatError):
    """The system refused to write the output (disk full, quota, read-only, name too long)."""


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux); "" where unknown."""
    with contextlib.suppress(OSError, IndexError):
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        return stat_line.rpartition(")")[2].split()[19]
    return ""


def _workspace(target: Path) -> Path:
    """A new private workspace beside `target`, with its marker written first."""
    pid = os.getpid()
    ws = Path(tempfile.mkdtemp(prefix=f".qi-{pid}-", suffix=".tmp", dir=target.parent))
    doc = {
        "magic": _MAGIC,
        "workspace": ws.name,
        "pid": pid,
        "start": _start_time(pid),
        "boot": _boot_id(),
        "target": target.name,
    }
    try:
        fd = os.open(ws / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
    except BaseException:
        shutil.rmtree(ws, ignore_errors=True)
        raise
    return ws


def _marker(entry: Path) -> dict[str, Any] | None:
    """The verified marker of a workspace folder of ours, else None (never follows links)."""
    m = _WORKSPACE.match(entry.name)
    if m is None:
        return None
    try:
        st = os.lstat(entry)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            return None
        fd = os.open(entry / MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            raw = fh.read(_MAX_MARKER_BYTES + 1)
        doc = json.loads(raw) if len(raw) <= _MAX_MARKER_BYTES else None
    except (OSError, ValueError):
        return None
    if (
        not isinstance(doc, dict)
        or doc.get("magic") != _MAGIC
        or doc.get("workspace") != entry.name
        or doc.get("pid") != int(m.group(1))
        or not isinstance(doc.get("target"), str)
    ):
        return None
    return doc


def _writer_alive(doc: dict[str, Any]) -> bool:
    """Whether the process that made a workspace still runs (a reused pid is not it)."""
    pid = int(doc["pid"])
    if doc.get("boot") and _boot_id() and doc["boot"] != _boot_id():
        return False
    if not _alive(pid):
        return False
    started = _start_time(pid)
    return not (doc.get("start") and started and started != doc["start"])


def sweep_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the workspaces of dead writers in `target`'s folder (verified by their marker,
    never by name alone); put an old output a dead writer had moved aside back at its path
    when nothing is there. Returns the workspaces removed."""
    parent = _absolute(Path(target)).parent
    removed: list[Path] = []
    try:
        entries = [e for e in parent.iterdir() if _WORKSPACE.match(e.name)]
    except OSError:
        return removed
    for entry in entries:
        doc = _marker(entry)
        if doc is None or _writer_alive(doc):
            continue
        _restore_old(entry, parent, str(doc["target"]))
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _restore_old(ws: Path, parent: Path, name: str) -> None:
    old, dest = ws / _OLD, parent / name
    if name in ("", ".", "..") or "/" in name or not os.path.lexists(old):
        return
    if not os.path.lexists(dest):
        with contextlib.suppress(OSError):
            os.rename(old, dest)


def in_workspace(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> bool:
    """Whether `path` lies inside a write workspace beside `out` (so an error naming it
    should name `out` instead)."""
    folder = _absolute(Path(out)).parent
    try:
        rel = _absolute(Path(path)).relative_to(folder)
    except ValueError:
        return False
    return bool(rel.parts) and _WORKSPACE.match(rel.parts[0]) is not None


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


def _absolute(path: Path) -> Path:
    """`path` made absolute with `.`/`..` folded (`-o .` is the current folder by its name)."""
    return Path(os.path.abspath(path))


def check_output(
    out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]], force: bool
) -> Path:
    """Validate an output path before any work: never an input, never silently replaced.

    Refuses `out` when it is (or contains, or lies inside a folder that is) one of `inputs`,
    when it exists and `force` is false, when it is (or contains) the current folder, and when
    its parent folder does not exist. Sweeps dead writers' workspaces from that folder.
    """
    path = Path(out)
    full = _absolute(path)
    if not full.name:
        raise FormatError(path, "is not a file or folder name; choose an output path")
    for src in inputs:
        if _overlaps(path, Path(src)):
            raise FormatError(path, f"refusing to write over the input {src}")
    if os.path.lexists(full) and not force:
        raise FormatError(path, "already exists (use --force to replace it)")
    kind = _special_kind(full)
    if kind:
        raise FormatError(path, f"is a {kind}, not a file or folder an export can replace")
    if force and full.is_dir() and _holds_cwd(full):
        raise FormatError(
            path, "is the current folder (or holds it); replacing it would delete the folder "
            "you are in: choose a new folder name"
        )  # fmt: skip
    if not full.parent.is_dir():
        raise FormatError(path, f"folder {full.parent} does not exist")
    sweep_stale_temporaries(full)
    return path


def _special_kind(path: Path) -> str:
    """ "device", "FIFO" or "socket" for such a path (after links), "" otherwise: renaming an
    export over `/dev/null` would replace the device itself."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    return "socket" if stat.S_ISSOCK(mode) else ""


def _holds_cwd(folder: Path) -> bool:
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return False
    return cwd == folder.resolve() or cwd.is_relative_to(folder.resolve())


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
    with atomic_path(path) as tmp, _write_errors(path), open(tmp, "wb") as fh:
        yield fh


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file path (for libraries that open files by name, such as h5py)
    that becomes `path` only when the `with` block ends without error. Scratch files the
    writer puts beside the yielded path (same folder) are removed with it."""
    target = _absolute(Path(path))
    with _write_errors(path):
        ws = _workspace(target)
    tmp = ws / _PAYLOAD
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        yield tmp
        with _write_errors(path):
            _fsync_file(tmp)
            _chmod(tmp, 0o666)
            if target.is_dir() and not target.is_symlink():
                raise FormatError(path, "is a folder; remove it or choose another output path")
            os.replace(tmp, target)
            fsync_dir(target.parent)
    finally:
        shutil.rmtree(ws, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes `path` when the `with` block succeeds.

    Files written into it are fsync'ed before the rename. An existing `path` (the caller has
    checked `force`) is moved into the workspace, and removed once the new folder is in place.
    """
    target = _absolute(Path(path))
    with _write_errors(path):
        ws = _workspace(target)
    tmp = ws / _PAYLOAD
    try:
        tmp.mkdir(mode=0o700)
        yield tmp
        with _write_errors(path):
            for f in tmp.rglob("*"):
                if f.is_file():
                    _fsync_file(f)
            fsync_dir(tmp)
            _chmod(tmp, 0o777)
            for f in tmp.rglob("*"):
                _chmod(f, 0o777 if f.is_dir() else 0o666)
            _replace(tmp, target, ws / _OLD)
            fsync_dir(target.parent)
    finally:
        shutil.rmtree(ws, ignore_errors=True)


@contextlib.contextmanager
def _write_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """A system error while writing or renaming (disk full, quota, read-only file system)
    becomes a FormatError naming the output the user chose, not the hidden temporary."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise WriteError(path, f"cannot write: {exc.strerror or exc}") from exc


def _replace(tmp: Path, target: Path, old: Path) -> None:
    """Rename `tmp` to `target`; an existing `target` is first moved to `old` (inside the
    workspace, so the sweep can put it back if this process dies in between)."""
    if not os.path.lexists(target):
        os.replace(tmp, target)
        return
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (`os.umask` can only
    set it: setting it to 0 for a moment would let other threads create world-writable files)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _chmod(path: str | Path, mode: int) -> None:
    """Temporary files are private (0600/0700); the result gets the usual umask mode."""
    with contextlib.suppress(OSError):
        os.chmod(path, mode & ~_umask())
