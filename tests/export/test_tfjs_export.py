"""TF.js specifics: the converter's traps avoided, weights-only inputs, the gzip ratio."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from inspector.core.plan import Plan
from inspector.core.preview import drain, exact_gzip, iter_preview, run_preview
from inspector.formats import open_model
from inspector.formats.export import export_model
from inspector.formats.registry import get_target

DEMO = Path(__file__).resolve().parents[2] / "resources" / "digits_convnet"
SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared" / "models").resolve()


def _layers(doc: dict) -> list[dict]:
    return doc["modelTopology"]["model_config"]["config"]["layers"]


def test_fer_legacy_h5_gets_clean_names_and_valid_separable_config(tmp_path, fer_h5):
    with open_model(fer_h5) as model:
        export_model(model, Plan().with_default("uint8"), "tfjs", tmp_path / "fer")
    doc = json.loads((tmp_path / "fer" / "model.json").read_text())
    names = [w["name"] for w in doc["weightsManifest"][0]["weights"]]
    assert "batch_normalization_1/gamma" in names
    assert not any("_1_1/" in n or n.endswith(":0") for n in names)
    layer_names = {layer["config"]["name"] for layer in _layers(doc)}
    assert {n.rsplit("/", 1)[0] for n in names} <= layer_names
    for layer in _layers(doc):
        if layer["class_name"] == "SeparableConv2D":
            assert not {"kernel_initializer", "kernel_regularizer", "kernel_constraint"} & set(
                layer["config"]
            )
    assert len(names) == 80
    assert all("optimizer" not in n for n in names)


def test_keras3_input_layer_translated(tmp_path):
    with open_model(DEMO / "digits_convnet.keras") as model:
        export_model(model, Plan(), "tfjs", tmp_path / "k3")
    doc = json.loads((tmp_path / "k3" / "model.json").read_text())
    first = _layers(doc)[0]
    assert first["class_name"] == "InputLayer"
    assert first["config"]["batch_input_shape"] == [None, 8, 8, 1]
    assert "batch_shape" not in first["config"]
    assert all(isinstance(layer["config"].get("dtype", "float32"), str) for layer in _layers(doc))
    assert "module" not in json.dumps(doc["modelTopology"])


def test_weights_only_input_writes_bare_manifest(tmp_path):
    src = SHARED / "safetensors-silero-vad-16k" / "silero_vad_16k.safetensors"
    if not src.is_file():
        pytest.skip("../shared/models is absent")
    plan = Plan().with_default("uint8")
    with open_model(src) as model:
        preview = run_preview(model, plan, get_target("tfjs"))
        export_model(model, plan, "tfjs", tmp_path / "w")
        names = [t.name for t in model]
    out = tmp_path / "w"
    manifest = json.loads((out / "weights_manifest.json").read_text())
    assert isinstance(manifest, list) and not (out / "model.json").exists()
    assert sum(f.stat().st_size for f in out.iterdir()) == preview.total["quantized_bytes"]
    with open_model(out / "weights_manifest.json") as back:
        assert [t.name for t in back] == names


def _tarball_ratio(folder: Path) -> float:
    """model.json + shards over the `tar czf` of them: tar's own (GNU) layout, gzip level 6 as
    zlib deflates it (GNU gzip's deflate differs from zlib's by up to ~1 % on small files)."""
    files = sorted(folder.iterdir())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6, format=tarfile.GNU_FORMAT) as tf:
        for f in files:
            tf.add(f, arcname=f.name)
    return sum(f.stat().st_size for f in files) / len(buf.getvalue())


@pytest.mark.parametrize("spec", ["float32", "float16", "uint8", "uint16", "int8", "kmeans4"])
def test_gzip_ratio_within_one_percent_of_real_tarball(tmp_path, spec):
    """DESIGN §4: the preview's gzip ratio is the tarball's, measured on the archive stream."""
    plan = Plan().with_default(spec)
    with open_model(DEMO / "digits_convnet.h5") as model:
        total = run_preview(model, plan, get_target("tfjs")).total
        export_model(model, plan, "tfjs", tmp_path / "o")
    assert total["gzip_exact"] and total["gzip_uncertainty"] == 0.0
    assert abs(total["gzip_ratio"] / _tarball_ratio(tmp_path / "o") - 1) < 0.01


def test_gzip_estimate_band_covers_exact_size(tmp_path):
    """Above the exact-gzip limit the preview sums sampled estimates; `exact_gzip` (what the
    GUI runs in the background) measures the archive and lands inside a few sigma of it."""
    plan = Plan().with_default("uint8")
    target = get_target("tfjs")
    with open_model(DEMO / "digits_convnet.h5") as model:
        est = drain(iter_preview(model, plan, target, exact_gzip_below=0))
        exact = drain(exact_gzip(model, plan, target, est.tensors))
        export_model(model, plan, "tfjs", tmp_path / "o")
    assert not est.total["gzip_exact"]
    real_gz = est.total["quantized_bytes"] / _tarball_ratio(tmp_path / "o")
    assert abs(exact / real_gz - 1) < 0.01
    assert abs(est.total["gzip_bytes"] / exact - 1) < 0.06
