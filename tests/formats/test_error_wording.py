"""Error lines a user can act on (issue 16 item 11): a cut-short file says it is truncated."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.formats.registry import open_model

DEMO_JSON = Path(__file__).resolve().parents[2] / "resources/digits_convnet/tfjs/model.json"


def _safetensors(path: Path) -> int:
    data = np.arange(64, dtype=np.float32).tobytes()
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [8, 8], "data_offsets": [0, len(data)]}}
    ).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return 8 + len(header) + len(data)


def test_truncated_safetensors_says_truncated(tmp_path):
    full = _safetensors(tmp_path / "w.safetensors")
    raw = (tmp_path / "w.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[: full - 100])
    with pytest.raises(FormatError) as err:
        open_model(cut)
    assert f"truncated: {full - 100} bytes, header needs {full}" in str(err.value)
    assert "outside" not in str(err.value)


def test_truncated_json_not_named_model_json(tmp_path):
    path = tmp_path / "digits.json"
    path.write_bytes(DEMO_JSON.read_bytes()[:3000])
    with pytest.raises(FormatError) as err:
        open_model(path)
    assert "truncated JSON: 3000 bytes" in str(err.value)


def test_other_json_and_invalid_json_are_told_apart(tmp_path):
    other = tmp_path / "config.json"
    other.write_text('{"hidden_size": 8}')
    with pytest.raises(FormatError, match="JSON, but neither"):
        open_model(other)
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1,, "b": 2}')
    with pytest.raises(FormatError, match="JSON that is not valid"):
        open_model(bad)
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x00\x01garbage")
    with pytest.raises(FormatError, match="not a recognised model file"):
        open_model(binary)
