"""Crash safety of export: a `kill -9` in the middle of a real export (a subprocess running the
CLI on a ~200 MB model) leaves no file at the output path and the input byte-identical; an
exception or a cancel mid-export leaves nothing at all. Temporary files may remain after a
kill only inside a hidden workspace folder `.qi-<pid>-*.tmp` with its marker
(inspector/formats/atomic.py), which the next export to that folder sweeps."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import MLP

import inspector.formats.export as export_mod
from inspector.core.errors import InspectorError
from inspector.core.plan import Plan
from inspector.formats.atomic import MARKER
from inspector.formats.export import ExportCancelled, export_model
from inspector.formats.registry import open_model

TENSORS = 50
ELEMENTS = 1 << 20  # 50 × 4 MiB float32 = 200 MiB


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    for f in files:
        if f.is_file():
            with open(f, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def big_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.npz"
    rng = np.random.default_rng(0)
    base = rng.standard_normal(ELEMENTS).astype(np.float32)
    arrays = {f"layer{i:02d}/kernel": np.roll(base, i).reshape(1024, 1024) for i in range(TENSORS)}
    np.savez(path, **arrays)
    return path


def _leftovers(folder: Path, out_name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if out_name in p.name or _workspace(p.name))


def _workspace(name: str) -> bool:
    return name.startswith(".qi-") and name.endswith(".tmp")


def _wait_for_partial(folder: Path, out_name: str, proc: subprocess.Popen, min_bytes: int) -> None:
    """Wait until the export's temporary output holds at least `min_bytes` (it is mid-way)."""
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"export finished before it could be killed (exit {proc.returncode})")
        tmp = [p for p in folder.iterdir() if _workspace(p.name)]
        size = sum(
            f.stat().st_size
            for t in tmp
            for f in ([*t.rglob("*")] if t.is_dir() else [t])
            if f.is_file()
        )
        if size >= min_bytes:
            return
        time.sleep(0.005)
    pytest.fail("export never started writing")


@pytest.mark.parametrize(
    ("fmt", "out_name", "scheme"),
    [("tfjs", "out_tfjs", "uint8"), ("safetensors", "out.safetensors", "float16")],
)
def test_kill_9_mid_export(
    big_npz: Path, tmp_path: Path, fmt: str, out_name: str, scheme: str
) -> None:
    before = _sha256(big_npz)
    out = tmp_path / out_name
    cmd = [sys.executable, "-m", "inspector", "export", str(big_npz), "-o", str(out)]
    cmd += ["--format", fmt, "--scheme", scheme, "--shard-mb", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_partial(tmp_path, out_name, proc, min_bytes=3 << 20)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and not out.is_symlink(), "a partial output is at the output path"
    for name in _leftovers(tmp_path, out_name):
        assert _workspace(name) and (tmp_path / name / MARKER).is_file(), name
    assert _sha256(big_npz) == before, "the input changed"
    # An export elsewhere is not disturbed by the killed one's workspace and leaves it alone.
    hidden = [n for n in _leftovers(tmp_path, out_name) if _workspace(n)]
    assert hidden
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with open_model(MLP / "sample.npz") as model:
        export_model(model, Plan(default=scheme), fmt, elsewhere / out_name)
    assert hidden == [n for n in _leftovers(tmp_path, out_name) if _workspace(n)]
    # The next export into the same folder sweeps the dead writer's workspace, then succeeds.
    with open_model(MLP / "sample.npz") as model:
        export_model(model, Plan(default=scheme), fmt, out)
    assert out.exists()
    assert not [n for n in _leftovers(tmp_path, out_name) if _workspace(n)]


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize(
    ("fmt", "out_name"), [("tfjs", "out_tfjs"), ("safetensors", "o.safetensors"), ("npz", "o.npz")]
)
def test_exception_mid_export_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, out_name: str
) -> None:
    """A failure after some tensors were written: no output, no temporary, input untouched."""
    src = tmp_path / "in" / "model.npz"
    src.parent.mkdir()
    rng = np.random.default_rng(1)
    np.savez(src, **{f"t{i}": rng.standard_normal((64, 64)).astype(np.float32) for i in range(6)})
    before = _sha256(src)
    real = export_mod.quantize_tensor
    calls = []

    def failing(tensor, scheme, target):
        calls.append(tensor.name)
        if len(calls) == 4:
            raise _Boom("disk on fire")
        return real(tensor, scheme, target)

    monkeypatch.setattr(export_mod, "quantize_tensor", failing)
    out = tmp_path / out_name
    with open_model(src) as model, pytest.raises(_Boom):
        export_model(model, Plan(default="uint8"), fmt, out, shard_bytes=4096)
    assert len(calls) == 4
    assert _leftovers(tmp_path, out_name) == []
    assert _sha256(src) == before


def test_cancel_mid_export_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "cancelled_tfjs"
    done: list[str] = []
    with open_model(MLP / "sample.npz") as model, pytest.raises(ExportCancelled):
        export_model(
            model,
            Plan(default="uint8"),
            "tfjs",
            out,
            progress=lambda i, n, name: done.append(name),
            cancelled=lambda: len(done) >= 1,
        )
    assert done and _leftovers(tmp_path, "cancelled_tfjs") == []


def test_export_refuses_to_overwrite_input(tmp_path: Path) -> None:
    src = tmp_path / "m.npz"
    src.write_bytes((MLP / "sample.npz").read_bytes())
    before = _sha256(src)
    with open_model(src) as model, pytest.raises(InspectorError):
        export_model(model, Plan(default="uint8"), "npz", src, force=True)
    assert _sha256(src) == before
