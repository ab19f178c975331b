"""Every format × every scheme: the file decodes to exactly the preview's values, and its size
is the preview's `quantized_bytes` (which includes the container overhead the preview counts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.plan import Plan
from inspector.core.preview import quantize_tensor, run_preview
from inspector.formats import open_model
from inspector.formats.export import export_model
from inspector.formats.registry import get_target
from inspector.formats.safetensors.writer import load_dequantized

DEMO = Path(__file__).resolve().parents[2] / "resources" / "digits_convnet"

SCHEMES = [
    "float32",
    "float16",
    "bfloat16",
    "uint8",
    "uint16",
    "affine4",
    "affine12",
    "int8",
    "int4:group=8",
    "kmeans3",
    "uint8:sparsity=0.5",
    "float16:sparsity=0.3",
    "uint8:clip=percentile:99",
]


def _expected(model, plan, target) -> dict[str, np.ndarray]:
    return {
        t.name: np.asarray(quantize_tensor(t, plan.scheme_for(t.info), target).decoded)
        for t in model
        if not t.info.optimizer
    }


def _written(fmt: str, out: Path) -> dict[str, np.ndarray]:
    if fmt == "safetensors":
        return load_dequantized(out)
    if fmt == "npz":
        with np.load(out, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if not k.startswith("__quant_inspector")}
    with open_model(out) as m:
        return {t.name: np.array(t.load()) for t in m}


def _size(out: Path) -> int:
    return sum(f.stat().st_size for f in out.iterdir()) if out.is_dir() else out.stat().st_size


@pytest.mark.parametrize("fmt", ["tfjs", "safetensors", "npz"])
@pytest.mark.parametrize("spec", SCHEMES)
def test_round_trip_bit_identical_and_sizes_exact(tmp_path, fmt, spec):
    plan = Plan().with_default(spec)
    target = get_target(fmt)
    with open_model(DEMO / "digits_convnet.h5") as model:
        preview = run_preview(model, plan, target)
        out = tmp_path / ("out" if fmt == "tfjs" else f"out.{fmt}")
        result = export_model(model, plan, fmt, out)
        expected = _expected(model, plan, target)
        names = _tfjs_names(model) if fmt == "tfjs" else {n: n for n in expected}
    got = _written(fmt, out)
    assert sorted(got) == sorted(names.values())
    for name, values in expected.items():
        stored = got[names[name]]
        assert stored.shape == values.shape, name
        assert np.array_equal(
            stored.astype(np.float32).view(np.uint32), values.astype(np.float32).view(np.uint32)
        ), f"{name} differs after {fmt} {spec}"
    assert _size(out) == preview.total["quantized_bytes"] == result.total_bytes


def _tfjs_names(model) -> dict[str, str]:
    from inspector.formats.tfjs.writer import manifest_names

    return manifest_names(model)


def test_tfjs_baking_notes_and_error_after_baking(tmp_path):
    plan = Plan().with_default("int8")
    target = get_target("tfjs")
    with open_model(DEMO / "digits_convnet.h5") as model:
        preview = run_preview(model, plan, target)
        native = run_preview(model, plan, get_target("native"))
        result = export_model(model, plan, "tfjs", tmp_path / "o")
    assert all("baked" in t.note for t in preview.tensors)
    assert {t for t, _ in result.notes} == {t.name for t in preview.tensors}
    assert 0 < preview.total["mse"] - native.total["mse"] < 0.01 * native.total["mse"]


def test_keras3_and_tfjs_inputs_export_everywhere(tmp_path):
    plan = Plan().with_default("uint8")
    for src in (DEMO / "digits_convnet.keras", DEMO / "tfjs"):
        with open_model(src) as model:
            for fmt in ("tfjs", "safetensors", "npz"):
                out = tmp_path / f"{src.name}-{fmt}"
                preview = run_preview(model, plan, get_target(fmt))
                export_model(model, plan, fmt, out)
                assert _size(out) == preview.total["quantized_bytes"]


@pytest.mark.parametrize("src", ["digits_convnet.h5", "digits_convnet.keras"])
@pytest.mark.parametrize("spec", ["float32", "float16", "uint8", "int4", "kmeans3"])
def test_keras_round_trip_keeps_layout(tmp_path, src, spec):
    import h5py

    plan = Plan().with_default(spec)
    target = get_target("keras")
    with open_model(DEMO / src) as model:
        out = tmp_path / f"out{Path(src).suffix}"
        export_model(model, plan, "keras", out)
        expected = _expected(model, plan, target)
        layout = model.metadata.get("h5_layout")
        infos = [t.info for t in model if not t.info.optimizer]
    with open_model(out) as written:
        assert [t.name for t in written] == list(expected)
        for name, values in expected.items():
            assert np.array_equal(np.asarray(written[name].load(), np.float32), values), name
        if layout is not None:
            assert written.metadata["h5_layout"] == layout
    if src.endswith(".h5"):
        with h5py.File(out) as f, h5py.File(DEMO / src) as s:
            recorded = Plan.loads(f.attrs["quant_inspector_plan"])  # resolved: per tensor
            assert all(recorded.scheme_for(i) == plan.scheme_for(i) for i in infos)
            assert f.attrs["model_config"] == s.attrs["model_config"]
            assert list(f["model_weights"].attrs["layer_names"]) == list(
                s["model_weights"].attrs["layer_names"]
            )
