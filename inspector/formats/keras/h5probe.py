"""Crash isolation for untrusted HDF5: walk a file's metadata in a child process first.

libhdf5 can segfault or loop forever on some corrupt files (a variable-length string attribute
with a damaged global-heap reference crashes inside H5Aread) before any Python check runs.
Before a reader opens an `.h5` file (or a `.keras` zip's weights member) in-process,
`probe_hdf5` asks a child running this file as a script, `python .../h5probe.py --serve` (no
shell; the child imports only h5py, not the inspector package): the child opens the file,
visits every group and dataset, reads every attribute and each dataset's shape, dtype and
storage layout — everything the readers touch except tensor bytes — and answers. A child
killed by a signal or silent past the timeout becomes a `FormatError`; a Python-level error
in the child is left to the in-process reader, which reports it precisely.

Cost: the probe child is long-lived (`h5probe.py --serve`, one walk per line of stdin), so
only its first use pays the interpreter start and the h5py import (~0.15-0.25 s on the 2-core
reference machine); each later probe costs the walk itself (~1 ms per few hundred objects) plus
a pipe round trip. The window starts the child when it opens (`warm()`), so opening an `.h5`
there never waits for it. A child that crashes or hangs is replaced by a new one on the next
probe. Other formats never pay anything.
Environment:
- `QUANT_INSPECTOR_H5_PROBE=0` skips the probe (benchmarks, trusted files);
- `QUANT_INSPECTOR_H5_PROBE_TIMEOUT=S` sets the timeout in seconds (default 30).
The child limits its address space to 8 GiB so a corrupt size cannot exhaust memory. A file
that passed is not probed again while its path, inode, size and modification time are unchanged
(a per-process set: reopening a model, export after preview, the test suite's demo files).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["ENV_DISABLE", "ENV_TIMEOUT", "probe_hdf5", "walk", "warm"]

ENV_DISABLE = "QUANT_INSPECTOR_H5_PROBE"
ENV_TIMEOUT = "QUANT_INSPECTOR_H5_PROBE_TIMEOUT"
_DEFAULT_TIMEOUT = 30.0
_CHILD_MEMORY = 8 << 30
_PASSED: set[tuple[Any, ...]] = set()


def _timeout() -> float:
    try:
        value = float(os.environ.get(ENV_TIMEOUT, _DEFAULT_TIMEOUT))
    except ValueError:
        return _DEFAULT_TIMEOUT
    return value if value > 0 else _DEFAULT_TIMEOUT


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def _disabled() -> bool:
    return os.environ.get(ENV_DISABLE, "1").strip().lower() in ("0", "false", "no", "off")


class _Server:
    """The long-lived probe child: one JSON request line in, one reply line out ("ok", or
    "err" for a Python-level error the in-process reader will report). A crash shows as end
    of output, a hang as no reply within the timeout; either way the child is gone and the
    next request starts a new one. One request at a time (a lock); a forked process never
    uses its parent's child (the pipes are shared), it starts its own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = os.getpid()

    def _running(self) -> subprocess.Popen[bytes]:
        if self.pid != os.getpid():  # inherited across fork: leave it to the parent
            self.proc, self.pid = None, os.getpid()
        if self.proc is not None and self.proc.poll() is not None:
            _close_pipes(self.proc)
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        return self.proc

    def start(self) -> None:
        with self.lock, contextlib.suppress(OSError):
            self._running()

    def stop(self) -> None:
        """End the child (at exit): closing its input ends its loop."""
        proc, self.proc = self.proc, None
        if proc is None or self.pid != os.getpid():
            return
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=2)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def probe(self, path: Path, member: str | None, timeout: float) -> tuple[str, int]:
        """("ok" | "crashed" | "hung", signal number or 0) for one walk."""
        request = json.dumps([str(path), member]).encode() + b"\n"
        with self.lock:
            proc = self._running()
            try:
                self._send(proc, request)
            except OSError:  # it ended since the last request (not this file's doing): renew
                proc.wait()
                _close_pipes(proc)
                self.proc = None
                proc = self._running()
                self._send(proc, request)
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            if not ready:
                proc.kill()
                proc.wait()
                _close_pipes(proc)
                self.proc = None
                return "hung", 0
            if not proc.stdout.readline():
                return self._ended(proc)
            return "ok", 0

    @staticmethod
    def _send(proc: subprocess.Popen[bytes], request: bytes) -> None:
        assert proc.stdin is not None
        proc.stdin.write(request)
        proc.stdin.flush()

    def _ended(self, proc: subprocess.Popen[bytes]) -> tuple[str, int]:
        code = proc.wait()
        _close_pipes(proc)
        self.proc = None
        return ("crashed", -code) if code < 0 else ("ok", 0)


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    """Close a finished child's pipes now (left to the garbage collector, they surface as a
    ResourceWarning in whatever runs next)."""
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


_SERVER = _Server()
atexit.register(_SERVER.stop)


def warm() -> None:
    """Start the probe child now (in the background of a GUI's start), so the first `.h5`
    opened does not wait for Python and h5py to load; does nothing when the probe is off."""
    if not _disabled():
        threading.Thread(target=_SERVER.start, name="h5probe-warm", daemon=True).start()


