"""Hostile npz files (second wave): evaluation data whose `.npy` header declares 10^12
elements, deflate bombs inside deflate's own ratio (megabytes that inflate to gigabytes at
preview), archives with tens of thousands of members exported to TF.js, members rewritten after
the archive was opened, FIFOs. One `FormatError` naming the file and the member, or a correct
result, within the suite's time and memory budget."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import MLP, REPO, bounded, expect_format_error

from inspector.core.errors import FormatError, InspectorError
from inspector.core.plan import Plan
from inspector.engine.eval_data import load_data
from inspector.formats import npz
from inspector.formats.export import export_model
from inspector.formats.npz import reader as npz_reader
from inspector.formats.registry import open_model

H5 = MLP / "diabetes_mlp.h5"
MLP_INPUT = [(None, 10)]


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def write_members(path: Path, members: dict[str, bytes], deflate: bool = False) -> Path:
    kind = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", kind) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def zero_member(path: Path, name: str, nbytes: int, extra: dict[str, bytes] | None = None) -> Path:
    """A deflated float32 member of `nbytes` zeros, streamed (the test never holds it)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for other, data in (extra or {}).items():
            zf.writestr(other, data)
        with zf.open(name, "w", force_zip64=True) as fh:
            fh.write(npy_header((nbytes // 4,)))
            block = bytes(1 << 20)
            for start in range(0, nbytes, len(block)):
                fh.write(block[: min(len(block), nbytes - start)])
    return path


@contextlib.contextmanager
def timed(seconds: float) -> Iterator[None]:
    start = time.process_time()  # CPU time: the work the input causes, not the machine's load
    yield
    used = time.process_time() - start
    assert used < seconds, f"took {used:.1f} s of CPU"


# ----------------------------------------------------------------- evaluation data


@pytest.mark.parametrize("deflate", [False, True])
@pytest.mark.parametrize("count", [10**12, 2**62, 10**6])
def test_eval_data_header_declares_more_than_the_member(
    tmp_path: Path, deflate: bool, count: int
) -> None:
    """np.load allocated what the header declared (4 TB) before reading the 40 bytes there."""
    path = write_members(
        tmp_path / "d.npz", {"x.npy": npy_header((count, 10)) + bytes(40)}, deflate
    )
    with bounded(), pytest.raises(FormatError) as info:
        load_data(path, MLP_INPUT)
    assert str(path) in str(info.value) and info.value.tensor == "x"
    assert "needs" in info.value.reason


def test_eval_data_reads_only_the_arrays_it_uses(tmp_path: Path) -> None:
    """Extra members (here a 64 MiB zero array) are checked but never decompressed."""
    x = np.random.default_rng(0).normal(size=(8, 10)).astype(np.float32)
    path = zero_member(tmp_path / "d.npz", "unused.npy", 64 << 20, {"x.npy": _npy(x)})
    with bounded():
        data = load_data(path, MLP_INPUT)
    np.testing.assert_array_equal(data.inputs[0], x)


def test_eval_data_bomb_through_the_cli(tmp_path: Path) -> None:
    bad = write_members(tmp_path / "d.npz", {"x.npy": npy_header((10**12, 10)) + bytes(40)})
    cmd = [sys.executable, "-m", "inspector", "evaluate", str(H5), "--data", str(bad)]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr
    assert len(lines) == 1 and str(bad) in lines[0] and "'x'" in lines[0], lines


# ----------------------------------------------------------------- deflate bombs


def test_bomb_within_deflates_ratio_is_refused(tmp_path: Path) -> None:
    """300 MiB of zeros deflate to ~300 KB (1000:1, inside deflate's limit): above 256 MiB a
    member may inflate 64:1 at most, so opening refuses it before inflating anything."""
    path = zero_member(tmp_path / "bomb.npz", "w.npy", 300 << 20)
    assert path.stat().st_size < 1 << 20
    expect_format_error(path, tensor="w", reason="at most 64:1")
    cmd = [sys.executable, "-m", "inspector", "preview", str(path), "--scheme", "int8"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "'w'" in lines[0], run.stderr


def test_archive_total_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many members each under the per-member floor: the archive's sum is bounded too
    (floors scaled down so the test writes megabytes, not gigabytes)."""
    monkeypatch.setattr(npz_reader, "TOTAL_FLOOR", 4 << 20)
    with zipfile.ZipFile(tmp_path / "many.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(8):
            zf.writestr(f"w{i}.npy", _npy(np.zeros(1 << 18, np.float32)))
    expect_format_error(tmp_path / "many.npz", reason="in all")


def test_zero_tensor_under_the_floor_still_opens(tmp_path: Path) -> None:
    """A zero-initialized 64 MiB tensor deflated 1000:1 is a plausible real file: it opens
    and loads (memory: the tensor itself)."""
    path = zero_member(tmp_path / "zeros.npz", "emb.npy", 64 << 20)
    with open_model(path) as model:
        w = model["emb"].load()
    assert w.shape == (16 << 20,) and not w.any() and not w.flags.writeable


def test_member_rewritten_after_open(tmp_path: Path) -> None:
    """Same sizes, a different header: load() checks the header it opened with instead of
    allocating what the new one declares."""
    members = {
        "w.npy": _npy(np.ones(4096, np.float32)),  # larger than one zipfile read
        "pad.npy": _npy(np.zeros(1 << 16, np.uint8)),  # past zipfile's read buffer
        "z.npy": _npy(np.ones(2, np.float32)),
    }
    path = write_members(tmp_path / "m.npz", members)
    with open_model(path) as model:
        data = path.read_bytes()
        old, new = b"'shape': (4096,)", b"'shape': (64,64)"
        assert data.count(old) == 1 and len(old) == len(new)
        path.write_bytes(data.replace(old, new))
        with bounded(), pytest.raises(FormatError) as info:
            model["w"].load()
    assert str(path) in str(info.value) and info.value.tensor == "w"
    assert "changed since it was opened" in info.value.reason


def test_npz_is_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "m.npz"
    os.mkfifo(fifo)
    expect_format_error(
        fifo, reason="not a regular file", action=lambda p: npz_reader.read_npz(p).close()
    )


# ----------------------------------------------------------------- many members


def test_many_members_export_to_tfjs_in_linear_time(tmp_path: Path) -> None:
    """8,000 four-value members exported to TF.js took 55 s: the manifest's numbers were put
    in by one str.replace per weight over the whole JSON text (quadratic). Now ~5 s."""
    path = tmp_path / "many.npz"
    np.savez(path, **{f"w{i}": np.full(4, i, np.float32) for i in range(8000)})
    with timed(40), open_model(path) as model:
        result = export_model(model, Plan(default="uint8"), "tfjs", tmp_path / "out")
    manifest = (tmp_path / "out" / "weights_manifest.json").read_text()
    assert result.path.is_dir() and manifest.count('"quantization"') == 8000
    assert "\ue000" not in manifest and "\\ue000" not in manifest


def test_npz_format_spec_is_registered() -> None:
    assert npz.FORMAT.readers["npz"].endswith(":read_npz")


# ----------------------------------------------------------------- the plan's member name


def test_tensor_named_like_the_plan_member_is_refused_not_dropped(tmp_path: Path) -> None:
    """A float tensor named `__quant_inspector_plan__` used to vanish from the npz export."""
    path = tmp_path / "m.npz"
    np.savez(path, w=np.ones((4, 4), np.float32), __quant_inspector_plan__=np.ones(3, np.float32))
    out = tmp_path / "out.npz"
    with open_model(path) as model, pytest.raises(InspectorError) as info:
        export_model(model, Plan(default="uint8"), "npz", out)
    assert "'__quant_inspector_plan__'" in str(info.value) and str(path) in str(info.value)
    assert not out.exists()


def test_own_export_re_exports_with_one_plan(tmp_path: Path) -> None:
    """Our own npz (tensors + the plan member) exports again: the old plan is replaced."""
    src = tmp_path / "m.npz"
    np.savez(src, w=np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4))
    with open_model(src) as model:
        export_model(model, Plan(default="uint8"), "npz", tmp_path / "a.npz")
    with open_model(tmp_path / "a.npz") as model:
        export_model(model, Plan(default="float16"), "npz", tmp_path / "b.npz")
    with np.load(tmp_path / "b.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["__quant_inspector_plan__", "w"]
        assert b"float16" in bytes(npz["__quant_inspector_plan__"])
