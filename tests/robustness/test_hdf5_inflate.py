"""HDF5 compression at both ends (issue 18 §2): deflate bombs inside the allowed ratio (a few
MB of file declaring GBs that the preview then allocates), and the opposite, a valid `.keras`
whose weights member is deflated, which was refused as "HDF5 library hung … damaged or
hostile" (reading a deflated member in place re-inflates from its start at every backward
seek). Compressed datasets may declare at most `MAX_RATIO` × what they store, plus
`MAX_INFLATE_SLACK` over the whole file; a deflated weights member is extracted once.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from robust_helpers import CONVNET, MLP, bounded, copy_file, expect_format_error

from inspector.core.errors import FormatError
from inspector.formats.keras.h5_reader import MAX_INFLATE_SLACK
from inspector.formats.registry import open_model

KERNEL = "model_weights/dense1/dense1/kernel:0"


def _replace(path: Path, dataset: str, **kwargs: object) -> None:
    with h5py.File(path, "r+") as f:
        parent, _, leaf = dataset.rpartition("/")
        del f[parent][leaf]
        f[parent].create_dataset(leaf, **kwargs)


def test_deflate_bomb_beyond_the_ratio(tmp_path: Path) -> None:
    """256 MiB of zeros stored in ~250 kB: refused at open, nothing allocated."""
    h5 = copy_file(MLP / "diabetes_mlp.h5", tmp_path)
    _replace(
        h5,
        KERNEL,
        shape=(1 << 14, 1 << 12),
        dtype="f4",
        chunks=(256, 1 << 12),
        compression="gzip",
        compression_opts=9,
        fillvalue=0.0,
    )
    with h5py.File(h5, "r+") as f:
        ds = f[KERNEL]
        for i in range(0, ds.shape[0], 256):
            ds[i : i + 256] = 0.0
    assert h5.stat().st_size < 4 << 20
    expect_format_error(h5, tensor="dense1/kernel:0", reason="decompression bomb")


def test_compressible_weights_within_the_ratio_open(tmp_path: Path) -> None:
    h5 = copy_file(MLP / "diabetes_mlp.h5", tmp_path)
    values = np.repeat(np.arange(64, dtype=np.float32), 1024).reshape(256, 256)
    _replace(h5, KERNEL, data=values, chunks=(64, 256), compression="gzip")
    with h5py.File(h5, "r") as f:
        ratio = values.nbytes / f[KERNEL].id.get_storage_size()
    with bounded(), open_model(h5) as model:
        np.testing.assert_array_equal(model["dense1/kernel:0"].load(), values)
    assert ratio > 1


def test_many_small_bombs_share_one_budget(tmp_path: Path) -> None:
    """Each dataset alone is within the slack; together they are not."""
    h5 = copy_file(MLP / "diabetes_mlp.h5", tmp_path)
    per = 4 << 20
    count = MAX_INFLATE_SLACK // per + 2
    with h5py.File(h5, "r+") as f:
        g = f["model_weights/dense1"]
        names = [
            bytes(n) if isinstance(n, bytes) else str(n).encode() for n in g.attrs["weight_names"]
        ]
        for i in range(count):
            g.create_dataset(
                f"z{i}",
                data=np.zeros(per // 4, np.float32),
                compression="gzip",
                chunks=(per // 16,),
            )
            names.append(f"z{i}".encode())
        g.attrs["weight_names"] = names
    assert per * count > MAX_INFLATE_SLACK
    expect_format_error(h5, reason="decompression bomb")


def _deflated_keras(tmp_path: Path, extra_mb: int) -> tuple[Path, dict[str, np.ndarray]]:
    """The demo `.keras` with `extra_mb` MB of random training state, every member deflated
    (as `zip -r` or a re-save by another tool produces)."""
    inner = tmp_path / "inner.h5"
    rng = np.random.default_rng(1)
    added = {}
    with zipfile.ZipFile(CONVNET / "digits_convnet.keras") as zin:
        inner.write_bytes(zin.read("model.weights.h5"))
        with h5py.File(inner, "r+") as f:
            g = f.create_group("optimizer/vars")
            for i in range(extra_mb):
                added[f"optimizer/vars/{i}"] = rng.standard_normal(1 << 18).astype(np.float32)
                g[str(i)] = added[f"optimizer/vars/{i}"]
        out = tmp_path / "m.keras"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                if info.filename == "model.weights.h5":
                    zout.write(inner, "model.weights.h5")
                else:
                    zout.writestr(info.filename, zin.read(info))
    inner.unlink()
    return out, added


def test_deflated_keras_weights_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    path, added = _deflated_keras(tmp_path, 24)
    with bounded(seconds=60, peak=160 << 20), open_model(path) as model:
        assert list(temp.iterdir()) == [], "the extracted member must not stay on disk"
        for name, want in added.items():
            np.testing.assert_array_equal(model[name].load(), want)
        assert len([t for t in model if not t.info.optimizer]) == 8
    assert list(temp.iterdir()) == []


def test_deflated_keras_member_with_bad_crc(tmp_path: Path) -> None:
    """The extraction checks the member's CRC: a damaged deflated member is one clear error."""
    path, _ = _deflated_keras(tmp_path, 1)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model.weights.h5")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        local = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[local + 40 : local + 44] = b"\0\0\0\0"  # inside the deflate stream: CRC or inflate fails
    path.write_bytes(bytes(data))
    expect_format_error(path)


def test_keras_archive_cut_before_export(tmp_path: Path) -> None:
    """Opened intact, cut before the export re-reads it: a clear error, nothing written."""
    from inspector.core.plan import Plan
    from inspector.formats.export import export_model

    path, _ = _deflated_keras(tmp_path, 2)
    out = tmp_path / "out.keras"
    with open_model(path) as model:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        with pytest.raises(FormatError) as info:
            export_model(model, Plan(default="int8"), "keras", out)
    assert str(path) in str(info.value)
    assert not out.exists()
