"""TF.js manifests with very many weights, shards or string records (issue 18 §2, hangs):
each weight scanned every shard (weights × shards), each string record opened a shard file,
and the writer substituted each weight's min/scale with one `str.replace` over the whole
document (10,000 weights: 138 s). These tests check the results stay right at scale and that
the work per item is constant (file opens counted, shard lookup checked against brute force),
and that counts beyond the documented caps are refused with a clear error.
"""

from __future__ import annotations

import builtins
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from robust_helpers import bounded

from inspector.core.errors import FormatError
from inspector.core.plan import Plan
from inspector.formats.export import export_model
from inspector.formats.registry import open_model
from inspector.formats.tfjs import reader as tfjs_reader


def _manifest(folder: Path, weights: list[dict], shards: list[bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(shards):
        name = f"group1-shard{i + 1}of{len(shards)}.bin"
        (folder / name).write_bytes(data)
        paths.append(name)
    doc = {"format": "graph-model", "modelTopology": {"node": []}}
    doc["weightsManifest"] = [{"paths": paths, "weights": weights}]
    path = folder / "model.json"
    path.write_text(json.dumps(doc))
    return path


def _cut(data: bytes, n: int) -> list[bytes]:
    step = max(1, -(-len(data) // n))
    return [data[i : i + step] for i in range(0, len(data), step)]


def test_many_weights_over_many_shards(tmp_path: Path) -> None:
    n = 3000
    values = np.arange(n * 3, dtype=np.float32)
    weights = [{"name": f"w{i}", "shape": [3], "dtype": "float32"} for i in range(n)]
    path = _manifest(tmp_path / "m", weights, _cut(values.tobytes(), 2000))
    with bounded(seconds=60, peak=256 << 20), open_model(path) as model:
        for i, t in enumerate(model):
            np.testing.assert_array_equal(t.load(), values[3 * i : 3 * i + 3])


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    sizes=st.lists(st.integers(0, 7), min_size=1, max_size=30),
    offset=st.integers(0, 250),
    nbytes=st.integers(0, 60),
)
def test_shard_lookup_matches_a_full_scan(sizes: list[int], offset: int, nbytes: int) -> None:
    files = [Path(f"s{i}") for i in range(len(sizes))]
    g = tfjs_reader._Group(files, sizes)
    want = []
    starts = np.cumsum([0, *sizes])
    for i, f in enumerate(files):
        lo, hi = int(starts[i]), int(starts[i + 1])
        if hi <= offset or lo >= offset + nbytes:
            continue
        a, b = max(lo, offset), min(hi, offset + nbytes)
        want.append((f, a - lo, b - a))
    assert g.segments(offset, nbytes) == want


def _strings(records: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(r)) + r for r in records)


def test_string_weight_with_many_records_reads_in_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [str(i).encode() * (i % 5) for i in range(200_000)]
    data = _strings(records)
    weights = [{"name": "vocab", "shape": [len(records)], "dtype": "string"}]
    path = _manifest(tmp_path / "m", weights, _cut(data, 3))
    opened = [0]
    real_open = builtins.open

    def counting_open(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        opened[0] += 1
        return real_open(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", counting_open)
    with bounded(seconds=60, peak=256 << 20), open_model(path) as model:
        assert opened[0] < 20, f"{opened[0]} file opens for one string weight"
        got = model["vocab"].load()
    assert list(got) == records


def test_string_weight_record_count_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tfjs_reader, "MAX_STRING_RECORDS", 1000)
    weights = [{"name": "vocab", "shape": [1001], "dtype": "string"}]
    path = _manifest(tmp_path / "m", weights, [_strings([b"a"] * 1001)])
    with pytest.raises(FormatError, match="records") as info:
        open_model(path)
    assert info.value.tensor == "vocab"


@pytest.mark.parametrize("cap", ["MAX_WEIGHTS", "MAX_SHARDS"])
def test_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: str) -> None:
    monkeypatch.setattr(tfjs_reader, cap, 100)
    weights = [{"name": f"w{i}", "shape": [1], "dtype": "float32"} for i in range(101)]
    path = _manifest(tmp_path / "m", weights, _cut(np.zeros(101, np.float32).tobytes(), 101))
    with pytest.raises(FormatError, match="more than 100") as info:
        open_model(path)
    assert str(path) in str(info.value)


def test_export_of_many_quantized_weights(tmp_path: Path) -> None:
    """Every weight's own min/scale lands in its own manifest entry (one pass, not one
    replace per weight)."""
    n = 1500
    rng = np.random.default_rng(0)
    values = (rng.standard_normal((n, 4)) * np.arange(1, n + 1)[:, None]).astype(np.float32)
    weights = [{"name": f"w{i}", "shape": [4], "dtype": "float32"} for i in range(n)]
    path = _manifest(tmp_path / "m", weights, [values.tobytes()])
    out = tmp_path / "out"
    with open_model(path) as model:
        export_model(model, Plan(default="uint8"), "tfjs", out)
    with open_model(out / "model.json") as back:
        for i, t in enumerate(back):
            assert t.name == f"w{i}"
            got = t.load()
            step = (values[i].max() - values[i].min()) / 255
            np.testing.assert_allclose(got, values[i], atol=step)


def test_reserved_character_in_a_name_is_refused(tmp_path: Path) -> None:
    weights = [
        {"name": "\ue000q0a", "shape": [2], "dtype": "float32"},
        {"name": "b", "shape": [2], "dtype": "float32"},
    ]
    path = _manifest(tmp_path / "m", weights, [np.ones(4, np.float32).tobytes()])
    with open_model(path) as model, pytest.raises(FormatError, match="U\\+E000"):
        export_model(model, Plan(default="uint8"), "tfjs", tmp_path / "out")
    assert not (tmp_path / "out").exists()
