"""CLI `info` and `preview` on the demo models and on a real file of every reader."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.cli import main

ROOT = Path(__file__).resolve().parents[2]
RES = ROOT / "resources"
SHARED = ROOT.parent / "shared" / "models"
METRICS = {
    "original_bytes",
    "quantized_bytes",
    "bits_per_weight",
    "mse",
    "rmse",
    "max_abs_error",
    "rmse_over_scale",
    "sqnr_db",
    "cosine",
    "overflow",
    "gzip_bytes",
}
DEMOS = sorted(RES.glob("*/*.h5")) + sorted(RES.glob("*/tfjs/model.json"))
THIRD_PARTY = [
    SHARED / "keras-h5-fer-emotion" / "emotion_model.hdf5",
    SHARED / "tfjs-layers-nsfwjs-mobilenet_v2-u8" / "model.json",
    SHARED / "tfjs-graph-human-blazeface-f32" / "model.json",
    SHARED / "safetensors-silero-vad-16k" / "silero_vad_16k.safetensors",
]


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("path", DEMOS + THIRD_PARTY, ids=lambda p: p.parent.name + "/" + p.name)
def test_preview_json_has_design_metrics(capsys, path):
    if not path.exists():
        pytest.skip(f"{path} not present")
    doc = run_json(capsys, "preview", str(path), "--scheme", "uint8", "--json")
    assert set(doc) >= {"model", "total", "tensors"}
    assert doc["tensors"] and all(set(t) >= METRICS for t in doc["tensors"])
    tot = doc["total"]
    assert tot["compression_ratio"] > 0 and tot["gzip_ratio"] > 0.5
    weights = [t for t in doc["tensors"] if not t["optimizer"]]
    assert (
        tot["quantized_bytes"] == sum(t["quantized_bytes"] for t in weights) + tot["overhead_bytes"]
    )


@pytest.mark.parametrize("path", DEMOS, ids=lambda p: p.parent.name + "/" + p.name)
def test_uint8_shrinks_when_the_format_stores_codes(capsys, path):
    doc = run_json(
        capsys, "preview", str(path), "--format", "safetensors", "--scheme", "uint8", "--json"
    )
    tot = doc["total"]
    codes_and_params = tot["quantized_bytes"] - tot["overhead_bytes"]
    assert tot["original_bytes"] / codes_and_params > 3.0


def test_info_matches_h5py_directly(capsys):
    path = SHARED / "keras-h5-fer-emotion" / "emotion_model.hdf5"
    if not path.exists():
        pytest.skip("shared models absent")
    doc = run_json(capsys, "info", str(path), "--json")
    expected = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            expected[name] = (list(obj.shape), str(obj.dtype))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    got = {t["name"]: (t["shape"], t["dtype"]) for t in doc["tensors"]}
    assert len(got) == len(expected)
    assert sorted(got.values()) == sorted(expected.values())
    assert sum(t["optimizer"] for t in doc["tensors"]) > 0


def test_info_matches_tfjs_manifest(capsys):
    path = SHARED / "tfjs-graph-human-blazeface-f32" / "model.json"
    if not path.exists():
        pytest.skip("shared models absent")
    doc = run_json(capsys, "info", str(path), "--json")
    manifest = json.loads(path.read_text())["weightsManifest"]
    want = [(w["name"], w["shape"], w["dtype"]) for g in manifest for w in g["weights"]]
    assert [(t["name"], t["shape"], t["dtype"]) for t in doc["tensors"]] == want


def test_rules_and_plan_file(capsys, tmp_path):
    path = RES / "digits_convnet" / "digits_convnet.h5"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"default": "float16", "rules": [], "overrides": {}}))
    doc = run_json(
        capsys, "preview", str(path), "--plan", str(plan), "--rule", "*kernel*=uint8", "--json"
    )
    schemes = {t["name"]: t["scheme"] for t in doc["tensors"]}
    assert all(s == ("uint8" if "kernel" in n else "float16") for n, s in schemes.items())


def test_unmatched_rule_warns(capsys):
    path = RES / "digits_convnet" / "digits_convnet.h5"
    assert main(["preview", str(path), "--rule", "lstm*=uint8"]) == 0
    assert "matches no tensor" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["info", "/nonexistent/model.h5"], "/nonexistent/model.h5"),
        (["preview", "{demo}", "--scheme", "uint9"], "uint9"),
        (["preview", "{demo}", "--rule", "nonsense"], "GLOB=SCHEME"),
        (["preview", "{demo}", "--plan", "/nonexistent/plan.json"], "plan"),
    ],
)
def test_errors_are_one_line_with_status(capsys, argv, needle):
    demo = str(RES / "digits_convnet" / "digits_convnet.h5")
    assert main([a.replace("{demo}", demo) for a in argv]) != 0
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_human_table_and_python_dash_m():
    path = RES / "digits_convnet" / "digits_convnet.h5"
    out = subprocess.run(
        [sys.executable, "-m", "inspector", "preview", str(path), "--scheme", "uint8"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "SQNR dB" in out and "gzip ratio" in out


def test_nan_tensor_reported_by_name(capsys, tmp_path):
    path = tmp_path / "weights.npz"
    bad = np.ones((4, 4), np.float32)
    bad[1, 1] = np.nan
    np.savez(path, good=np.linspace(-1, 1, 64, dtype=np.float32), bad=bad)
    doc = run_json(capsys, "preview", str(path), "--scheme", "uint8", "--json")
    assert doc["total"]["nonfinite_tensors"] == ["bad"]
    assert main(["preview", str(path), "--scheme", "uint8"]) == 0
    assert "tensor 'bad' holds NaN/Inf" in capsys.readouterr().out
