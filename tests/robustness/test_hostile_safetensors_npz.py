"""Hostile safetensors and npz files: the real silero-vad safetensors and the demo sample.npz
files, copied and damaged (header lies, overlapping/out-of-range offsets, truncation, object
arrays that would need pickle, zip bombs, unknown dtypes, duplicates)."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from robust_helpers import CONVNET, MLP, copy_file, expect_format_error, open_and_load, shared

from inspector.core.errors import FormatError

SILERO = "safetensors-silero-vad-16k/silero_vad_16k.safetensors"


def _split(path: Path) -> tuple[dict[str, Any], bytes]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _join(path: Path, header: dict[str, Any], buffer: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + buffer)


@pytest.fixture
def st(tmp_path: Path) -> Path:
    return copy_file(shared(SILERO), tmp_path)


def _names(header: dict[str, Any]) -> list[str]:
    """Tensor names in buffer order."""
    items = [(v["data_offsets"][0], k) for k, v in header.items() if k != "__metadata__"]
    return [k for _, k in sorted(items)]


def test_untouched_copy_opens(st: Path) -> None:
    open_and_load(st)


@pytest.mark.parametrize("keep", [0, 5, 8, 9, 100, 1000, 600_000, 1_239_747])
def test_truncated(st: Path, keep: int) -> None:
    st.write_bytes(st.read_bytes()[:keep])
    expect_format_error(st)


@pytest.mark.parametrize("length", [2**64 - 1, 2**63, 10**12, 2_000_000])
def test_header_length_beyond_file(st: Path, length: int) -> None:
    data = bytearray(st.read_bytes())
    data[:8] = struct.pack("<Q", length)
    st.write_bytes(bytes(data))
    expect_format_error(st, reason="header length")


def test_overlapping_offsets(st: Path) -> None:
    header, buf = _split(st)
    b = _names(header)[1]
    header[b]["data_offsets"] = [o - 4 for o in header[b]["data_offsets"]]
    _join(st, header, buf)
    expect_format_error(st, tensor=b, reason="overlap")


def test_two_tensors_same_range(st: Path) -> None:
    header, buf = _split(st)
    names = _names(header)
    header[names[1]] = dict(header[names[0]])
    _join(st, header, buf)
    expect_format_error(st)


@pytest.mark.parametrize(
    "offsets", [[0, 2**64], [-4, 100], [10**15, 10**15 + 4], [8, 4], "0,4", [0], [0.0, 4.0]]
)
def test_out_of_range_or_malformed_offsets(st: Path, offsets: Any) -> None:
    header, buf = _split(st)
    last = _names(header)[-1]
    header[last]["data_offsets"] = offsets
    _join(st, header, buf)
    expect_format_error(st, tensor=last)


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ([10**6, 10**6], "more than"),
        ([-1, 256], "negative"),
        ([2**62, 2**62], "more than"),
        ("258", "list of integers"),
        ([258.0, 1, 256], "list of integers"),
    ],
)
def test_absurd_shapes(st: Path, shape: Any, reason: str) -> None:
    header, buf = _split(st)
    first = _names(header)[0]
    header[first]["shape"] = shape
    _join(st, header, buf)
    expect_format_error(st, tensor=first, reason=reason)


@pytest.mark.parametrize("dtype", ["F8_E4M3", "Q4", "f32", None, 3])
def test_unknown_dtype(st: Path, dtype: Any) -> None:
    header, buf = _split(st)
    first = _names(header)[0]
    header[first]["dtype"] = dtype
    _join(st, header, buf)
    expect_format_error(st, tensor=first, reason="unsupported dtype")


def test_duplicate_keys_in_header(st: Path) -> None:
    """JSON with a key twice: the second silently wins in json.loads, leaving a gap."""
    header, buf = _split(st)
    names = _names(header)
    raw = json.dumps(header)
    dup = json.dumps({names[0]: header[names[1]]})[1:-1]
    raw = raw[:-1] + ", " + dup + "}"
    body = raw.encode()
    st.write_bytes(struct.pack("<Q", len(body)) + body + buf)
    expect_format_error(st)


@pytest.mark.parametrize("meta", [{"a": 1}, ["x"], "text", {"a": {"b": "c"}}])
def test_bad_metadata(st: Path, meta: Any) -> None:
    header, buf = _split(st)
    header["__metadata__"] = meta
    _join(st, header, buf)
    expect_format_error(st, reason="__metadata__")


def test_header_not_object_or_not_utf8(st: Path) -> None:
    _, buf = _split(st)
    for raw in (b"[1, 2]", b"\xff\xfe{}", b"{" * 200_000):
        st.write_bytes(struct.pack("<Q", len(raw)) + raw + buf)
        expect_format_error(st)


def test_file_shrinks_after_opening(st: Path) -> None:
    """Truncated after opening: loading must be a FormatError, not a SIGBUS from the map."""
    from inspector.formats.registry import open_model

    header, _ = _split(st)
    last = _names(header)[-1]
    with open_model(st) as model:
        st.write_bytes(st.read_bytes()[:1000])
        with pytest.raises(FormatError) as info:
            model[last].load()
    assert info.value.tensor == last and str(st) in str(info.value)


# ---- npz -----------------------------------------------------------------------------------


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    return copy_file(CONVNET / "sample.npz", tmp_path)


def _npz_members(src: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(src) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _write(dst: Path, members: dict[str, bytes], mode: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(dst, "w", mode) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_npz_untouched_copy_opens(npz: Path, no_pickle: None) -> None:
    open_and_load(npz)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 0.9, 0.999])
def test_npz_truncated(npz: Path, fraction: float) -> None:
    data = npz.read_bytes()
    npz.write_bytes(data[: int(len(data) * fraction)])
    expect_format_error(npz)


@pytest.mark.parametrize("mode", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_npz_object_array_never_unpickled(npz: Path, no_pickle: None, mode: int) -> None:
    members = _npz_members(npz)
    members["evil.npy"] = _npy(np.array([{"a": 1}, None], dtype=object))
    _write(npz, members, mode)
    expect_format_error(npz, tensor="evil", reason="pickle")


def test_npz_structured_and_string_dtypes(npz: Path, no_pickle: None) -> None:
    members = _npz_members(npz)
    members["rec.npy"] = _npy(np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]))
    _write(npz, members)
    expect_format_error(npz, tensor="rec", reason="unsupported dtype")
    members.pop("rec.npy")
    members["txt.npy"] = _npy(np.array(["abc", "de"]))
    _write(npz, members)
    expect_format_error(npz, tensor="txt", reason="unsupported dtype")


def test_npz_header_declares_absurd_shape(npz: Path) -> None:
    members = _npz_members(npz)
    name = next(iter(members))
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += b" " * (118 - len(header)) + b"\n"
    members[name] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64
    _write(npz, members)
    expect_format_error(npz, tensor=name.removesuffix(".npy"), reason="needs")


def test_npz_header_is_not_a_literal(npz: Path, no_pickle: None) -> None:
    members = _npz_members(npz)
    header = b"{'descr': __import__('os').system('touch pwned'), 'shape': (1,)}"
    header += b" " * (118 - len(header)) + b"\n"
    members["x.npy"] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    _write(npz, members)
    expect_format_error(npz, tensor="x")
    assert not Path("pwned").exists()


def test_npz_zip_bomb_declared_size(npz: Path) -> None:
    members = _npz_members(npz)
    _write(npz, members, zipfile.ZIP_DEFLATED)
    data = bytearray(npz.read_bytes())
    pos = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, pos + 24, 0xFFFF_FFF0)
    npz.write_bytes(bytes(data))
    expect_format_error(npz)


def test_npz_real_zip_bomb(npz: Path) -> None:
    """A real deflate stream expanding 1000:1 whose npy header is honest: allowed, but only
    within what deflate can do; the member then loads without blowing the memory budget."""
    members = {"big.npy": _npy(np.zeros(4 << 20, np.float32))}
    _write(npz, members, zipfile.ZIP_DEFLATED)
    open_and_load(npz)


def test_npz_duplicate_member(npz: Path) -> None:
    members = _npz_members(npz)
    name, data = next(iter(members.items()))
    with zipfile.ZipFile(npz, "a") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr(name, data)
    expect_format_error(npz, tensor=name.removesuffix(".npy"), reason="duplicate")


def test_npz_member_shorter_than_header_says(npz: Path) -> None:
    members = _npz_members(MLP / "sample.npz")
    name, data = next(iter(members.items()))
    members[name] = data[:-8]
    _write(npz, members)
    expect_format_error(npz, tensor=name.removesuffix(".npy"))


def test_npz_not_npy_member(npz: Path) -> None:
    members = _npz_members(npz)
    members["readme.npy"] = b"hello, not an array"
    _write(npz, members)
    expect_format_error(npz, tensor="readme")
