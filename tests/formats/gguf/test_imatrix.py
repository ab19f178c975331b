"""The imatrix reader on the files of tests/core/ggml/data (written in llama-imatrix's GGUF
layout and the legacy .dat layout; llama-quantize read both to make the golden outputs, which
test_quant_golden reproduces through this reader) and on broken files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.formats.gguf.imatrix import read_imatrix

DATA = Path(__file__).resolve().parents[2] / "core" / "ggml" / "data"
gguf = pytest.importorskip("gguf")


def test_gguf_imatrix_is_sums_over_counts():
    im = read_imatrix(DATA / "imatrix.gguf")
    assert not im.legacy
    assert im.datasets == ("golden-calibration.txt",)
    assert (im.chunk_count, im.chunk_size) == (12, 512)
    reader = gguf.GGUFReader(str(DATA / "imatrix.gguf"))
    sums = {t.name: np.asarray(t.data).reshape(-1) for t in reader.tensors}
    for name, values in im.entries.items():
        assert values.dtype == np.float32
        assert np.array_equal(values, sums[f"{name}.in_sum2"] / np.float32(37))
    assert set(im.entries) == {
        "blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.0.attn_k.weight",
        "blk.0.attn_v.weight", "blk.0.ffn_up.weight",
    }  # fmt: skip
    assert im.for_tensor("blk.0.attn_k.weight", 288).shape == (1, 288)
    assert im.for_tensor("output.weight", 512) is None


def test_legacy_imatrix_is_values_over_ncall():
    im = read_imatrix(DATA / "imatrix_legacy.dat")
    assert im.legacy and im.datasets == ("legacy-calibration.txt",) and im.chunk_count == 7
    raw = (DATA / "imatrix_legacy.dat").read_bytes()
    n = struct.unpack_from("<i", raw, 4)[0]
    name = raw[8 : 8 + n].decode()
    ncall, nval = struct.unpack_from("<ii", raw, 8 + n)
    first = np.frombuffer(raw, "<f4", nval, 16 + n)
    assert ncall == 10 and np.array_equal(im.entries[name], first / np.float32(10))


def _gguf_imatrix(path: Path, counts: float, with_meta: bool = True, sums=None) -> Path:
    w = gguf.GGUFWriter(str(path), "imatrix")
    if with_meta:
        w.add_array("imatrix.datasets", ["d"])
        w.add_uint32("imatrix.chunk_count", 1)
        w.add_uint32("imatrix.chunk_size", 512)
    values = np.arange(64, dtype=np.float32).reshape(2, 32) if sums is None else sums
    w.add_tensor("w.in_sum2", values)
    w.add_tensor("w.counts", np.array([[counts], [0.0]], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_expert_counts_are_rounded_and_zero_counts_give_ones(tmp_path):
    im = read_imatrix(_gguf_imatrix(tmp_path / "e.gguf", 2.5))
    values = im.for_tensor("w", 32, n_expert=2)
    assert np.array_equal(values[0], np.arange(32, dtype=np.float32) / np.float32(3))
    assert np.array_equal(values[1], np.ones(32, np.float32))
    with pytest.raises(FormatError, match="64 values, the tensor has rows of 32 × 3 experts"):
        im.for_tensor("w", 32, n_expert=3)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "truncated at the entry count"),
        (struct.pack("<i", 0), "no entries"),
        (struct.pack("<ii", 1, 100) + b"abc", "truncated at the name of entry 1"),
        (struct.pack("<ii", 1, 1) + b"w" + struct.pack("<ii", 1, 0), "entry has 0 values"),
        (struct.pack("<ii", 1, 1) + b"w" + struct.pack("<ii", 1, 4) + b"\0" * 8, "truncated"),
        (b"GGUF" + struct.pack("<I", 3) + b"\xff" * 16, "invalid GGUF imatrix"),
        (b"GGUF" + struct.pack("<IQQ", 9, 0, 0), "unsupported GGUF version 9"),
    ],
)
def test_broken_files_are_refused(tmp_path, content, reason):
    path = tmp_path / "bad.dat"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=reason) as err:
        read_imatrix(path)
    assert str(path) in str(err.value)


def test_gguf_without_metadata_or_with_nan_is_refused(tmp_path):
    with pytest.raises(FormatError, match="missing imatrix metadata"):
        read_imatrix(_gguf_imatrix(tmp_path / "a.gguf", 1.0, with_meta=False))
    nan = np.full((2, 32), np.nan, dtype=np.float32)
    with pytest.raises(FormatError, match="tensor 'w': importance matrix contains non-finite"):
        read_imatrix(_gguf_imatrix(tmp_path / "b.gguf", 1.0, sums=nan))
    with pytest.raises(FormatError, match="cannot read"):
        read_imatrix(tmp_path / "missing.gguf")
