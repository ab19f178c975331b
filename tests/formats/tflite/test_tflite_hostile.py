"""Hostile `.tflite` files made by mutating the converter's fixtures: each must end in one
FormatError naming the file (and the tensor when one is at fault), never a traceback, a hang or
an allocation beyond the file's size."""

from __future__ import annotations

import copy
import os
import random
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from tflite_helpers import fixture, write_tree

from inspector.core.errors import FormatError
from inspector.formats.tflite.reader import read_tflite

SOURCE = fixture("digits_convnet", "float32")


def _open_and_load(path: Path) -> None:
    with read_tflite(path) as m:
        for t in m:
            t.load()


def _expect(path: Path, *words: str) -> FormatError:
    with pytest.raises(FormatError) as info:
        _open_and_load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for w in words:
        assert w in message, message
    return info.value


def _mutant(tmp_path: Path, data: bytes, name: str = "bad.tflite") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _root(data: bytes) -> tuple[int, int]:
    root = struct.unpack_from("<I", data, 0)[0]
    return root, root - struct.unpack_from("<i", data, root)[0]


@pytest.mark.parametrize("keep", [0, 3, 7, 8, 12, 100, 1000, 30000, -1])
def test_truncated(tmp_path, keep):
    data = SOURCE.read_bytes()
    _expect(_mutant(tmp_path, data[: keep if keep >= 0 else len(data) - 1]))


def test_fifo_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match="not a regular file"):
        read_tflite(fifo)


def test_not_tflite(tmp_path):
    _expect(_mutant(tmp_path, b"\x10\0\0\0TFL2" + bytes(64)), "TFL3")


def test_root_offset_outside_the_file(tmp_path):
    data = bytearray(SOURCE.read_bytes())
    struct.pack_into("<I", data, 0, 0xFFFFFF00)
    _expect(_mutant(tmp_path, bytes(data)), "outside")


@pytest.mark.parametrize("soffset", [2**31 - 1, -(2**31), 4])
def test_vtable_offset_outside(tmp_path, soffset):
    data = bytearray(SOURCE.read_bytes())
    root, _ = _root(data)
    struct.pack_into("<i", data, root, soffset)
    _expect(_mutant(tmp_path, bytes(data)))


@pytest.mark.parametrize(("vt_size", "t_size"), [(3, 40), (0, 40), (12, 2), (0xFFFE, 40)])
def test_vtable_sizes_invalid(tmp_path, vt_size, t_size):
    data = bytearray(SOURCE.read_bytes())
    _, vt = _root(data)
    struct.pack_into("<HH", data, vt, vt_size, t_size)
    _expect(_mutant(tmp_path, bytes(data)))


def test_field_offset_beyond_its_table(tmp_path):
    data = bytearray(SOURCE.read_bytes())
    _, vt = _root(data)
    struct.pack_into("<H", data, vt + 4 + 2 * 1, 0xFFF0)  # Model.operator_codes
    _expect(_mutant(tmp_path, bytes(data)), "outside its table")


def test_offset_pointing_at_itself(tmp_path):
    data = bytearray(SOURCE.read_bytes())
    root, vt = _root(data)
    field = struct.unpack_from("<H", data, vt + 4 + 2 * 2)[0]  # Model.subgraphs
    struct.pack_into("<I", data, root + field, 0)
    _expect(_mutant(tmp_path, bytes(data)), "itself")


def test_huge_vector_length(tmp_path):
    data = bytearray(SOURCE.read_bytes())
    root, vt = _root(data)
    field = struct.unpack_from("<H", data, vt + 4 + 2 * 4)[0]  # Model.buffers
    vec = root + field + struct.unpack_from("<I", data, root + field)[0]
    struct.pack_into("<I", data, vec, 0x7FFFFFFF)
    _expect(_mutant(tmp_path, bytes(data)), "past the end")


def _shape_position(data: bytes, shape: tuple[int, ...]) -> int:
    needle = struct.pack(f"<I{len(shape)}i", len(shape), *shape)
    pos = data.find(needle)
    assert pos > 0
    return pos + 4


