"""GGUF export: read back by gguf-py's GGUFReader with the input's metadata and tensor bytes,
the same data section as llama-quantize for the same per-tensor types, the preview's values
and sizes, and the llama-quantize command that reproduces the plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.core.plan import Plan
from inspector.core.preview import quantize_tensor, run_preview
from inspector.formats import open_model
from inspector.formats.export import export_model
from inspector.formats.gguf.header import parse_header
from inspector.formats.registry import get_target

gguf = pytest.importorskip("gguf")

DATA = Path(__file__).resolve().parent / "data"
TORCH = DATA.parents[1] / "torch" / "data"
APPENDED = ["general.quantization_version", "general.file_type", "quant_inspector.plan"]


def _fields(path: Path) -> dict[str, object]:
    out = {}
    for key, f in gguf.GGUFReader(path).fields.items():
        if not key.startswith("GGUF."):
            out[key] = (
                tuple(f.types),
                [p.tobytes() for p in f.parts[f.data[0] :]] if f.data else [],
            )
    return out


def _data(path: Path) -> bytes:
    raw = path.read_bytes()
    return raw[parse_header(raw, path).data_offset :]


def _export(src: Path, out: Path, plan: Plan, fmt: str = "gguf"):
    with open_model(src) as model:
        preview = run_preview(model, plan, get_target(fmt))
        result = export_model(model, plan, fmt, out)
    return preview, result


def test_float_plan_keeps_metadata_and_bytes(tmp_path: Path) -> None:
    src, out = DATA / "kv_types.gguf", tmp_path / "o.gguf"
    preview, result = _export(src, out, Plan())
    before, after = _fields(src), _fields(out)
    assert list(after) == [k for k in before if k not in APPENDED] + APPENDED
    for key, value in before.items():
        if key not in APPENDED:
            assert after[key] == value, key
    reader = gguf.GGUFReader(out)
    assert after["general.alignment"] == before["general.alignment"]
    assert int(reader.fields["general.quantization_version"].contents()) == 2
    original = {t.name: t for t in gguf.GGUFReader(src).tensors}
    for t in reader.tensors:
        o = original[t.name]
        assert list(t.shape) == list(o.shape), t.name
        if o.tensor_type.name in ("Q8_0", "Q4_0"):  # kept as float32: decoded values
            assert t.tensor_type.name == "F32"
            assert np.array_equal(t.data, gguf.quants.dequantize(o.data, o.tensor_type))
        else:
            assert t.tensor_type == o.tensor_type and t.data.tobytes() == o.data.tobytes()
    assert all(t.data_offset % 64 == 0 for t in reader.tensors)
    assert out.stat().st_size == preview.total["quantized_bytes"] == result.total_bytes


def test_same_data_as_llama_quantize_q8_0(tmp_path: Path) -> None:
    out = tmp_path / "q8.gguf"
    plan = Plan(default="q8_0").with_rule("*norm*", "float32")
    preview, result = _export(DATA / "tiny_f16.gguf", out, plan)
    theirs = DATA / "tiny_q8_0.gguf"
    assert _data(out) == _data(theirs)
    ours_h = parse_header(out.read_bytes(), out)
    theirs_h = parse_header(theirs.read_bytes(), theirs)
    assert ours_h.tensors == theirs_h.tensors
    ours = _fields(out)
    assert ours == _fields(theirs) | {"quant_inspector.plan": ours["quant_inspector.plan"]}
    assert out.stat().st_size == preview.total["quantized_bytes"] == result.total_bytes


def test_same_data_as_llama_quantize_q4_k_m_mixture(tmp_path: Path) -> None:
    """The Q4_K_M file's per-tensor types as a plan: the bytes llama-quantize wrote."""
    theirs = DATA / "tiny_q4_k_m.gguf"
    plan = Plan()
    with open_model(theirs) as m:
        for t in m:
            if t.info.stored is not None:
                plan = plan.with_overrides([t.name], t.info.stored.scheme)
    out = tmp_path / "q4km.gguf"
    _export(DATA / "tiny_f16.gguf", out, plan)
    assert _data(out) == _data(theirs)
    assert gguf.GGUFReader(out).fields["general.file_type"].contents() == 15
    text = (tmp_path / "q4km.llama-quantize.txt").read_text()
    assert "--pure" in text and text.rstrip().endswith("Q4_K")
    assert r"'^blk\.0\.ffn_down\.weight$=q6_k'" in text
    assert "attn_q" not in text  # q4_k is the base type


def test_npz_float32_of_a_gguf_writes_decoded_values_under_gguf_names(tmp_path: Path) -> None:
    src = DATA / "tiny_q4_k_m.gguf"
    _export(src, tmp_path / "o.npz", Plan(default="float32"), fmt="npz")
    with np.load(tmp_path / "o.npz") as z:
        got = {k: z[k] for k in z.files if not k.startswith("__quant_inspector")}
    reader = gguf.GGUFReader(src)
    assert sorted(got) == sorted(t.name for t in reader.tensors)
    for t in reader.tensors:
        want = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        assert np.array_equal(got[t.name], want.reshape(got[t.name].shape)), t.name


