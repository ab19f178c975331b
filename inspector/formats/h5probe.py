"""Crash isolation for untrusted HDF5: walk a file's metadata in a child process first.

libhdf5 can segfault or loop forever on some corrupt files (a variable-length string attribute
with a damaged global-heap reference crashes inside H5Aread) before any Python check runs.
Before a reader opens an `.h5` file (or a `.keras` zip's weights member) in-process,
`probe_hdf5` runs this file as a script, `python .../h5probe.py PATH [MEMBER]` (no shell; the
child imports only h5py, not the inspector package, which saves ~30 ms over `-m`): the child
opens the file, visits every group and dataset, reads every attribute and each dataset's
shape, dtype and storage layout — everything the readers touch except tensor bytes — and exits.
A child killed by a signal or still running after the timeout becomes a `FormatError`; a
Python-level error in the child is left to the in-process reader, which reports it precisely.

Cost: one interpreter start (~30 ms) plus the h5py import (~200 ms) plus the walk (~1 ms per
few hundred objects): about 0.25 s per HDF5 input on the 2-core reference machine; other
formats never pay it.
Environment:
- `QUANT_INSPECTOR_H5_PROBE=0` skips the probe (benchmarks, trusted files);
- `QUANT_INSPECTOR_H5_PROBE_TIMEOUT=S` sets the timeout in seconds (default 30).
The child limits its address space to 8 GiB so a corrupt size cannot exhaust memory. A file
that passed is not probed again while its path, inode, size and modification time are unchanged
(a per-process set: reopening a model, export after preview, the test suite's demo files).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["ENV_DISABLE", "ENV_TIMEOUT", "probe_hdf5", "walk"]

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


def probe_hdf5(path: str | os.PathLike, member: str | None = None) -> None:
    """Walk the HDF5 metadata of `path` (or of zip `member` inside it) in a child process.

    Raises `FormatError` when libhdf5 crashes or hangs there; returns quietly otherwise
    (including when the probe is disabled or the child cannot start).
    """
    from inspector.core.errors import FormatError

    if os.environ.get(ENV_DISABLE, "1").strip().lower() in ("0", "false", "no", "off"):
        return
    p = Path(path)
    key = _file_key(p, member)
    if key is not None and key in _PASSED:
        return
    cmd = [sys.executable, str(Path(__file__).resolve()), str(p)]
    if member is not None:
        cmd.append(member)
    timeout = _timeout()
    where = f"member {member}" if member else "the file"
    try:
        proc = subprocess.run(cmd, timeout=timeout, capture_output=True, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise FormatError(
            p,
            f"HDF5 library hung reading {where}'s metadata (no answer in {timeout:g} s, "
            "checked in a separate process): the file is damaged or hostile",
        ) from None
    except OSError:
        return
    if proc.returncode < 0:
        raise FormatError(
            p,
            f"HDF5 library crashed ({_signal_name(-proc.returncode)}) reading {where}'s "
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
        f.visititems(visit)
    return count[0]


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


def _main(argv: list[str]) -> int:
    _limit_memory()
    try:
        if len(argv) > 1:
            import zipfile

            with open(argv[0], "rb") as raw, zipfile.ZipFile(raw) as zf:
                walk(_member(raw, zf, argv[1]))
        else:
            walk(argv[0])
    except Exception:  # the in-process reader reports Python-level errors precisely
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
