"""Fixtures for export tests: the demo models and the real third-party files beside the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "digits_convnet"
SHARED = (REPO / ".." / "shared" / "models").resolve()


@pytest.fixture(scope="session")
def fer_h5() -> Path:
    path = SHARED / "keras-h5-fer-emotion" / "emotion_model.hdf5"
    if not path.is_file():
        pytest.skip("../shared/models is absent")
    return path
