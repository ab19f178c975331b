"""Hostile PyTorch checkpoints: pickles that call code, lie about storages or views, nest or
share without end; damaged zips. Each ends in a FormatError naming the file (and what was
refused), in bounded time and memory, and nothing in the pickle is ever executed."""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import REPO, bounded, expect_format_error

from inspector.core.errors import FormatError
from inspector.formats.torch import flatten as torch_flatten
from inspector.formats.torch import reader as torch_reader
from inspector.formats.torch.reader import read_torch

DATA = REPO / "tests" / "formats" / "torch" / "data"
SRC = DATA / "state_dict.bin"


def refused(path: Path, reason: str) -> FormatError:
    return expect_format_error(path, reason=reason)


def rezip(
    dst: Path, pkl: bytes | None = None, *, drop: str = "", extra=None, deflate: bool = False
) -> Path:
    """state_dict.bin with its data.pkl replaced (records kept, stored as torch stores them)."""
    with zipfile.ZipFile(SRC) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            name = info.filename
            if drop and name.endswith(drop):
                continue
            is_pkl = name.endswith("/data.pkl")
            data = pkl if pkl is not None and is_pkl else zin.read(name)
            method = zipfile.ZIP_DEFLATED if deflate and is_pkl else zipfile.ZIP_STORED
            zout.writestr(name, data, compress_type=method)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def _int(n: int) -> bytes:
    return pickle.dumps(n, 2)[2:-1]


def _str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def tensor_pickle(
    key: str = "2",
    storage: str = "FloatStorage",
    numel: int = 640,
    offset: int = 0,
    size: tuple[int, ...] = (40, 16),
    stride: tuple[int, ...] = (16, 1),
    name: str = "w",
) -> bytes:
    """A protocol-2 pickle of `{name: _rebuild_tensor_v2(storage, offset, size, stride, …)}`
    written opcode by opcode (the layout torch.save emits)."""
    pid = _tuple([_str("storage"), b"ctorch\n" + storage.encode() + b"\n", _str(key),
                  _str("cpu"), _int(numel)])  # fmt: skip
    args = _tuple([
        pid + b"Q", _int(offset),
        _tuple([_int(n) for n in size]), _tuple([_int(n) for n in stride]),
        b"\x89", b"ccollections\nOrderedDict\n)R",
    ])  # fmt: skip
    call = b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"
    return b"\x80\x02}(" + _str(name) + call + b"u."


def test_hand_built_pickle_reads(tmp_path: Path) -> None:
    path = rezip(tmp_path / "ok.bin", tensor_pickle())  # record 2 is embed.weight (40×16)
    with read_torch(path) as m, read_torch(SRC) as real:
        assert m["w"].load().tobytes() == real["embed.weight"].load().tobytes()


def _call(module: str, name: str, arg: str) -> bytes:
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + _str(arg) + b"\x85R."


MARKER = "/tmp/quant_inspector_pwned"


@pytest.mark.parametrize(
    ("pkl", "named"),
    [
        (_call("os", "system", f"touch {MARKER}"), "os.system"),
        (_call("posix", "system", f"touch {MARKER}"), "posix.system"),
        (_call("builtins", "eval", f"open('{MARKER}','w')"), "builtins.eval"),
        (_call("builtins", "exec", f"open('{MARKER}','w')"), "builtins.exec"),
        (_call("__builtin__", "getattr", "x"), "__builtin__.getattr"),
        (_call("subprocess", "Popen", "touch"), "subprocess.Popen"),
        (_call("numpy", "load", MARKER), "numpy.load"),
        (_call("torch", "load", MARKER), "torch.load"),
        (_call("torch.serialization", "_get_layout", "x"), "torch.serialization._get_layout"),
        (f"(S'touch {MARKER}'\nios\nsystem\n.".encode(), "os.system"),  # INST, protocol 0
        (b"\x80\x04\x8c\x02os\x8c\x06system\x93" + _str("touch") + b"\x85R.", "os.system"),
        (b"\x80\x02" + b"(" + b"cos\nsystem\n" + _str("x") + b"o.", "os.system"),  # OBJ
        (tensor_pickle(storage="QInt8Storage"), "torch.QInt8Storage"),
    ],
)
def test_globals_outside_the_allowlist_are_refused_by_name(tmp_path, pkl, named) -> None:
    Path(MARKER).unlink(missing_ok=True)
    err = refused(rezip(tmp_path / "evil.bin", pkl), "not allowed")
    assert f"'{named}'" in err.reason
    assert not Path(MARKER).exists()


