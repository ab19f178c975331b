"""Hostile TF.js folders: real model.json + shards copied to tmp_path, then damaged."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from robust_helpers import MLP, copy_tfjs, expect_format_error, open_and_load, shared

FIRST = "dense1/kernel"  # first weight of the diabetes MLP's manifest


@pytest.fixture
def mlp(tmp_path: Path) -> Path:
    return copy_tfjs(MLP / "tfjs", tmp_path / "tfjs")


def _edit(model_json: Path, change: Any) -> None:
    doc = json.loads(model_json.read_text())
    change(doc)
    model_json.write_text(json.dumps(doc))


def _weights(doc: dict) -> list[dict]:
    return doc["weightsManifest"][0]["weights"]


def test_untouched_copy_opens(mlp: Path) -> None:
    open_and_load(mlp)


@pytest.mark.parametrize("keep", [0, 1, 100, 2491])
def test_truncated_model_json(mlp: Path, keep: int) -> None:
    data = mlp.read_bytes()
    mlp.write_bytes(data[:keep])
    expect_format_error(mlp)


@pytest.mark.parametrize("keep", [0, 3, 640, 1283])
def test_shard_shorter_than_manifest(mlp: Path, keep: int) -> None:
    shard = mlp.parent / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:keep])
    err = expect_format_error(mlp, names=shard, reason="manifest declares")
    assert err.tensor is not None  # the first weight that runs past the end


def test_shard_longer_than_manifest(mlp: Path) -> None:
    shard = mlp.parent / "group1-shard1of1.bin"
    with open(shard, "ab") as fh:
        fh.write(b"\0" * 12)
    expect_format_error(mlp, names=shard, reason="12 bytes more")


def test_shard_missing(mlp: Path) -> None:
    shard = mlp.parent / "group1-shard1of1.bin"
    shard.unlink()
    expect_format_error(mlp, names=shard, reason="missing")


def test_shard_shrinks_after_opening(mlp: Path) -> None:
    """The file changed between opening and loading: the loader names shard and tensor."""
    from inspector.formats.registry import open_model

    shard = mlp.parent / "group1-shard1of1.bin"
    with open_model(mlp) as model:
        shard.write_bytes(b"")
        with pytest.raises(Exception) as info:
            model[FIRST].load()
    assert type(info.value).__name__ == "FormatError"
    assert str(shard) in str(info.value) and FIRST in str(info.value)


@pytest.mark.parametrize(
    "path",
    ["../outside.bin", "sub/../../outside.bin", "/etc/passwd", "..\\outside.bin", "C:/x.bin"],
)
def test_manifest_path_leaving_folder(mlp: Path, path: str) -> None:
    shard = mlp.parent / "group1-shard1of1.bin"
    (mlp.parent.parent / "outside.bin").write_bytes(shard.read_bytes())

    def change(doc: dict) -> None:
        doc["weightsManifest"][0]["paths"] = [path]

    _edit(mlp, change)
    expect_format_error(mlp, reason="leaves the model's folder")


def test_manifest_symlink_out(mlp: Path) -> None:
    shard = mlp.parent / "group1-shard1of1.bin"
    outside = mlp.parent.parent / "outside.bin"
    outside.write_bytes(shard.read_bytes())
    shard.unlink()
    os.symlink(outside, shard)
    expect_format_error(mlp, reason="links outside")


def test_manifest_symlinked_folder_out(mlp: Path) -> None:
    outside = mlp.parent.parent / "elsewhere"
    outside.mkdir()
    (mlp.parent / "group1-shard1of1.bin").rename(outside / "w.bin")
    os.symlink(outside, mlp.parent / "sub")
    _edit(mlp, lambda d: d["weightsManifest"][0].__setitem__("paths", ["sub/w.bin"]))
    expect_format_error(mlp, reason="links outside")


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ("ten", "list of integers"),
        ([10, "16"], "list of integers"),
        ([10.0, 16], "list of integers"),
        ([10, True], "list of integers"),
        ([10, None], "list of integers"),
        ([-10, -16], "negative"),
        ([10**6, 10**6], "declares"),  # 10^12 elements
        ([2**40, 2**40, 2**40], "declares"),  # product overflows int64
        ([2**64], "declares"),
        ([1] * 100, "dimensions"),
    ],
)
def test_absurd_shapes(mlp: Path, shape: Any, reason: str) -> None:
    _edit(mlp, lambda d: _weights(d)[0].__setitem__("shape", shape))
    names = (mlp, mlp.parent / "group1-shard1of1.bin")
    expect_format_error(mlp, names=names, tensor=FIRST, reason=reason)


def test_shape_product_cancels_out(mlp: Path) -> None:
    """A zero dimension next to a huge one: zero elements, so the shard holds too much."""
    _edit(mlp, lambda d: _weights(d)[0].__setitem__("shape", [0, 10**15]))
    shard = mlp.parent / "group1-shard1of1.bin"
    expect_format_error(mlp, names=shard, reason="more than the manifest declares")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("dtype", "complex128", "unsupported dtype"),
        ("dtype", None, "unsupported dtype"),
        ("dtype", 7, "unsupported dtype"),
        ("quantization", {"dtype": "int3"}, "unknown quantization"),
        ("quantization", "uint8", "unknown quantization"),
        ("quantization", {"dtype": "uint8", "min": "0", "scale": 1}, "finite number"),
        ("quantization", {"dtype": "uint8", "min": 0, "scale": float("nan")}, "finite number"),
    ],
)
def test_wrong_entry_fields(mlp: Path, field: str, value: Any, reason: str) -> None:
    _edit(mlp, lambda d: _weights(d)[0].__setitem__(field, value))
    expect_format_error(mlp, tensor=FIRST, reason=reason)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.__setitem__("weightsManifest", {"paths": []}),
        lambda d: d.__setitem__("weightsManifest", ["group"]),
        lambda d: d["weightsManifest"][0].__setitem__("paths", "group1-shard1of1.bin"),
        lambda d: d["weightsManifest"][0].__setitem__("paths", [3]),
        lambda d: d["weightsManifest"][0].__setitem__("paths", [""]),
        lambda d: d["weightsManifest"][0].__setitem__("weights", None),
        lambda d: _weights(d).__setitem__(0, ["dense1/kernel"]),
        lambda d: _weights(d)[0].__setitem__("name", 12),
        lambda d: _weights(d)[0].__delitem__("shape"),
    ],
)
def test_wrong_manifest_types(mlp: Path, change: Any) -> None:
    _edit(mlp, change)
    expect_format_error(mlp)


def test_model_json_not_object(mlp: Path) -> None:
    mlp.write_text("[1, 2, 3]")
    expect_format_error(mlp)


def test_deeply_nested_json(mlp: Path) -> None:
    mlp.write_text('{"weightsManifest": ' + "[" * 100_000 + "]" * 100_000 + "}")
    expect_format_error(mlp)


def test_duplicate_tensor_names(mlp: Path) -> None:
    def change(doc: dict) -> None:
        _weights(doc)[1]["name"] = FIRST

    _edit(mlp, change)
    expect_format_error(mlp, tensor=FIRST, reason="duplicate")


def test_duplicate_names_across_groups(tmp_path: Path) -> None:
    """Two manifest groups in the real nsfwjs model, the second repeating a name."""
    src = shared("tfjs-layers-nsfwjs-mobilenet_v2-u8")
    model_json = copy_tfjs(src, tmp_path / "m")
    doc = json.loads(model_json.read_text())
    group = doc["weightsManifest"][0]
    entry = dict(group["weights"][0])
    (tmp_path / "m" / "extra.bin").write_bytes(b"\0" * 4 * _count(entry["shape"]))
    entry.pop("quantization", None)
    doc["weightsManifest"].append({"paths": ["extra.bin"], "weights": [entry]})
    model_json.write_text(json.dumps(doc))
    expect_format_error(model_json, tensor=entry["name"], reason="duplicate")


def _count(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def test_string_weight_with_huge_length_prefix(mlp: Path) -> None:
    """A string weight whose uint32 length prefix points far beyond the shard."""
    shard = mlp.parent / "group1-shard1of1.bin"
    data = bytearray(shard.read_bytes())
    data[0:4] = (0xFFFFFFF0).to_bytes(4, "little")
    shard.write_bytes(bytes(data))
    _edit(mlp, lambda d: _weights(d)[0].update(dtype="string", shape=[1]))
    expect_format_error(mlp, tensor=FIRST, reason="past the end")


def test_string_weight_absurd_count(mlp: Path) -> None:
    _edit(mlp, lambda d: _weights(d)[0].update(dtype="string", shape=[10**12]))
    expect_format_error(mlp, tensor=FIRST)


def test_graph_model_truncated_shard(tmp_path: Path) -> None:
    """Third-party graph model (blazeface, manifest path without groupN naming)."""
    model_json = copy_tfjs(shared("tfjs-graph-human-blazeface-f32"), tmp_path / "m")
    shard = model_json.parent / "blazeface.bin"
    shard.write_bytes(shard.read_bytes()[:100_000])
    expect_format_error(model_json, names=shard)


def test_quantized_layers_model_absurd_shape(tmp_path: Path) -> None:
    model_json = copy_tfjs(shared("tfjs-layers-nsfwjs-mobilenet_v2-u8"), tmp_path / "m")
    doc = json.loads(model_json.read_text())
    entry = doc["weightsManifest"][0]["weights"][3]
    entry["shape"] = [10**6, 10**6]
    model_json.write_text(json.dumps(doc))
    names = (model_json, model_json.parent / "group1-shard1of1")
    expect_format_error(model_json, names=names, tensor=entry["name"], reason="declares")
