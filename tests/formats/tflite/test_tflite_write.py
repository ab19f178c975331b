"""TF-Lite in → TF-Lite out: stored bytes against the official converter, exact sizes, layout."""

from __future__ import annotations

import numpy as np
import pytest
from tflite_helpers import DEMOS, bits, by_layer, export, fixture

from inspector.core.plan import Plan
from inspector.core.preview import quantize_tensor
from inspector.formats.tflite import edit
from inspector.formats.tflite.flatbuf import FileSource, FlatReader
from inspector.formats.tflite.flatbuild import ALIGN16_FROM
from inspector.formats.tflite.graph import buffer_blob, op_name
from inspector.formats.tflite.writer import PLAN_METADATA, TFLITE_TARGET, plan_json

SCHEMES = [
    "float32",
    "float16",
    "bfloat16",
    "int8",
    "int8:skip=1024",
    "uint8",
    "uint16",
    "affine4",
    "int4:group=8",
    "kmeans3",
    "float16:sparsity=0.3",
]


def _tree(path):
    src = FileSource(path)
    try:
        return FlatReader(src).root("Model"), src.size
    finally:
        src.close()


def _names_bytes(path) -> int:
    tree, _ = _tree(path)
    return sum(len(t.get("name", "")) for sg in tree["subgraphs"] for t in sg["tensors"])


@pytest.mark.parametrize("spec", SCHEMES)
@pytest.mark.parametrize("demo", DEMOS)
def test_round_trip_equals_preview_and_size_exact(open_fixture, tmp_path, demo, spec):
    model = open_fixture(fixture(demo, "float32"))
    plan = Plan().with_default(spec)
    out = tmp_path / "out.tflite"
    preview, size = export(model, plan, out)
    assert size == preview.total["quantized_bytes"]
    back = open_fixture(out)
    assert sorted(t.name for t in back) == sorted(t.name for t in model)
    for t in model:
        want = quantize_tensor(t, plan.scheme_for(t.info), TFLITE_TARGET).decoded
        got = back[t.name].load()
        assert got.shape == want.shape
        assert np.array_equal(bits(got), bits(want)), f"{t.name} after {spec}"


@pytest.mark.parametrize("demo", DEMOS)
@pytest.mark.parametrize(("mode", "spec"), [("float16", "float16"), ("dynamic", "int8:skip=1024")])
def test_stored_bytes_equal_official_converter(open_fixture, tmp_path, demo, mode, spec):
    """float16 (RNE) and int8 (max|w|/127 per output channel, ≥ 1024 elements) are the
    converter's own rules: the stored codes and scales must be its bytes."""
    out = tmp_path / f"{mode}.tflite"
    export(open_fixture(fixture(demo, "float32")), Plan().with_default(spec), out)
    ours, official = by_layer(open_fixture(out)), by_layer(open_fixture(fixture(demo, mode)))
    assert ours.keys() == official.keys()
    stored = 0
    for key, theirs in official.items():
        mine = ours[key]
        assert (mine.info.stored is None) == (theirs.info.stored is None), key
        if theirs.info.stored is not None:
            stored += 1
            assert mine.info.stored.scheme == theirs.info.stored.scheme
            for p in ("scale", "zero_point", "axis"):
                assert mine.info.stored.params.get(p) == theirs.info.stored.params.get(p), key
        assert np.array_equal(bits(mine.load()), bits(theirs.load())), key
    assert stored >= 2
    # Sizes: the same payload; the file differs by the input's tensor names (the converter
    # renames weights in each mode), the plan record and 16-byte data alignment.
    names = _names_bytes(fixture(demo, "float32")) - _names_bytes(fixture(demo, mode))
    size, theirs_size = out.stat().st_size, fixture(demo, mode).stat().st_size
    assert abs(size - names - theirs_size) <= 0.01 * theirs_size


