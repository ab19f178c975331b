"""Shared helpers for the hostile-input, value-edge and fuzz tests.

Every hostile test copies a REAL file (a demo model under resources/ or a third-party file under
../shared/models) into tmp_path and damages the copy, then asserts that opening it (and loading
every tensor) either works or raises a `FormatError` that names the file (and the tensor when
known), promptly and without allocating anything near the absurd size the file declares.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inspector.core.errors import FormatError
from inspector.core.model import Model
from inspector.formats.registry import open_model

REPO = Path(__file__).resolve().parents[2]
RESOURCES = REPO / "resources"
SHARED = (REPO.parent / "shared" / "models").resolve()

MLP = RESOURCES / "diabetes_mlp"
CONVNET = RESOURCES / "digits_convnet"

# Budgets for "promptly" and "memory bounded": generous for a loaded 2-core CI machine, yet far
# below what honouring an absurd declared size (terabytes, 10^12 elements) would take.
MAX_SECONDS = 5.0
MAX_PEAK_BYTES = 64 << 20


def shared(rel: str) -> Path:
    """A third-party file under ../shared/models, skipping when the folder is absent."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def copy_tfjs(src_dir: Path, dst: Path) -> Path:
    """Copy a TF.js folder (model.json + shards) to `dst`; returns the new model.json."""
    shutil.copytree(src_dir, dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst / "model.json"


def copy_file(src: Path, dst_dir: Path, name: str | None = None) -> Path:
    dst = dst_dir / (name or src.name)
    shutil.copyfile(src, dst)
    return dst


def load_all(model: Model) -> None:
    """Read every tensor's values (what a preview or export does)."""
    for t in model:
        t.load()


def open_and_load(path: Path) -> None:
    with open_model(path) as model:
        load_all(model)


@contextlib.contextmanager
def bounded(seconds: float = MAX_SECONDS, peak: int = MAX_PEAK_BYTES) -> Iterator[None]:
    """Assert the block uses at most `seconds` of this process's CPU time and its traced
    allocations (numpy arrays and Python objects) peak below `peak` bytes.

    CPU time, not wall time: it counts the work the input made us do (a quadratic scan, a
    bomb), which is what the bound is about, and not the other processes of a busy CI
    machine. A block that waits forever (a FIFO) is caught by the caller's subprocess timeout."""
    tracemalloc.start()
    start = time.process_time()
    try:
        yield
    finally:
        elapsed = time.process_time() - start
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s of CPU"
    assert top < peak, f"allocated {top / 2**20:.1f} MiB"


def expect_format_error(
    path: Path,
    *,
    names: Path | str | tuple[Path | str, ...] | None = None,
    tensor: str | None = None,
    reason: str | None = None,
    action: Callable[[Path], None] = open_and_load,
) -> FormatError:
    """Run `action(path)` (open + load all by default) within the time and memory budget and
    require a FormatError naming one of `names` (default: `path`), the tensor and the reason."""
    with bounded(), pytest.raises(FormatError) as info:
        action(path)
    err = info.value
    expected = names if isinstance(names, tuple) else (path if names is None else names,)
    assert any(str(n) in str(err) for n in expected), f"{err} names none of {expected}"
    if tensor is not None:
        assert err.tensor == tensor, f"{err} names tensor {err.tensor!r}, not {tensor!r}"
        assert tensor in str(err)
    if reason is not None:
        assert reason in err.reason, f"{err.reason!r} does not say {reason!r}"
    return err
