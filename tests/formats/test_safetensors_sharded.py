"""Sharded safetensors: a checkpoint huggingface_hub wrote (data/sharded/make_sharded.py) opens
as one model through its index or folder; lying indexes are refused; exports shard like
Hugging Face with an exact size prediction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inspector.cli.main import main as cli_main
from inspector.core.errors import FormatError
from inspector.core.plan import Plan
from inspector.core.preview import quantize_tensor, run_preview
from inspector.formats import open_model
from inspector.formats.export import export_model
from inspector.formats.safetensors import sharded
from inspector.formats.safetensors.sharded_writer import sharded_target
from inspector.formats.safetensors.writer import load_dequantized

SRC = Path(__file__).resolve().parent / "data" / "sharded"
INDEX = "model.safetensors.index.json"
SHARDS = [f"model-{i:05d}-of-00003.safetensors" for i in (1, 2, 3)]


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(SRC / "expected.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dst = tmp_path / "ckpt"
    dst.mkdir()
    for f in [INDEX, *SHARDS]:
        shutil.copyfile(SRC / f, dst / f)
    return dst


def _edit_index(folder: Path, change) -> None:
    doc = json.loads((folder / INDEX).read_text())
    change(doc)
    (folder / INDEX).write_text(json.dumps(doc))


@pytest.mark.parametrize("which", ["index", "folder"])
def test_opens_as_one_model(expected, which: str) -> None:
    path = SRC / INDEX if which == "index" else SRC
    with open_model(path) as m:
        assert m.format == "safetensors" and m.path == SRC / INDEX
        assert {t.name for t in m} == set(expected)
        for t in m:
            got = np.asarray(t.load())
            assert np.array_equal(got.astype(expected[t.name].dtype), expected[t.name]), t.name
        assert m["model.layers.0.mlp.up_proj.weight"].info.dtype == "bfloat16"
        assert m.metadata["safetensors_shards"] == SHARDS
        assert m.metadata["safetensors_index"] == {"total_size": 12992, "source": "test"}
        assert m.metadata["source_files"] == [SRC / INDEX, *(SRC / s for s in SHARDS)]
        assert m.metadata["safetensors_unindexed"] == []
        first = [t.name for t in m][:3]
        assert set(first) == {
            "model.embed_tokens.weight",
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.0.self_attn.k_proj.weight",
        }  # shard 1 first


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["weight_map"].update({"lm_head.weight": "../evil.safetensors"}), "leaves"),
        (lambda d: d["weight_map"].update({"lm_head.weight": "/etc/passwd"}), "leaves"),
        (lambda d: d["weight_map"].update({"lm_head.weight": "gone.safetensors"}), "missing"),
        (lambda d: d["weight_map"].update({"lm_head.weight": SHARDS[0]}), "as the index says"),
        (lambda d: d["weight_map"].update({"ghost.weight": SHARDS[1]}), "as the index says"),
        (lambda d: d["weight_map"].update({"lm_head.weight": 3}), "must name a shard"),
        (lambda d: d.pop("weight_map"), "no weight_map"),
        (lambda d: d.update({"metadata": []}), "metadata must be an object"),
    ],
)
def test_lying_index_is_refused(folder: Path, change, reason: str) -> None:
    _edit_index(folder, change)
    with pytest.raises(FormatError) as info:
        open_model(folder / INDEX)
    assert reason in info.value.reason
    assert str(folder) in str(info.value)


def test_tensor_in_two_shards_and_broken_index(folder: Path, monkeypatch) -> None:
    shutil.copyfile(folder / SHARDS[0], folder / "copy.safetensors")
    _edit_index(folder, lambda d: d["weight_map"].update({"extra": "copy.safetensors"}))
    with pytest.raises(FormatError, match="also in shard"):
        open_model(folder)
    (folder / INDEX).write_text("{not json")
    with pytest.raises(FormatError, match="index is not valid"):
        open_model(folder / INDEX)
    _edit_index_text = json.dumps({"weight_map": {"a": SHARDS[0]}})
    (folder / INDEX).write_text(_edit_index_text)
    monkeypatch.setattr(sharded, "MAX_INDEX_BYTES", 10)
    with pytest.raises(FormatError, match="more than 10"):
        open_model(folder / INDEX)


def test_unindexed_tensor_is_kept_and_named(folder: Path) -> None:
    _edit_index(folder, lambda d: d["weight_map"].pop("model.norm.weight"))
    with open_model(folder) as m:
        assert "model.norm.weight" in m.tensors
        assert m.metadata["safetensors_unindexed"] == ["model.norm.weight"]


def test_two_indexes_in_a_folder_are_ambiguous(folder: Path) -> None:
    shutil.copyfile(folder / INDEX, folder / "other.safetensors.index.json")
    with pytest.raises(FormatError, match=r"no model\.json nor one"):
        open_model(folder)


def _sizes(out: Path) -> dict[str, int]:
    return {f.name: f.stat().st_size for f in sorted(out.iterdir())}


@pytest.mark.parametrize("spec", ["float32", "uint8", "int4", "kmeans3"])
def test_sharded_export_round_trip(tmp_path: Path, spec: str) -> None:
    plan, limit = Plan(default=spec), 1000
    out = tmp_path / "out"
    with open_model(SRC) as model:
        preview = run_preview(model, plan, sharded_target(limit))
        result = export_model(model, plan, "safetensors", out, max_shard_bytes=limit)
        target = sharded_target(limit)
        want = {t.name: quantize_tensor(t, plan.scheme_for(t.info), target).decoded for t in model}
    sizes = _sizes(out)
    assert sum(sizes.values()) == preview.total["quantized_bytes"] == result.total_bytes
    index = json.loads((out / INDEX).read_text())
    assert (out / INDEX).read_text() == json.dumps(index, indent=2, sort_keys=True) + "\n"
    shards = sorted(set(index["weight_map"].values()))
    n = len(shards)
    assert n > 1 and shards == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    got: dict[str, np.ndarray] = {}
    for shard in shards:
        got |= load_dequantized(out / shard)
    assert sorted(got) == sorted(want)
    for name, values in want.items():
        assert np.array_equal(got[name].astype(np.float32), np.asarray(values, np.float32)), name
    with open_model(out) as back:
        arrays = {t.name: t.info.nbytes for t in back}
        assert set(arrays) == set(index["weight_map"])
        assert index["metadata"]["total_size"] == sum(arrays.values())
        by_shard: dict[str, dict[str, int]] = {}
        for name, shard in index["weight_map"].items():
            base = name.rsplit(".", 1)[0] if name.rsplit(".", 1)[0] in want else name
            tensors = by_shard.setdefault(shard, {})
            tensors[base] = tensors.get(base, 0) + arrays[name]
        for tensors in by_shard.values():  # within the limit, or one tensor larger than it
            assert sum(tensors.values()) <= limit or len(tensors) == 1, tensors


def test_one_shard_is_model_safetensors(tmp_path: Path) -> None:
    with open_model(SRC) as model:
        result = export_model(model, Plan(), "safetensors", tmp_path / "one")
    assert [p.name for p, _ in result.files] == ["model.safetensors"]
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["model.safetensors"]


def test_cli_max_shard_size(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    code = cli_main(["export", str(SRC), "-o", str(out), "--max-shard-size", "6KB", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert [Path(f["path"]).name for f in doc["files"]][-1] == INDEX
    assert len(doc["files"]) == 4  # three shards as huggingface_hub cut them, plus the index
    for bad in ("0", "50%", "lots", "inf", "1e308"):
        code = cli_main(["export", str(SRC), "-o", str(tmp_path / "x"), "--max-shard-size", bad])
        assert code == 2
        assert "--max-shard-size" in capsys.readouterr().err


def test_export_never_writes_into_its_input_folder(folder: Path) -> None:
    with open_model(folder) as model, pytest.raises(FormatError, match="refusing to write over"):
        export_model(model, Plan(), "safetensors", folder, force=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted([INDEX, *SHARDS])
