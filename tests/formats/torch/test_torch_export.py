"""PyTorch checkpoints through the registry and the CLI: sniffed by content, exported to
safetensors (their default), npz and GGUF with the values torch saved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inspector.cli.main import main as cli_main
from inspector.core.errors import FormatError
from inspector.formats import open_model, sniff_format
from inspector.formats.safetensors.writer import load_dequantized

DATA = Path(__file__).resolve().parent / "data"


def test_sniffed_by_content(tmp_path: Path) -> None:
    for name in ("state_dict.bin", "checkpoint.pt", "deflated.pth", "legacy.pt"):
        copy = tmp_path / "renamed.dat"
        shutil.copyfile(DATA / name, copy)
        assert sniff_format(copy) == "torch", name
    with pytest.raises(FormatError, match="legacy PyTorch file"):
        open_model(DATA / "legacy.pt")


def test_cli_info_lists_tensors_once(capsys) -> None:
    assert cli_main(["info", str(DATA / "state_dict.bin"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = [t["name"] for t in doc["tensors"]]
    assert doc["model"]["format"] == "torch"
    assert "embed.weight" in names and "lm_head.weight" not in names
    qkv = next(t for t in doc["tensors"] if t["name"] == "qkv.weight")
    assert qkv["shape"] == [48, 16] and qkv["channel_axis"] == 0


def test_export_default_is_safetensors_with_torchs_values(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sd.safetensors"
    assert cli_main(["export", str(DATA / "state_dict.bin"), "-o", str(out)]) == 0
    got = load_dequantized(out)
    with np.load(DATA / "expected.npz") as z:
        for name, values in got.items():
            want = z[f"state_dict.bin/{name}"]
            assert np.array_equal(values.astype(want.dtype), want), name


def test_export_npz_skips_optimizer_state(tmp_path: Path) -> None:
    out = tmp_path / "ck.npz"
    code = cli_main(["export", str(DATA / "checkpoint.pt"), "-o", str(out), "--format", "npz"])
    assert code == 0
    with np.load(out) as z:
        names = {k for k in z.files if not k.startswith("__quant_inspector")}
    assert names == {"embed.weight", "norm.weight", "norm.bias"}


def test_export_gguf_int8_baked(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sd.gguf"
    args = ["export", str(DATA / "state_dict.bin"), "-o", str(out), "--format", "gguf"]
    assert cli_main([*args, "--scheme", "int8", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any("baked to F16" in n["note"] for n in doc["notes"])
    with open_model(out) as m:
        assert m.format == "gguf"
        assert m["qkv.weight"].info.shape == (48, 16) and m["qkv.weight"].info.dtype == "float16"
