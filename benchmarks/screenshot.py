"""Render the main window (default 1400×900, `--size`) with a model open and a tensor selected.

    python benchmarks/screenshot.py [MODEL] [-o docs/screenshot.png]
        [--tab histogram|curve|error|output|rounding] [--tensor NAME] [--analyse]
        [--scheme SPEC]

`--analyse` evaluates the plan, runs the uint8 sensitivity and builds the size/error front
before the picture (the Output & sensitivity tab). Regenerate the README pictures with:

    python benchmarks/screenshot.py
    python benchmarks/screenshot.py resources/digits_depthwise/digits_depthwise.h5 \
        --tab error --tensor block2_dw/depthwise_kernel:0 -o docs/screenshot-depthwise.png
    python benchmarks/screenshot.py resources/digits_depthwise/digits_depthwise.h5 \
        --tab output --analyse --format safetensors -o docs/screenshot-sensitivity.png
    python benchmarks/screenshot.py resources/digits_depthwise/digits_depthwise.h5 --equalize \
        --tab error --tensor block2_dw/depthwise_kernel:0 -o docs/screenshot-repair.png
    python benchmarks/screenshot.py --tab rounding --scheme affine3:round=gptq \
        --tensor dense1/kernel --format safetensors -o docs/screenshot-rounding.png

A GGUF with llama-quantize's Q4_K_M mixture as the plan, at two window sizes, and the Model ▸
Metadata dialog:

    python benchmarks/screenshot.py tests/formats/gguf/data/tiny_f16.gguf --format gguf \
        --mixture Q4_K_M --size 1280x800 --tensor blk.0.ffn_down.weight \
        -o docs/screenshot-gguf-1280.png
    python benchmarks/screenshot.py tests/formats/gguf/data/tiny_q4_k_m.gguf --format gguf \
        --size 1920x1080 --tensor blk.0.ffn_down.weight --tab curve \
        --metadata docs/screenshot-gguf-metadata.png -o docs/screenshot-gguf-1920.png

`--tab rounding` runs the Rounding A/B comparison of the selected tensor before the picture.

Runs offscreen (no display needed); waits for the whole-model preview and the selected
tensor's plots, then saves `QWidget.grab()` as PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
TABS = {"histogram": 0, "curve": 1, "error": 2, "output": 3, "rounding": 4}


def _wait(app: object, predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not finish loading")
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="model file (default: the bundled demo)")
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--tab", choices=sorted(TABS), default="histogram")
    parser.add_argument(
        "--format", default="tfjs", help="export format the sizes are shown in (default: tfjs)"
    )
    parser.add_argument("--tensor", help="tensor to select (default: the first conv kernel)")
    parser.add_argument("--analyse", action="store_true", help="evaluate, sensitivity, front")
    parser.add_argument("--scheme", help="the plan's default scheme (e.g. int4:round=gptq)")
    parser.add_argument("--equalize", action="store_true", help="tick Equalize first")
    parser.add_argument("--fold-bn", action="store_true", help="tick Fold batch norms first")
    parser.add_argument("--mixture", help="apply a llama-quantize file type (Q4_K_M) as plan")
    parser.add_argument("--metadata", help="also save the Model ▸ Metadata dialog to this PNG")
    parser.add_argument("--size", default="1400x900", help="window size WxH (default 1400x900)")
    parser.add_argument("--sine", action="store_true", help="the curve tab's sine demo")
    parser.add_argument(
        "--sensitivity-only", action="store_true", help="with --analyse: skip the front"
    )
    parser.add_argument(
        "--samples", type=int, help="evaluate on the first N samples (speed on big models)"
    )
    args = parser.parse_args(argv)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from inspector.ui.app import default_model_path
    from inspector.ui.main_window import MainWindow
    from inspector.ui.plot_style import configure_pyqtgraph

    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure_pyqtgraph()
    settings_file = Path(tempfile.mkdtemp()) / "settings.ini"
    window = MainWindow(QSettings(str(settings_file), QSettings.Format.IniFormat))
    width, height = (int(v) for v in args.size.lower().split("x"))
    window.resize(width, height)
    window.show()
    path = args.model or default_model_path()
    if path is None:
        print("no model found", file=sys.stderr)
        return 1
    window.open_path(path)
    _wait(app, lambda: window.state.model is not None and window.state.preview is not None)
    state = window.state
    if args.format:
        state.set_target(args.format)
        window.summary._fill_targets()
        _wait(app, lambda: not window.preview.runner.busy and state.preview is not None)
    if args.equalize or args.fold_bn:
        window.transforms.set_toggles(args.fold_bn, args.equalize)
        _wait(app, lambda: state.original_model is not None and not window.transforms.task.busy)
        _wait(app, lambda: not window.preview.runner.busy and state.preview is not None)
        _wait(app, lambda: "before:" in window.transform_bar.label.text())
    if args.scheme:
        state.set_plan(state.plan.with_default(args.scheme))
        _wait(app, lambda: state.preview_plan == state.plan and state.preview is not None)
    if args.mixture:
        from inspector.ui.llama_menu import apply_mixture

        window.status_label.setText(apply_mixture(window, args.mixture))
        _wait(app, lambda: state.preview_plan == state.plan and not window.preview.runner.busy)
    if args.samples:
        import inspector.ui.evaluation as evaluation

        evaluation.PROBE_SAMPLES = args.samples
    if args.analyse:
        _analyse(app, window, not args.sensitivity_only)
    name = args.tensor or _pick_tensor(state.model)
    state.set_selection([name], name)
    window.tabs.setCurrentIndex(TABS[args.tab])
    _wait(app, lambda: window.detail.detail is not None and window.detail.detail.name == name)
    if args.sine:
        window.curves.sine_box.setChecked(True)
    if args.tab == "rounding":
        window.rounding.compare()
        _wait(app, lambda: "rounded the other way" in window.rounding.summary.text(), 300)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(args.output)
    if args.metadata:
        from inspector.ui.llama_menu import MetadataDialog

        dialog = MetadataDialog(state.model, window)
        dialog.tabs.setCurrentIndex(1)  # the tensors: shapes, GGUF dims, block axis
        dialog.show()
        for _ in range(10):
            app.processEvents()
        ok = dialog.grab().save(args.metadata) and ok
    window.shutdown()
    print(
        f"{'wrote' if ok else 'FAILED to write'} {args.output} ({window.width()}×{window.height()})"
    )
    return 0 if ok else 1


def _analyse(app: object, window: object, front: bool = True) -> None:
    """Evaluate, rank layers at uint8 and build the front, each waited for in turn."""
    ev = window.evaluation  # type: ignore[attr-defined]
    done: list[str] = []
    ev.evaluated.connect(lambda _e: done.append("eval"))
    ev.sensitivity_done.connect(lambda _r: done.append("sens"))
    ev.front_done.connect(lambda *_a: done.append("front"))
    ev.evaluate()
    _wait(app, lambda: "eval" in done, 120)
    ev.run_sensitivity("uint8")
    _wait(app, lambda: "sens" in done, 300)
    if front:
        ev.build_front()
        _wait(app, lambda: "front" in done, 300)


def _pick_tensor(model: object) -> str:
    names = [t.name for t in model if t.info.is_float and len(t.info.shape) >= 2]  # type: ignore[attr-defined]
    kernels = [n for n in names if "kernel" in n]
    return (kernels or names or [next(iter(model)).name])[0]  # type: ignore[call-overload]


if __name__ == "__main__":
    sys.exit(main())