def probe_hdf5(path: str | os.PathLike[str], member: str | None = None) -> None:
    """Walk the HDF5 metadata of `path` (or of zip `member` inside it) in the probe child.

    Raises `FormatError` when libhdf5 crashes or hangs there; returns quietly otherwise
    (including when the probe is disabled or the child cannot start).
    """
    from inspector.core.errors import FormatError

    if _disabled():
        return
    p = Path(path)
    key = _file_key(p, member)
    if key is not None and key in _PASSED:
        return
    timeout = _timeout()
    where = f"member {member}" if member else "the file"
    try:
        outcome, sig = _SERVER.probe(p, member, timeout)
    except OSError:
        return
    if outcome == "hung":
        raise FormatError(
            p,
            f"HDF5 library hung reading {where}'s metadata (no answer in {timeout:g} s, "
            "checked in a separate process): the file is damaged or hostile",
        )
    if outcome == "crashed":
        raise FormatError(
            p,
            f"HDF5 library crashed ({_signal_name(sig)}) reading {where}'s "
            "metadata (checked in a separate process): the file is damaged or hostile",
        )
    if key is not None:
        _PASSED.add(key)


def _file_key(p: Path, member: str | None) -> tuple[Any, ...] | None:
    """Identity of a file's current content: path, inode, size, modification and change times."""
    try:
        st = p.stat()
    except OSError:
        return None
    return (str(p.resolve()), member, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _touch(name: str, obj: Any) -> None:
    """Read `obj`'s headers; a Python-level error on one attribute or dataset must not stop
    the walk, or a later object that hangs or crashes libhdf5 is never reached here but is in
    the reader."""
    import h5py

    for key in obj.attrs:
        with contextlib.suppress(Exception):
            obj.attrs[key]
    if isinstance(obj, h5py.Dataset):
        with contextlib.suppress(Exception):
            _touch_dataset(obj)


def _touch_dataset(obj: Any) -> None:
    obj.shape, obj.dtype, obj.chunks, obj.compression  # noqa: B018 - reads the headers
    plist = obj.id.get_create_plist()
    plist.get_layout()
    plist.get_external_count()
    obj.is_virtual  # noqa: B018
    obj.id.get_offset()
    obj.id.get_storage_size()


def walk(fileobj: Any) -> int:
    """Open `fileobj` (path or file-like) with h5py and read all its metadata; the number of
    objects visited."""
    import h5py

    count = [0]

    def visit(name: str, obj: Any) -> None:
        count[0] += 1
        _touch(name, obj)

    with h5py.File(fileobj, "r") as f:
        _touch("/", f)
        if _too_deep(f):
            return count[0]  # the reader refuses it by its depth before walking objects
        f.visititems(visit)
    return count[0]


_MAX_PATH_DEPTH = 128  # h5_reader.MAX_PATH_DEPTH (this script does not import the package)


def _too_deep(f: Any) -> bool:
    """True when groups nest beyond what the reader accepts: `visititems` reopens each object
    by its full path, quadratic in the depth (2,000 levels: 13 s, past the timeout)."""
    deep: list[bytes] = []

    def visit(name: bytes) -> int | None:
        if name.count(b"/") >= _MAX_PATH_DEPTH:
            deep.append(name)
            return 1
        return None

    f.id.links.visit(visit)
    return bool(deep)


def _limit_memory() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_CHILD_MEMORY, _CHILD_MEMORY))
    except (ImportError, ValueError, OSError):
        pass


def _member(raw: Any, zf: Any, name: str) -> Any:
    """The member as the reader sees it: a stored member is a byte range of the zip read with
    no CRC check (keras_zip._member_file), so a damaged stored member must be walked here too,
    not refused by zipfile's CRC check while the reader goes on to open it."""
    import io
    import struct
    import zipfile

    info = zf.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        return zf.open(info)
    raw.seek(info.header_offset)
    name_len, extra_len = struct.unpack("<HH", raw.read(30)[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    raw.seek(start)
    return io.BytesIO(raw.read(info.file_size)) if info.file_size < (64 << 20) else zf.open(info)


def _walk_request(argv: list[str | None]) -> None:
    """Walk file `argv[0]`, or its zip member `argv[1]` when that is given."""
    if len(argv) > 1 and argv[1] is not None:
        import zipfile

        with open(str(argv[0]), "rb") as raw, zipfile.ZipFile(raw) as zf:
            walk(_member(raw, zf, argv[1]))
    else:
        walk(argv[0])


def _serve() -> int:
    """The child's loop: walk each requested file, answer one line per request."""
    _limit_memory()
    for line in sys.stdin.buffer:
        try:
            _walk_request(json.loads(line))
            reply = b"ok\n"
        except Exception:  # the in-process reader reports Python-level errors precisely
            reply = b"err\n"
        sys.stdout.buffer.write(reply)
        sys.stdout.buffer.flush()
    return 0


def _main(argv: list[str]) -> int:
    if argv != ["--serve"]:
        print("usage: h5probe.py --serve (one JSON [path, member] per input line)")
        return 2
    return _serve()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
