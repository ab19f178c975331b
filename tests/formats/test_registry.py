"""The registry sniffs content, not suffixes, and turns anything unreadable into FormatError."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inspector.core.errors import FormatError
from inspector.formats import input_kinds, open_model, sniff_format


def test_format_names() -> None:
    assert {"tfjs", "tfjs-weights", "keras-h5", "keras", "safetensors", "npz"} <= set(input_kinds())


def test_real_files_sniffed_without_their_suffix(shared_models: Path, tmp_path: Path) -> None:
    cases = {
        "keras-h5-fer-emotion/emotion_model.hdf5": "keras-h5",
        "safetensors-silero-vad-16k/silero_vad_16k.safetensors": "safetensors",
    }
    for rel, fmt in cases.items():
        copy = tmp_path / "renamed.dat"
        shutil.copyfile(shared_models / rel, copy)
        assert sniff_format(copy) == fmt
        with open_model(copy) as m:
            assert m.format == fmt and len(m) > 0


def test_unreadable_inputs_raise_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        open_model(tmp_path / "nope.h5")
    with pytest.raises(FormatError, match=r"no model\.json"):
        open_model(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    assert sniff_format(tmp_path / "notes.txt") is None
    with pytest.raises(FormatError, match="not a recognised model file"):
        open_model(tmp_path / "notes.txt")
    (tmp_path / "other.json").write_text('{"a": 1}')
    assert sniff_format(tmp_path / "other.json") is None
    (tmp_path / "broken.safetensors").write_bytes(b"\x01")
    with pytest.raises(FormatError, match="too short"):
        open_model(tmp_path / "broken.safetensors")
    (tmp_path / "fake.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(FormatError, match="not a readable HDF5"):
        open_model(tmp_path / "fake.h5")
