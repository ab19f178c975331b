"""Exports write the same bytes as when `data/export_hashes.json` was recorded (issue 12: the
house was reshaped without changing a single written byte). See `golden_exports.py`."""

from __future__ import annotations

import json

import pytest

from tests.export.golden_exports import HASHES, matrix, safe_digest

_EXPECTED: dict[str, str] = json.loads(HASHES.read_text())
_CASES = list(matrix())


def test_the_recorded_matrix_is_the_current_one():
    assert sorted(_EXPECTED) == sorted(key for key, *_ in _CASES)


@pytest.mark.parametrize(("key", "src", "fmt", "spec"), _CASES, ids=[c[0] for c in _CASES])
def test_export_bytes_unchanged(tmp_path, key, src, fmt, spec):
    if not src.exists():
        pytest.skip(f"{src} is absent")
    assert safe_digest(src, fmt, spec, tmp_path) == _EXPECTED[key]
