"""The `open_fixture` fixture: opens TF-Lite files and closes them after the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.core.model import Model
from inspector.formats.tflite.reader import read_tflite


@pytest.fixture
def open_fixture():
    opened: list[Model] = []

    def _open(path: Path) -> Model:
        m = read_tflite(path)
        opened.append(m)
        return m

    yield _open
    for m in opened:
        m.close()
