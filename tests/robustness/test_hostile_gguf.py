"""Hostile GGUF files: headers built byte by byte and real files damaged. Each must end in a
FormatError naming the file (and the tensor when one is at fault), in bounded time and memory,
or open correctly — never another exception, never an allocation of a declared absurd size."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import REPO, bounded, expect_format_error

from inspector.core.errors import FormatError
from inspector.formats.gguf import header as gguf_header
from inspector.formats.gguf.reader import read_gguf

DATA = REPO / "tests" / "formats" / "gguf" / "data"
U32, I32, STR, ARR, U64 = 4, 5, 8, 9, 10


def s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv(key: str, vtype: int, payload: bytes) -> bytes:
    return s(key) + struct.pack("<I", vtype) + payload


def ti(name: str, ne: tuple[int, ...], gtype: int = 0, offset: int = 0) -> bytes:
    return s(name) + struct.pack(f"<I{len(ne)}QIQ", len(ne), *ne, gtype, offset)


def gguf_file(
    kvs: list[bytes] = (),  # type: ignore[assignment]
    tensors: list[bytes] = (),  # type: ignore[assignment]
    data: bytes = b"",
    version: int = 3,
    counts: tuple[int, int] | None = None,
) -> bytes:
    n_t, n_kv = counts if counts is not None else (len(tensors), len(kvs))
    head = b"GGUF" + struct.pack("<IQQ", version, n_t, n_kv) + b"".join(kvs) + b"".join(tensors)
    return head + bytes(-len(head) % 32) + data


def refused(path: Path, reason: str | None = None, tensor: str | None = None) -> FormatError:
    return expect_format_error(path, reason=reason, tensor=tensor)


def write(tmp_path: Path, data: bytes, name: str = "h.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


F32_4 = np.arange(4, dtype="<f4").tobytes()


def test_minimal_hand_built_file_opens(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_file([kv("a", U32, struct.pack("<I", 7))], [ti("t", (4,))], F32_4))
    with read_gguf(path) as m:
        assert m.metadata["gguf_metadata"] == {"a": 7}
        assert m["t"].load().tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "GGUF"),
        (b"GGUF", "too short"),
        (b"GGML" + bytes(20), "no 'GGUF' magic"),
        (gguf_file(version=1), "version 1"),
        (gguf_file(version=4), "unsupported GGUF version 4"),
        (gguf_file(version=3 << 24), "big-endian"),
        (gguf_file(counts=(0, 2**63)), "metadata keys"),
        (gguf_file(counts=(2**40, 0)), "tensors"),
        (gguf_file([s("k") + struct.pack("<I", 13) + b"x"]), "unknown value type 13"),
        (gguf_file([s(b"") + struct.pack("<II", U32, 1)]), "empty metadata key"),
        (gguf_file([struct.pack("<Q", 2**62) + b"abc"]), "runs past the end"),
        (gguf_file([kv("k", STR, struct.pack("<Q", 2**60))]), "runs past the end"),
        (gguf_file([kv("k", ARR, struct.pack("<IQ", U32, 2**60))]), "runs past the end"),
        (gguf_file([kv("k", ARR, struct.pack("<IQ", STR, 2**40))]), "runs past the end"),
        (gguf_file([kv("k", ARR, struct.pack("<IQ", 77, 1))]), "unknown array item type 77"),
        (gguf_file([kv("k", U32, b"\0" * 4)] * 2), "duplicate metadata key"),
        (gguf_file([kv("general.alignment", U32, struct.pack("<I", 48))]), "not a power of two"),
        (gguf_file([kv("general.alignment", U32, struct.pack("<I", 0))]), "not a power of two"),
        (gguf_file([kv("general.alignment", STR, s("32"))]), "must be an integer"),
    ],
)
def test_bad_headers(tmp_path: Path, data: bytes, reason: str) -> None:
    refused(write(tmp_path, data), reason)


def _nested(depth: int) -> bytes:
    inner = struct.pack("<IQ", U32, 1) + b"\0" * 4
    for _ in range(depth - 1):
        inner = struct.pack("<IQ", ARR, 1) + inner
    return inner


def test_nesting_depth_is_bounded(tmp_path: Path) -> None:
    ok = write(tmp_path, gguf_file([kv("k", ARR, _nested(gguf_header.MAX_NESTING))]), "ok.gguf")
    with read_gguf(ok) as m:
        assert m.metadata["gguf_metadata"]["k"]["length"] == 1
    deep = write(tmp_path, gguf_file([kv("k", ARR, _nested(gguf_header.MAX_NESTING + 1))]))
    refused(deep, "nested more than")


def test_array_item_walk_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gguf_header, "MAX_ITEMS", 1000)
    strings = b"".join(s("x") for _ in range(1001))
    path = write(tmp_path, gguf_file([kv("k", ARR, struct.pack("<IQ", STR, 1001) + strings)]))
    refused(path, "more than 1000 array items")


@pytest.mark.parametrize(
    ("tensors", "data", "reason", "tensor"),
    [
        ([ti("a", (4,)), ti("a", (4,), offset=32)], F32_4 * 4, "duplicate tensor name", "a"),
        ([s("five") + struct.pack("<I5Q", 5, 1, 1, 1, 1, 4)], b"", "5 dimensions", "five"),
        ([ti("big", (2**40, 2**40))], b"", "overflow int64", "big"),
        ([ti("neg", (2**64 - 1,))], b"", "negative as int64", "neg"),
        ([ti("unk", (4,), gtype=99)], F32_4, "unknown ggml type 99", "unk"),
        ([ti("gone", (4,), gtype=4)], F32_4, "unknown ggml type 4", "gone"),
        ([ti("q8", (30,), gtype=8)], bytes(64), "not whole q8_0 blocks", "q8"),
        ([ti("far", (4,), offset=2**62)], F32_4, "runs past the end", "far"),
        ([ti("long", (1000,))], F32_4, "runs past the end", "long"),
        ([ti("a", (8,)), ti("b", (4,), offset=16)], F32_4 * 2, "overlaps tensor 'a'", "b"),
    ],
)
def test_bad_tensor_infos(tmp_path: Path, tensors, data, reason, tensor) -> None:
    refused(write(tmp_path, gguf_file([], tensors, data)), reason, tensor)


def test_tensor_info_count_beyond_file(tmp_path: Path) -> None:
    refused(write(tmp_path, gguf_file([], [ti("a", (4,))], F32_4, counts=(3, 0))), "3 tensors")


def opens(path: Path) -> bool:
    """Open and load every tensor: True when that works, False on a FormatError naming `path`
    (any other exception fails the test)."""
    try:
        with read_gguf(path) as m:
            for t in m:
                t.load()
    except FormatError as exc:
        assert str(path) in str(exc)
        return False
    return True


@pytest.mark.parametrize("name", ["kv_types.gguf", "tiny_q4_k_m.gguf"])
def test_every_truncation_is_refused(tmp_path: Path, name: str) -> None:
    data = (DATA / name).read_bytes()
    cuts = sorted({*range(0, 400, 7), *range(400, len(data), max(1, len(data) // 60))})
    for keep in cuts:
        path = write(tmp_path, data[:keep], f"cut{keep}.gguf")
        # only a cut inside the last tensor's trailing padding may still open
        assert not opens(path) or keep >= len(data) - 32, keep


def test_random_byte_flips_never_escape(tmp_path: Path) -> None:
    data = (DATA / "kv_types.gguf").read_bytes()
    rng = random.Random(11)
    header_end = 1700  # flips in the header, where the structure is
    assert opens(DATA / "kv_types.gguf")  # compile the decoders outside the time budget
    for i in range(300):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(header_end)
            mutated[pos] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        with bounded():
            opens(write(tmp_path, bytes(mutated), f"flip{i}.gguf"))


def test_file_shrunk_after_open_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path, (DATA / "tiny_f16.gguf").read_bytes())
    with read_gguf(path) as m:
        before = m["blk.0.ffn_down.weight"].load()
        os.truncate(path, 4096)
        with pytest.raises(FormatError, match="shrink") as info:
            m["blk.0.ffn_down.weight"].load()
        assert info.value.tensor == "blk.0.ffn_down.weight"
        assert np.isfinite(before.astype(np.float32).sum())  # values read before: no SIGBUS


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    # the reader itself refuses it (the registry's sniffing is another layer's business)
    expect_format_error(fifo, reason="not a regular file", action=lambda p: read_gguf(p).close())
