"""Qt runs offscreen in tests; windows get a throwaway settings file."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from pathlib import Path

import numpy as np
import pytest

from inspector.core.model import Model, Tensor, TensorInfo

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEMOS = {
    "digits_convnet": RESOURCES / "digits_convnet" / "digits_convnet.h5",
    "diabetes_mlp": RESOURCES / "diabetes_mlp" / "diabetes_mlp.h5",
    "digits_depthwise": RESOURCES / "digits_depthwise" / "digits_depthwise.h5",
    "digits_convnet_tfjs": RESOURCES / "digits_convnet" / "tfjs" / "model.json",
}


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels_loaded():
    """The app starts loading its compiled kernels at launch; the UI timing tests measure a
    running preview, not numba's one-time import and compilation, so wait for it here."""
    from inspector.core import jit

    jit.wait(300)


def _demo_path(name: str) -> Path:
    path = DEMOS[name]
    if not path.exists():
        pytest.skip(f"demo model {path} not there yet")
    return path


@pytest.fixture
def demo_path():
    """`demo_path(name)`: a bundled demo model's path (the test is skipped when missing)."""
    return _demo_path


def _synthetic_model(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> Model:
    """A Model built from numpy arrays (values made once, loaders return them)."""
    rng = np.random.default_rng(seed)
    tensors = []
    for name, shape in shapes.items():
        values = rng.standard_normal(shape).astype(np.float32) * 0.1
        info = TensorInfo(
            name, shape, "float32", layer=name.split("/")[0], channel_axis=len(shape) - 1
        )
        tensors.append(Tensor(info, lambda v=values: v))
    return Model("synthetic.npz", "npz", tensors)


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    from inspector.ui.main_window import MainWindow
    from inspector.ui.plot_style import configure_pyqtgraph

    configure_pyqtgraph()
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    yield win
    win.shutdown()


@pytest.fixture
def synthetic_model():
    """`synthetic_model({name: shape})`: a Model of seeded normal float32 arrays."""
    return _synthetic_model


@pytest.fixture
def open_and_wait(qtbot):
    """`open_and_wait(window, path)`: open and wait until the whole-model preview is done."""

    def run(win, path, timeout: int = 20_000) -> None:
        with qtbot.waitSignal(win.state.model_changed, timeout=timeout):
            win.open_path(path)
        qtbot.waitUntil(lambda: win.state.preview is not None, timeout=timeout)

    return run
