"""TF.js reader on real files (nsfwjs uint8 layers model, blazeface graph model) and on
hand-made manifests that probe quantization decoding, spanning shards and hostile input."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.formats import open_model, sniff_format
from inspector.formats.tfjs.reader import read_tfjs

_ITEM = {"float32": 4, "int32": 4, "bool": 1}
_QITEM = {"uint8": 1, "uint16": 2, "float16": 2}


def _raw_entries(folder: Path):
    """Independent re-implementation: (entry, raw bytes) in manifest order."""
    doc = json.loads((folder / "model.json").read_text())
    for group in doc["weightsManifest"]:
        blob = b"".join((folder / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"], dtype=np.int64))
            q = w.get("quantization")
            size = n * (_QITEM[q["dtype"]] if q else _ITEM[w["dtype"]])
            yield w, blob[off : off + size]
            off += size
        assert off == len(blob)


def test_nsfwjs_uint8_layers_model(shared_models: Path) -> None:
    folder = shared_models / "tfjs-layers-nsfwjs-mobilenet_v2-u8"
    assert sniff_format(folder) == "tfjs"
    assert sniff_format(folder / "model.json") == "tfjs"
    with open_model(folder) as model:
        assert model.format == "tfjs"
        assert model.metadata["tfjs_format"] is None
        assert model.metadata["tfjs_model_type"] == "layers-model"
        assert model.metadata["keras_config"]["class_name"] == "Model"
        assert model.metadata["keras_version"] == "2.2.4"
        entries = list(_raw_entries(folder))
        assert len(model) == len(entries) == 266
        assert model.parameter_count == 2_619_461
        for t, (w, raw) in zip(model, entries, strict=True):
            assert t.name == w["name"]
            assert t.info.shape == tuple(w["shape"])
            assert t.info.dtype == "float32"
            assert t.info.layer == w["name"].rpartition("/")[0]
            axis = -2 if "depthwise_kernel" in w["name"] else -1
            assert t.info.channel_axis == (axis if len(w["shape"]) >= 2 else None)
            q = w["quantization"]
            assert t.info.stored.scheme == "uint8"
            assert t.info.stored.params == {"min": q["min"], "scale": q["scale"]}
            codes = np.frombuffer(raw, np.uint8)
            expect = (codes.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
            got = t.load()
            assert got.dtype == np.float32 and not got.flags.writeable
            assert np.array_equal(got.reshape(-1).view(np.uint32), expect.view(np.uint32))


def test_blazeface_graph_model_int32(shared_models: Path) -> None:
    folder = shared_models / "tfjs-graph-human-blazeface-f32"
    with open_model(folder / "model.json") as model:
        assert model.metadata["tfjs_format"] == "graph-model"
        assert model.metadata["tfjs_model_type"] == "graph-model"
        assert "keras_config" not in model.metadata
        assert "node" in model.metadata["model_json"]["modelTopology"]
        entries = list(_raw_entries(folder))
        assert len(model) == len(entries) == 112
        n_int = 0
        for t, (w, raw) in zip(model, entries, strict=True):
            assert (t.name, t.info.shape, t.info.dtype) == (
                w["name"],
                tuple(w["shape"]),
                w["dtype"],
            )
            assert t.info.stored is None
            want = np.frombuffer(raw, "<f4" if w["dtype"] == "float32" else "<i4")
            assert np.array_equal(t.load().reshape(-1), want)
            n_int += w["dtype"] == "int32"
        assert n_int == 6


def _write_model(folder: Path, weights: list[dict], shards: list[bytes], paths=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = paths or [f"group1-shard{i + 1}of{len(shards)}.bin" for i in range(len(shards))]
    for name, data in zip(names, shards, strict=False):
        (folder / name).write_bytes(data)
    doc = {
        "format": "layers-model",
        "modelTopology": {"class_name": "Sequential", "config": {"layers": []}},
        "weightsManifest": [{"paths": names, "weights": weights}],
    }
    (folder / "model.json").write_text(json.dumps(doc))
    return folder / "model.json"


def test_quantized_and_plain_dtypes_span_shards(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    q16 = rng.integers(0, 65536, size=(3, 5), dtype=np.uint16)
    half = rng.standard_normal(7).astype(np.float16)
    qint = np.array([0, 1, 2, 3, 255], np.uint8)
    f32 = rng.standard_normal((4, 2)).astype(np.float32)
    flags = np.array([1, 0, 1], np.uint8)
    strings = [b"ab", b"", b"\x00xyz"]
    sbytes = b"".join(len(s).to_bytes(4, "little") + s for s in strings)
    blob = (
        q16.astype("<u2").tobytes()
        + half.astype("<f2").tobytes()
        + qint.tobytes()
        + f32.astype("<f4").tobytes()
        + flags.tobytes()
        + sbytes
    )
    weights = [
        {
            "name": "a/k",
            "shape": [3, 5],
            "dtype": "float32",
            "quantization": {"dtype": "uint16", "min": -1.25, "scale": 3.1e-5},
        },
        {
            "name": "a/h",
            "shape": [7],
            "dtype": "float32",
            "quantization": {"dtype": "float16", "original_dtype": "float32"},
        },
        {
            "name": "b/i",
            "shape": [5],
            "dtype": "int32",
            "quantization": {"dtype": "uint8", "min": -2.5, "scale": 0.5},
        },
        {"name": "b/f", "shape": [4, 2], "dtype": "float32"},
        {"name": "c", "shape": [3], "dtype": "bool"},
        {"name": "s/vocab", "shape": [3], "dtype": "string"},
    ]
    cut = [0, 11, 40, 41, len(blob)]  # odd cuts: weights span shards
    path = _write_model(tmp_path, weights, [blob[a:b] for a, b in itertools.pairwise(cut)])
    with read_tfjs(path) as m:
        assert list(m.tensors) == [w["name"] for w in weights]
        expect16 = (q16.astype(np.float64) * 3.1e-5 + -1.25).astype(np.float32)
        assert np.array_equal(m["a/k"].load().view(np.uint32), expect16.view(np.uint32))
        assert m["a/k"].info.stored.params == {"min": -1.25, "scale": 3.1e-5}
        assert m["a/h"].info.stored.scheme == "float16"
        assert m["a/h"].info.stored.params == {"original_dtype": "float32"}
        assert np.array_equal(m["a/h"].load(), half.astype(np.float32))
        # JavaScript Math.round: halves go up, -2.5 → -2, -2.0 → -2, -1.5 → -1
        assert m["b/i"].load().tolist() == [-2, -2, -1, -1, 125]
        assert np.array_equal(m["b/f"].load(), f32)
        assert m["c"].load().tolist() == [True, False, True]
        assert m["s/vocab"].info.dtype == "string"
        assert m["s/vocab"].load().tolist() == strings
        assert m["c"].info.layer == "c" and m["b/f"].info.layer == "b"


def _one_weight(tmp_path: Path, **changes) -> Path:
    w = {"name": "d/kernel", "shape": [2, 2], "dtype": "float32"}
    w.update(changes)
    return _write_model(tmp_path, [w], [np.zeros(4, np.float32).tobytes()])


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"shape": [2, -2]}, "negative"),
        ({"shape": [10**6, 10**6]}, "manifest declares 4000000000000"),
        ({"shape": "2,2"}, "list of integers"),
        ({"shape": [2, 2.0]}, "list of integers"),
        ({"shape": [2, True]}, "list of integers"),
        ({"dtype": "complex128"}, "unsupported dtype"),
        ({"quantization": {"dtype": "int4", "min": 0, "scale": 1}}, "unknown quantization"),
        ({"quantization": {"dtype": "uint8", "min": "x", "scale": 1}}, "finite number"),
        ({"shape": [2]}, "more than the manifest declares"),
        ({"shape": [3, 2]}, "hold 16 bytes but the manifest declares 24"),
    ],
)
def test_bad_entries_rejected(tmp_path: Path, changes: dict, reason: str) -> None:
    path = _one_weight(tmp_path, **changes)
    with pytest.raises(FormatError, match=reason) as err:
        open_model(path)
    assert str(tmp_path) in str(err.value)


def test_duplicate_names_rejected(tmp_path: Path) -> None:
    w = {"name": "x", "shape": [1], "dtype": "float32"}
    path = _write_model(tmp_path, [w, dict(w)], [bytes(8)])
    with pytest.raises(FormatError, match="duplicate") as err:
        open_model(path)
    assert err.value.tensor == "x"


@pytest.mark.parametrize("bad", ["../outside.bin", "/etc/passwd", "a/../../outside.bin", "C:\\x"])
def test_paths_leaving_the_folder_rejected(tmp_path: Path, bad: str) -> None:
    (tmp_path / "outside.bin").write_bytes(bytes(16))
    path = _write_model(
        tmp_path / "m", [{"name": "x", "shape": [4], "dtype": "float32"}], [], paths=[bad]
    )
    with pytest.raises(FormatError, match="leaves the model's folder"):
        open_model(path)


def test_symlink_out_of_folder_rejected(tmp_path: Path) -> None:
    (tmp_path / "outside.bin").write_bytes(bytes(16))
    folder = tmp_path / "m"
    folder.mkdir()
    os.symlink(tmp_path / "outside.bin", folder / "w.bin")
    path = _write_model(
        folder, [{"name": "x", "shape": [4], "dtype": "float32"}], [], paths=["w.bin"]
    )
    with pytest.raises(FormatError, match="links outside"):
        open_model(path)


def test_truncated_and_missing_shards_name_the_file(tmp_path: Path) -> None:
    w = [{"name": "x", "shape": [8], "dtype": "float32"}]
    path = _write_model(tmp_path / "t", w, [bytes(16), bytes(10)])
    with pytest.raises(FormatError, match="hold 26 bytes but the manifest declares 32") as err:
        open_model(path)
    assert err.value.path.endswith("group1-shard2of2.bin") and err.value.tensor == "x"
    path = _write_model(tmp_path / "m", w, [bytes(16)], paths=["a.bin", "b.bin"])
    with pytest.raises(FormatError, match="missing") as err:
        open_model(path)
    assert err.value.path.endswith("b.bin")


def test_shard_shrinking_after_open_is_a_format_error(tmp_path: Path) -> None:
    w = [{"name": "x", "shape": [8], "dtype": "float32"}]
    path = _write_model(tmp_path, w, [bytes(32)])
    with open_model(path) as m:
        (tmp_path / "group1-shard1of1.bin").write_bytes(bytes(8))
        with pytest.raises(FormatError, match="ends 24 bytes early") as err:
            m["x"].load()
        assert err.value.tensor == "x"


@pytest.mark.parametrize(
    "text", ["{", "[1, 2]", '{"weightsManifest": 3}', '{"weightsManifest": [{"paths": 1}]}']
)
def test_bad_json_rejected(tmp_path: Path, text: str) -> None:
    (tmp_path / "model.json").write_text(text)
    with pytest.raises(FormatError):
        open_model(tmp_path)


def test_bare_weights_manifest(tmp_path: Path) -> None:
    manifest = [{"paths": ["w.bin"], "weights": [{"name": "d/k", "shape": [2], "dtype": "int32"}]}]
    (tmp_path / "w.bin").write_bytes(np.array([7, -3], "<i4").tobytes())
    path = tmp_path / "anything.data"  # content, not suffix, decides
    path.write_text(json.dumps(manifest))
    assert sniff_format(path) == "tfjs-weights"
    with open_model(path) as m:
        assert m.format == "tfjs-weights"
        assert m["d/k"].load().tolist() == [7, -3]
        assert m.metadata["weights_manifest"] == manifest