@pytest.mark.parametrize(
    "spec", ["int8", "uint8", "int4:group=32", "kmeans3", "affine12", "bfloat16"]
)
def test_baked_schemes_file_equals_preview(tmp_path: Path, spec: str) -> None:
    src, out = DATA / "tiny_f16.gguf", tmp_path / "b.gguf"
    plan = Plan(default=spec)
    target = get_target("gguf")
    preview, result = _export(src, out, plan)
    with open_model(src) as model:
        expected = {t.name: quantize_tensor(t, plan.scheme_for(t.info), target) for t in model}
    kinds = {"bfloat16": "BF16", "affine12": "F32"}
    with open_model(out) as back:
        for name, q in expected.items():
            got = np.asarray(back[name].load(), dtype=np.float32)
            assert np.array_equal(got, np.asarray(q.decoded, dtype=np.float32)), name
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(out).tensors}
    assert set(types.values()) == {kinds.get(spec, "F16")}
    notes = [n for _, n in result.notes if "baked" in n]
    assert (spec == "bfloat16") == (not notes)
    assert out.stat().st_size == preview.total["quantized_bytes"] == result.total_bytes


def test_torch_checkpoint_to_gguf(tmp_path: Path) -> None:
    out = tmp_path / "t.gguf"
    preview, result = _export(TORCH / "state_dict.bin", out, Plan(default="float16"))
    reader = gguf.GGUFReader(out)
    with open_model(TORCH / "state_dict.bin") as m:
        for t in reader.tensors:
            info = m[t.name].info
            assert tuple(int(d) for d in reversed(t.shape)) == info.shape or info.shape == ()
            want = "F16" if info.is_float else {"int64": "I64"}[info.dtype]
            assert t.tensor_type.name == want, t.name
    assert reader.fields["general.name"].contents() == "state_dict"
    assert any("convert_hf_to_gguf" in n for _, n in result.notes)
    assert out.stat().st_size == preview.total["quantized_bytes"] == result.total_bytes
    with pytest.raises(FormatError, match="no tensor type for dtype complex64") as info:
        _export(TORCH / "exotic.pt", tmp_path / "x.gguf", Plan())
    assert info.value.tensor == "c"


def test_unsigned_and_bool_tensors_widen(tmp_path: Path) -> None:
    src = tmp_path / "ints.npz"
    values = {
        "u8": np.arange(250, 256, dtype=np.uint8),
        "u16": np.array([0, 65535], dtype=np.uint16),
        "u32": np.array([2**32 - 1], dtype=np.uint32),
        "flags": np.array([True, False]),
    }
    np.savez(src, **values)
    preview, _ = _export(src, tmp_path / "i.gguf", Plan())
    reader = gguf.GGUFReader(tmp_path / "i.gguf")
    kinds = {t.name: (t.tensor_type.name, t.data.tolist()) for t in reader.tensors}
    assert kinds == {k: (w, v.astype(np.int64).tolist()) for (k, v), w in zip(
        values.items(), ["I16", "I32", "I64", "I8"], strict=True
    )}  # fmt: skip
    assert (tmp_path / "i.gguf").stat().st_size == preview.total["quantized_bytes"]


def test_split_input_exports_one_file_without_split_keys(tmp_path: Path) -> None:
    out = tmp_path / "whole.gguf"
    _export(DATA / "tiny_q4_k_m-00002-of-00003.gguf", out, Plan(default="float16"))
    keys = list(_fields(out))
    assert not [k for k in keys if k.startswith("split.")]
    assert len(gguf.GGUFReader(out).tensors) == 12


def test_llama_schemes_fall_back_where_rows_do_not_fit(tmp_path: Path) -> None:
    """Rows of 16 and 24 values fit no 32-value block: llama-quantize stores them as F16."""
    out = tmp_path / "fb.gguf"
    preview, result = _export(TORCH / "state_dict.bin", out, Plan(default="q4_k"))
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(out).tensors}
    assert types["embed.weight"] == types["qkv.weight"] == "F16"  # rows of 16
    assert types["proj.weight"] == "F16"  # rows of 24
    assert types["position_ids"] == "I64"
    assert any("f16" in n for _, n in result.notes)
    with open_model(out) as back, open_model(TORCH / "state_dict.bin") as src:
        target = get_target("gguf")
        for t in src:
            want = quantize_tensor(t, Plan(default="q4_k").scheme_for(t.info), target).decoded
            got = np.asarray(back[t.name].load(), np.float32)  # a 0-d tensor comes back as (1,)
            assert np.array_equal(got.reshape(-1), np.asarray(want, np.float32).reshape(-1))
    assert out.stat().st_size == preview.total["quantized_bytes"] == result.total_bytes


def test_mixture_preset_plan_gives_llama_quantize_file(tmp_path: Path) -> None:
    """`Q4_K_M` as a plan (llama.cpp's rules, not the types read back from its file): the
    export's data section is the one llama-quantize wrote for Q4_K_M."""
    from inspector.core.errors import PlanError
    from inspector.formats.gguf.presets import main, mixture_plan

    src = DATA / "tiny_f16.gguf"
    with open_model(src) as m:
        plan = mixture_plan(m, "q4_k_m")
        assert plan.default == "q4_k"
        assert dict(plan.overrides)["blk.0.ffn_down.weight"] == "q6_k"
        assert dict(plan.overrides)["output_norm.weight"] == "float32"
        with pytest.raises(PlanError, match="iq2_xxs"):
            mixture_plan(m, "IQ2_XXS")
        with pytest.raises(PlanError, match="unknown llama-quantize type"):
            mixture_plan(m, "Q4_K_X")
    out = tmp_path / "q4km.gguf"
    _export(src, out, plan)
    assert _data(out) == _data(DATA / "tiny_q4_k_m.gguf")
    assert main([str(src), "Q4_K_M", "-o", str(tmp_path / "p.json")]) == 0
    assert Plan.loads((tmp_path / "p.json").read_text()) == plan