@pytest.mark.parametrize(
    ("pkl", "reason"),
    [
        (b"not a pickle", "malformed"),
        (b"\x80\x02\x82\x01.", "malformed"),  # EXT1: no extension registered
        (b"\x80\x02]" + b"(" * 3, "malformed"),
        (tensor_pickle(numel=2**60), "holds 2560 bytes, the pickle says"),
        (tensor_pickle(key="99"), "storage record state_dict/data/99 is missing"),
        (tensor_pickle(numel=2**60, storage="HalfStorage"), "the pickle says 1152921504606846976"),
        (tensor_pickle(offset=630), "runs past its storage"),
        (tensor_pickle(size=(41, 16)), "runs past its storage"),
        (tensor_pickle(size=(4, 4), stride=(300, 1)), "runs past its storage"),
        (tensor_pickle(size=(10**9,), stride=(0,)), "repeats its 640-element storage"),
        (tensor_pickle(offset=-1), "non-negative"),
        (tensor_pickle(size=(4, 4), stride=(1,)), "differ in length"),
        (
            b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n" + _tuple([_str("x")] * 6) + b"R.",
            "storage must come from the archive",
        ),
        (
            b"\x80\x02ctorch._utils\n_rebuild_parameter\n" + _tuple([_int(1)] * 3) + b"R.",
            "must wrap a tensor",
        ),
    ],
)
def test_malformed_pickles(tmp_path: Path, pkl: bytes, reason: str) -> None:
    refused(rezip(tmp_path / "bad.bin", pkl), reason)


def test_storage_described_two_ways(tmp_path: Path) -> None:
    a = tensor_pickle(name="a")[:-2]  # drop SETITEMS/STOP, add a second entry
    b = tensor_pickle(name="b", numel=320)[4:-2]
    refused(rezip(tmp_path / "two.bin", a + b + b"u."), "described two ways")


def test_deep_nesting_and_huge_fanout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep: list = []
    node = deep
    for _ in range(200):
        node.append([])
        node = node[0]
    refused(rezip(tmp_path / "deep.bin", pickle.dumps(deep, 2)), "nests deeper than 64")
    monkeypatch.setattr(torch_flatten, "MAX_NODES", 1000)
    wide = {"a": [0] * 600, "b": [1] * 600}
    refused(rezip(tmp_path / "wide.bin", pickle.dumps(wide, 2)), "more than 1000 objects")


def test_shared_references_do_not_explode(tmp_path: Path) -> None:
    node: dict = {"leaf": 1}
    for _ in range(60):  # 2**60 paths, 61 distinct dicts
        node = {"a": node, "b": node}
    path = rezip(tmp_path / "dag.bin", pickle.dumps(node, 2))
    with bounded(), read_torch(path) as m:
        assert len(m) == 0
        assert m.metadata["torch_aliases"]["b"] == "a"


def test_pickle_size_and_zip_bombs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_reader, "_MAX_PICKLE", 1 << 20)
    refused(rezip(tmp_path / "big.bin", b"\x80\x02" + b"N0" * (1 << 20) + b"N."), "more than")
    bomb = rezip(tmp_path / "bomb.bin", pickle.dumps({}, 2), deflate=True)
    declare_size(bomb, "state_dict/data.pkl", 0xFFFFFFF0)
    refused(bomb, "zip bomb")


def declare_size(path: Path, member: str, size: int) -> None:
    """Patch a member's uncompressed size in its local and central zip headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        struct.pack_into("<I", data, zf.getinfo(member).header_offset + 22, size)
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        (n,) = struct.unpack_from("<H", data, pos + 28)
        if data[pos + 46 : pos + 46 + n] == member.encode():
            struct.pack_into("<I", data, pos + 24, size)
        pos = data.find(b"PK\x01\x02", pos + 1)
    path.write_bytes(bytes(data))


def test_big_endian_archive(tmp_path: Path) -> None:
    path = rezip(tmp_path / "be.bin", drop="/byteorder", extra={"state_dict/byteorder": b"big"})
    refused(path, "big-endian")


def test_truncated_archive(tmp_path: Path) -> None:
    data = SRC.read_bytes()
    for keep in (0, 10, 100, len(data) // 2, len(data) - 30):
        path = tmp_path / f"cut{keep}.bin"
        path.write_bytes(data[:keep])
        refused(path, "")


def test_file_shrunk_after_open(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    path.write_bytes(SRC.read_bytes())
    with read_torch(path) as m:
        before = m["fc_t.weight"].load()
        os.truncate(path, 2000)
        with pytest.raises(FormatError, match=r"shrink|runs past the end of the file"):
            for t in m:
                t.load()
        assert before.shape == (6, 8) and np.isfinite(before).all()  # read before: no SIGBUS


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.bin"
    os.mkfifo(fifo)
    # the reader itself refuses it (the registry's sniffing is another layer's business)
    expect_format_error(fifo, reason="not a regular file", action=lambda p: read_torch(p).close())