@pytest.mark.parametrize("demo", DEMOS)
def test_layout_aligned_no_unused_buffers_metadata_kept(open_fixture, tmp_path, demo):
    src = fixture(demo, "float32")
    out = tmp_path / "mixed.tflite"
    plan = Plan().with_default("float16").with_rule("*Conv2D*", "int8")
    export(open_fixture(src), plan, out)
    tree, size = _tree(out)
    before, _ = _tree(src)
    used = {0} | {m["buffer"] for m in tree["metadata"]}
    for sg in tree["subgraphs"]:
        used |= {t.get("buffer", 0) for t in sg["tensors"]}
    assert used == set(range(len(tree["buffers"])))
    for b in tree["buffers"]:
        blob = buffer_blob(b, size)
        assert blob is None or blob.offset % (16 if blob.length >= ALIGN16_FROM else 4) == 0
    names = [m["name"] for m in tree["metadata"]]
    assert names[: len(before["metadata"])] == [m["name"] for m in before["metadata"]]
    assert PLAN_METADATA in names and "reduced_precision_support" in names
    assert tree["signature_defs"][0]["signature_key"] == "serving_default"
    outputs = [m["tensor_index"] for m in tree["signature_defs"][0]["outputs"]]
    assert outputs == list(tree["subgraphs"][0]["outputs"])
    ops = [op_name(tree, o.get("opcode_index", 0)) for o in tree["subgraphs"][0]["operators"]]
    n_dq = ops.count("DEQUANTIZE")
    assert n_dq and ops[:n_dq] == ["DEQUANTIZE"] * n_dq


def test_hybrid_kernels_and_versions(open_fixture, tmp_path):
    out = tmp_path / "dyn.tflite"
    export(
        open_fixture(fixture("digits_depthwise", "float32")),
        Plan().with_default("int8:skip=1024"),
        out,
    )
    tree, _ = _tree(out)
    official, _ = _tree(fixture("digits_depthwise", "dynamic"))

    def versions(t):
        return {op_name(t, i): c.get("version", 1) for i, c in enumerate(t["operator_codes"])}

    assert versions(tree) == versions(official)
    ops = [op_name(tree, o.get("opcode_index", 0)) for o in tree["subgraphs"][0]["operators"]]
    assert "DEQUANTIZE" not in ops  # every quantized weight read by a hybrid kernel


def test_plan_record_is_compact_and_resolves_alike():
    pairs = [("a", "int8"), ("b", "int8"), ("c", "float16")]
    plan = Plan.loads(plan_json(pairs))
    assert plan.default.spec == "int8" if hasattr(plan.default, "spec") else plan.default == "int8"
    assert dict(plan.overrides) == {"c": "float16"}


def test_full_integer_model_requantized_bias_follows(open_fixture, tmp_path):
    src = open_fixture(fixture("digits_convnet", "int8"))
    same = tmp_path / "same.tflite"
    _, size = export(src, Plan(), same)
    back = open_fixture(same)
    for t in src:  # unchanged plan: identical codes, scales and biases
        assert np.array_equal(bits(back[t.name].load()), bits(t.load())), t.name
        assert back[t.name].info.stored == t.info.stored
    coarse = tmp_path / "affine4.tflite"
    preview, size = export(src, Plan().with_default("affine4"), coarse)
    assert size == preview.total["quantized_bytes"]
    back = open_fixture(coarse)
    for t in src:
        if t.info.stored is None:
            continue
        if (
            t.info.stored.params["kernel"] == "integer"
        ):  # an int32 bias: re-scaled, within half its new step
            new = back[t.name]
            step = np.asarray(new.info.stored.params["scale"], np.float32)
            assert np.all(np.abs(new.load() - t.load()) <= step / 2 + 1e-12)
        else:
            assert back[t.name].info.stored.scheme == t.info.stored.scheme


def test_dequantized_back_to_float32(open_fixture, tmp_path):
    src = open_fixture(fixture("digits_convnet", "float16"))
    out = tmp_path / "f32.tflite"
    _, _size = export(src, Plan(), out)
    back = open_fixture(out)
    assert all(t.info.stored is None for t in back)
    for t in src:
        assert np.array_equal(bits(back[t.name].load()), bits(t.load()))
    tree, _ = _tree(out)
    ops = [op_name(tree, o.get("opcode_index", 0)) for o in tree["subgraphs"][0]["operators"]]
    assert "DEQUANTIZE" not in ops


def test_buffers_past_the_flatbuffer(open_fixture, tmp_path, monkeypatch):
    """Models over 2 GB keep buffers after the flatbuffer (offset/size): forced here."""
    monkeypatch.setattr(edit, "EXTERNAL_ABOVE", 0)
    src = open_fixture(fixture("digits_convnet", "float32"))
    out = tmp_path / "external.tflite"
    preview, size = export(src, Plan().with_default("float16"), out)
    assert size == preview.total["quantized_bytes"]
    tree, _ = _tree(out)
    assert all("data" not in b for b in tree["buffers"])
    assert sum(1 for b in tree["buffers"] if b.get("offset", 0) > 1) >= 9
    back = open_fixture(out)
    for t in src:
        want = quantize_tensor(
            t, Plan().with_default("float16").scheme_for(t.info), TFLITE_TARGET
        ).decoded
        assert np.array_equal(bits(back[t.name].load()), bits(want))
