"""Exports never replace an output without --force, never touch the input, and a failure or a
cancel mid-way leaves nothing at the output path."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from inspector.cli import main
from inspector.core.errors import InspectorError
from inspector.core.plan import Plan
from inspector.formats import open_model
from inspector.formats.export import ExportCancelled, export_model
from inspector.report import encode_png

DEMO = Path(__file__).resolve().parents[2] / "resources" / "digits_convnet"
H5 = DEMO / "digits_convnet.h5"


def test_refuses_existing_output_without_force(tmp_path):
    out = tmp_path / "o.npz"
    out.write_bytes(b"keep me")
    with open_model(H5) as model, pytest.raises(InspectorError, match="--force"):
        export_model(model, Plan(), "npz", out)
    assert out.read_bytes() == b"keep me"
    with open_model(H5) as model:
        export_model(model, Plan(), "npz", out, force=True)
    assert out.read_bytes()[:2] == b"PK"


def test_never_overwrites_the_input(tmp_path):
    src = tmp_path / "m.h5"
    src.write_bytes(H5.read_bytes())
    with open_model(src) as model, pytest.raises(InspectorError, match="input"):
        export_model(model, Plan().with_default("uint8"), "keras", src, force=True)
    assert src.read_bytes() == H5.read_bytes()
    tfjs = tmp_path / "tfjs"
    tfjs.mkdir()
    for f in (DEMO / "tfjs").iterdir():
        (tfjs / f.name).write_bytes(f.read_bytes())
    with open_model(tfjs) as model:
        for out in (tfjs, tmp_path, tfjs / "inner"):
            with pytest.raises(InspectorError, match="input"):
                export_model(model, Plan(), "tfjs", out, force=True)
    assert sorted(p.name for p in tfjs.iterdir()) == sorted(
        p.name for p in (DEMO / "tfjs").iterdir()
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_failure_after_first_shard_leaves_no_partial_output(tmp_path, monkeypatch):
    from inspector.formats.tfjs import writer as tfjs_write

    real_next = tfjs_write._Shards._next

    def failing_next(self):
        if self.parts:
            raise OSError("disk full")
        real_next(self)

    monkeypatch.setattr(tfjs_write._Shards, "_next", failing_next)
    out = tmp_path / "out"
    with open_model(H5) as model, pytest.raises(InspectorError, match=f"{out}: disk full"):
        export_model(model, Plan(), "tfjs", out, shard_bytes=10_000)
    assert _leftovers(tmp_path) == []


def test_failure_keeps_previous_output_when_forcing(tmp_path, monkeypatch):
    from inspector.formats.npz import writer as npz_write

    out = tmp_path / "o.npz"
    out.write_bytes(b"previous")

    def boom(q):
        raise RuntimeError("writer failed")

    monkeypatch.setattr(npz_write, "stored_array", boom)
    with open_model(H5) as model, pytest.raises(RuntimeError):
        export_model(model, Plan(), "npz", out, force=True)
    assert out.read_bytes() == b"previous"
    assert _leftovers(tmp_path) == ["o.npz"]


def test_cancel_and_progress(tmp_path):
    seen = []
    with open_model(H5) as model:
        export_model(
            model,
            Plan(),
            "safetensors",
            tmp_path / "a.safetensors",
            progress=lambda *a: seen.append(a),
        )
        assert [s[0] for s in seen] == list(range(1, len(model) + 1))
        with pytest.raises(ExportCancelled):
            export_model(model, Plan(), "tfjs", tmp_path / "b", cancelled=lambda: len(seen) > 3)
    assert _leftovers(tmp_path) == ["a.safetensors"]


def test_tfjs_shards_are_cut_at_the_limit(tmp_path):
    with open_model(H5) as model:
        export_model(model, Plan(), "tfjs", tmp_path / "o", shard_bytes=10_000)
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    doc = json.loads((tmp_path / "o" / "model.json").read_text())
    paths = doc["weightsManifest"][0]["paths"]
    assert paths == [f"group1-shard{k}of6.bin" for k in range(1, 7)]
    assert names == sorted([*paths, "model.json"])
    assert all((tmp_path / "o" / p).stat().st_size == 10_000 for p in paths[:-1])


def test_cli_export_with_reports(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["export", str(H5), "-o", str(out), "--format", "tfjs", "--scheme", "uint8"]
    assert main([*args, "--rule", "conv1/*=int8", "--report", str(tmp_path / "r.html")]) == 0
    assert "baked" in capsys.readouterr().out
    assert main(args) != 0
    assert "--force" in capsys.readouterr().err
    for suffix in ("json", "csv"):
        rep = tmp_path / f"r.{suffix}"
        assert main([*args, "--force", "--report", str(rep)]) == 0
        assert rep.stat().st_size > 500
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["plan"]["default"] == "uint8" and len(doc["tensors"]) == 8
    assert "<svg" in (tmp_path / "r.html").read_text()  # charts inline, no images to fetch


def test_png_encoder_decodes():
    img = np.zeros((3, 2, 3), np.uint8)
    img[1, 1] = (10, 20, 30)
    png = encode_png(img)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    idat = png.index(b"IDAT")
    n = int.from_bytes(png[idat - 4 : idat], "big")
    raw = zlib.decompress(png[idat + 4 : idat + 4 + n])
    rows = np.frombuffer(raw, np.uint8).reshape(3, 7)
    assert (rows[:, 0] == 0).all() and tuple(rows[1, 4:7]) == (10, 20, 30)
