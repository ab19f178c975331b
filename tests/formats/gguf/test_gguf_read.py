"""GGUF reading against gguf-py's GGUFReader on files written by gguf-py and by llama.cpp's
llama-quantize / llama-gguf-split (tests/formats/gguf/data/make_gguf_fixtures.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.formats.gguf.reader import read_gguf

gguf = pytest.importorskip("gguf")

DATA = Path(__file__).resolve().parent / "data"
FILES = ["kv_types.gguf", "tiny_f16.gguf", "tiny_q8_0.gguf", "tiny_q4_k_m.gguf"]
SPLITS = [f"tiny_q4_k_m-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
PLAIN = {"f32", "f16", "bf16", "f64", "i8", "i16", "i32", "i64"}


def _oracle_value(field) -> object:
    value = field.contents()
    if isinstance(value, float) and field.types[0] == gguf.GGUFValueType.FLOAT32:
        return float(str(np.float32(value)))
    return value


@pytest.mark.parametrize("name", FILES + SPLITS[1:2])
def test_metadata_equals_gguf_py(name: str) -> None:
    """Every key in order with its value (a split model shows its first split's keys)."""
    reader = gguf.GGUFReader(DATA / (SPLITS[0] if name in SPLITS else name))
    expected = {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    with read_gguf(DATA / name) as m:
        shown = m.metadata["gguf_metadata"]
        assert list(shown) == list(expected)
        for key, field in expected.items():
            got = shown[key]
            if field.types[0] != gguf.GGUFValueType.ARRAY:
                assert got == _oracle_value(field), key
                continue
            if field.types[1] == gguf.GGUFValueType.ARRAY:
                continue  # gguf-py flattens nested arrays; see test_nested_array_summary
            assert got["length"] == len(field.data), key
            first = _oracle_value(field)[: len(got["first"])]
            assert got["first"] == first, key
        assert m.metadata["gguf_version"] == 3


def test_nested_array_summary() -> None:
    with read_gguf(DATA / "kv_types.gguf") as m:
        nested = m.metadata["gguf_metadata"]["test.array.nested"]
    assert nested == {
        "array": "array",
        "length": 2,
        "first": [
            {"array": "int32", "length": 3, "first": [1, 2, 3]},
            {"array": "int32", "length": 2, "first": [4, 5]},
        ],
    }


@pytest.mark.parametrize("name", FILES)
def test_tensor_infos_and_plain_values_equal_gguf_py(name: str) -> None:
    reader = gguf.GGUFReader(DATA / name)
    with read_gguf(DATA / name) as m:
        assert [t.name for t in m] == [t.name for t in reader.tensors]
        for rt in reader.tensors:
            t = m[rt.name]
            ne = tuple(int(d) for d in rt.shape)
            assert t.info.shape == tuple(reversed(ne))
            assert t.info.channel_axis == (0 if len(ne) >= 2 else None)
            gt = m.metadata["gguf_tensors"][rt.name]
            assert (gt.ggml.name, gt.nbytes, gt.ne) == (rt.tensor_type.name.lower(), rt.n_bytes, ne)
            if rt.tensor_type.name.lower() in PLAIN:
                got = t.load()
                assert got.shape == t.info.shape
                assert got.tobytes() == np.asarray(rt.data).tobytes(), rt.name
                assert t.info.stored is None
            else:
                stored = t.info.stored
                assert stored is not None and stored.scheme == rt.tensor_type.name.lower()
                block, size = gguf.GGML_QUANT_SIZES[rt.tensor_type]
                assert stored.params["block_size"] == block
                assert stored.params["block_bytes"] == size
                assert stored.params["bits_per_weight"] == 8 * size / block
                assert stored.params["block_axis"] == len(ne) - 1
                assert stored.params["nbytes"] == rt.n_bytes
                assert t.info.dtype == "float32"


@pytest.mark.parametrize("name", FILES)
def test_block_types_decode_like_gguf_quants(name: str) -> None:
    reader = gguf.GGUFReader(DATA / name)
    with read_gguf(DATA / name) as m:
        for rt in reader.tensors:
            if rt.tensor_type.name.lower() in PLAIN:
                continue
            expected = gguf.quants.dequantize(rt.data, rt.tensor_type)
            got = m[rt.name].load()
            assert got.dtype == np.float32
            assert np.array_equal(got.view(np.uint32), expected.astype(np.float32).view(np.uint32))


def test_alignment_from_metadata() -> None:
    with read_gguf(DATA / "kv_types.gguf") as m:
        assert m.metadata["gguf_alignment"] == 64
        offsets = [t.offset for t in m.metadata["gguf_tensors"].values()]
    assert all(o % 64 == 0 for o in offsets)


@pytest.mark.parametrize("split", SPLITS)
def test_split_model_opens_as_one_from_any_split(split: str) -> None:
    with read_gguf(DATA / "tiny_q4_k_m.gguf") as whole, read_gguf(DATA / split) as m:
        assert m.path == DATA / SPLITS[0]
        assert [t.name for t in m] == [t.name for t in whole]
        assert m.metadata["source_files"] == [DATA / s for s in SPLITS]
        for t in whole:
            assert t.info == m[t.name].info
        for name, info in whole.metadata["gguf_tensors"].items():
            assert m.metadata["gguf_tensors"][name].nbytes == info.nbytes
        plain = [t for t in whole if t.info.stored is None]
        for t in plain:
            assert np.array_equal(t.load(), m[t.name].load())
        assert m.metadata["gguf_metadata"]["split.count"] == 3


def test_split_missing_or_renamed_is_refused(tmp_path: Path) -> None:
    for s in SPLITS[:2]:
        shutil.copy(DATA / s, tmp_path / s)
    with pytest.raises(FormatError, match="split 3 of 3 is missing"):
        read_gguf(tmp_path / SPLITS[0])
    shutil.copy(DATA / SPLITS[0], tmp_path / "renamed.gguf")
    with pytest.raises(FormatError, match="does not say which split"):
        read_gguf(tmp_path / "renamed.gguf")
    shutil.copy(DATA / SPLITS[0], tmp_path / SPLITS[2])  # split 1's content under split 3's name
    with pytest.raises(FormatError, match=r"split\.no 0"):
        read_gguf(tmp_path / SPLITS[0])


def test_llama_quantize_file_records_its_types() -> None:
    with read_gguf(DATA / "tiny_q4_k_m.gguf") as m:
        types = {t.name: t.info.stored.scheme if t.info.stored else t.info.dtype for t in m}
        assert m.metadata["gguf_metadata"]["general.file_type"] == 15
    assert types["blk.0.attn_q.weight"] == "q4_k"
    assert types["blk.0.ffn_down.weight"] == "q6_k"
    assert types["output_norm.weight"] == "float32"


def test_cli_info_shows_every_key(capsys) -> None:
    from inspector.cli.main import main

    assert main(["info", str(DATA / "kv_types.gguf"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"]["format"] == "gguf"
    assert doc["metadata"]["general.alignment"] == 64
    assert doc["metadata"]["test.array.string"]["length"] == 40
    assert main(["info", str(DATA / "kv_types.gguf")]) == 0
    text = capsys.readouterr().out
    assert "test.scalar.string = 'héllo ✓'" in text
    assert "test.array.int32 = {'array': 'int32', 'length': 25" in text