@pytest.mark.parametrize("dims", [(32, 3, 3, 1 << 30), (32, 3, -3, 16), (1 << 31 - 1, 1, 1, 1)])
def test_absurd_or_negative_shapes(tmp_path, dims):
    data = bytearray(SOURCE.read_bytes())
    pos = _shape_position(bytes(data), (32, 3, 3, 16))
    struct.pack_into("<4i", data, pos, *dims)
    err = _expect(_mutant(tmp_path, bytes(data)))
    assert err.tensor == "arith.constant1"


def _tree_mutant(tmp_path, open_fixture, edit) -> Path:
    model = open_fixture(SOURCE)
    tree = copy.deepcopy(model.metadata["tflite_tree"])
    edit(tree)
    out = tmp_path / "tree.tflite"
    write_tree(model, tree, out)
    return out


def _tensor(tree, name="arith.constant1"):
    return next(t for t in tree["subgraphs"][0]["tensors"] if t.get("name") == name)


CASES = {
    "buffer index": (lambda t: _tensor(t).update(buffer=9999), "buffer index"),
    "opcode index": (
        lambda t: t["subgraphs"][0]["operators"][0].update(opcode_index=77),
        "operator code",
    ),
    "operator input": (
        lambda t: t["subgraphs"][0]["operators"][0].update(inputs=np.array([0, 500, 9], np.int32)),
        "out of range",
    ),
    "subgraph output": (
        lambda t: t["subgraphs"][0].update(outputs=np.array([1000], np.int32)),
        "out of range",
    ),
    "signature tensor": (
        lambda t: t["signature_defs"][0]["outputs"][0].update(tensor_index=4000),
        "out of range",
    ),
    "metadata buffer": (lambda t: t["metadata"][0].update(buffer=123456), "out of range"),
    "no subgraph": (lambda t: t.update(subgraphs=[]), "no subgraph"),
    "17 dimensions": (lambda t: _tensor(t).update(shape=np.ones(17, np.int32)), "dimensions"),
    "buffer past the file": (
        lambda t: t["buffers"][_tensor(t)["buffer"]].update(offset=1 << 40, size=4608),
        "past the file",
    ),
    "scale count": (
        lambda t: _tensor(t).update(
            type=9,  # int8: the 18432-byte buffer holds 32·3·3·64 codes
            shape=np.array([32, 3, 3, 64], np.int32),
            quantization={"scale": np.ones(5, np.float32), "quantized_dimension": 0},
        ),
        "scales",
    ),
    "non-finite scale": (
        lambda t: _tensor(t, "arith.constant").update(
            type=9,
            shape=np.array([128], np.int32),
            quantization={"scale": np.array([np.inf], np.float32)},
        ),
        "not finite",
    ),
    "sparse": (
        lambda t: _tensor(t).update(sparsity={"traversal_order": np.arange(4, dtype=np.int32)}),
        "sparse",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_inconsistent_model(tmp_path, open_fixture, case):
    edit, words = CASES[case]
    _expect(_tree_mutant(tmp_path, open_fixture, edit), words)


def test_shared_buffer_is_legal(tmp_path, open_fixture):
    """Two tensors on one buffer (converters deduplicate equal constants): read both."""

    def share(tree):
        a, b = (
            _tensor(tree, "arith.constant"),
            _tensor(
                tree,
                "digits_convnet/conv1/Relu;"
                "digits_convnet/conv1/BiasAdd;"
                "digits_convnet/conv1/Conv2D;"
                "digits_convnet/conv1/BiasAdd/"
                "ReadVariableOp",
            ),
        )
        b["shape"] = np.array([32], np.int32)
        b["buffer"] = a["buffer"]

    with read_tflite(_tree_mutant(tmp_path, open_fixture, share)) as m:
        values = [t.load() for t in m if t.info.shape == (32,)]
    assert len(values) == 2 and np.array_equal(values[0], values[1])


def test_byte_flips_end_in_format_errors(tmp_path):
    """300 mutants with 1–8 random bytes changed: each opens and loads, or fails cleanly."""
    data = SOURCE.read_bytes()
    rng = random.Random(14)
    start = time.monotonic()
    failed = 0
    for k in range(300):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf) // 4)] = rng.randrange(256)  # the tables, not the data
        path = _mutant(tmp_path, bytes(buf), f"m{k}.tflite")
        try:
            _open_and_load(path)
        except FormatError as exc:
            failed += 1
            assert str(path) in str(exc)
        path.unlink()
    assert failed > 30
    assert time.monotonic() - start < 120
