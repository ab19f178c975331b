"""Valid input refused, silently wrong results, and a crash (issue 18 §2), on files the tests
make: rules whose scheme has options; tensor sizes of float8/int4/float128 inputs; a tensor
named like an export's own plan record; a safetensors file truncated while it is read.
"""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inspector.cli import main
from inspector.core.errors import FormatError, PlanError
from inspector.core.model import TensorInfo, dtype_bits
from inspector.core.plan import Plan, parse_rule
from inspector.formats.registry import open_model

REPO = Path(__file__).resolve().parents[2]


def _npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def _kernels() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv1/kernel": rng.standard_normal((3, 3, 16, 32), np.float32),
        "dense/kernel": rng.standard_normal((64, 32), np.float32),
    }


# --- rules whose scheme has options -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "glob", "spec"),
    [
        ("conv*=int4:group=16", "conv*", "int4:group=16"),
        ("conv*=int8:axis=0,clip=percentile:99.9", "conv*", "int8:axis=0,clip=percentile:99.9"),
        ("*=uint8:clip=mse", "*", "uint8:clip=mse"),
        ("dense/kernel:0=int8:axis=0", "dense/kernel:0", "int8:axis=0"),  # tf.keras names
        ("a=b=uint8", "a=b", "uint8"),  # a glob holding '='
        ("x*=Q4_K", "x*", "q4_k"),
        (" conv* = int4 : group = 16 ", "conv*", "int4:group=16"),
    ],
)
def test_rule_grammar(text: str, glob: str, spec: str) -> None:
    rule = parse_rule(text)
    assert rule.pattern == glob
    assert rule.scheme.replace(" ", "") == Plan().with_default(spec).default.replace(" ", "")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("conv*=int4:group=0", "group"),
        ("conv*=bogus:group=3", "unknown scheme 'bogus'"),
        ("a=b=c", "unknown scheme 'c'"),
        ("conv*=", "GLOB=SCHEME"),
        ("=int8", "GLOB=SCHEME"),
        ("no-equals", "GLOB=SCHEME"),
    ],
)
def test_bad_rules_say_why(text: str, needle: str) -> None:
    with pytest.raises(PlanError) as info:
        parse_rule(text)
    assert needle in str(info.value) and repr(text) in str(info.value)


def test_every_option_scheme_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every registered family with an option, as a rule: the preview applies it."""
    path = _npz(tmp_path / "m.npz", _kernels())
    specs = ["int4:group=16", "int8:axis=0", "uint8:clip=percentile:99", "kmeans4:sparsity=0.5"]
    for spec in specs:
        argv = ["preview", str(path), "--format", "safetensors", "--rule", f"conv*={spec}"]
        assert main([*argv, "--json"]) == 0, spec
        doc = json.loads(capsys.readouterr().out)
        row = next(t for t in doc["tensors"] if t["name"] == "conv1/kernel")
        assert row["scheme"].split(":")[0] == spec.split(":")[0]
        assert doc["plan"]["rules"] == [
            {"pattern": "conv*", "scheme": Plan().with_default(spec).default}
        ]


# --- sizes of dtypes numpy or ONNX name oddly -------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "bits"),
    [
        ("float8_e4m3fn", 8),
        ("float8_e4m3fnuz", 8),
        ("float8_e5m2", 8),
        ("float8_e5m2fnuz", 8),
        ("int4", 4),
        ("uint4", 4),
        ("float4_e2m1fn", 4),
        ("int2", 2),
        ("float128", 128),
        ("complex128", 128),
        ("complex256", 256),
        ("bfloat16", 16),
        ("bool", 8),
        ("string", 0),
    ],
)
def test_dtype_bits(dtype: str, bits: int) -> None:
    assert dtype_bits(dtype) == bits
    assert TensorInfo("t", (3, 5), dtype).nbytes == -(-15 * bits // 8)


def test_float128_and_complex_sizes_in_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arrays = {"a": np.ones((4, 4), np.longdouble), "b": np.ones(3, np.complex128)}
    path = _npz(tmp_path / "m.npz", arrays)
    assert main(["info", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    want = {"a": 16 * np.dtype(np.longdouble).itemsize, "b": 48}
    assert {t["name"]: t["original_bytes"] for t in doc["tensors"]} == want
    assert main(["preview", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(t["original_bytes"] > 0 for t in doc["tensors"])
    out = tmp_path / "o.npz"
    assert main(["export", str(path), "-o", str(out)]) == 0
    assert doc["total"]["quantized_bytes"] == out.stat().st_size


def test_float8_and_int4_onnx_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inits = []
    for name, dtype, shape, nbytes in [
        ("f8", TensorProto.FLOAT8E4M3FN, (4, 8), 32),
        ("f8b", TensorProto.FLOAT8E5M2, (16,), 16),
        ("i4", TensorProto.INT4, (4, 8), 16),
        ("u4", TensorProto.UINT4, (3, 7), 11),
        ("w", TensorProto.FLOAT, (8, 8), 256),
    ]:
        inits.append(helper.make_tensor(name, dtype, shape, vals=bytes(nbytes), raw=True))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y])
    graph.initializer.extend(inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    assert main(["preview", str(path), "--scheme", "int8", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    before = {t["name"]: t["original_bytes"] for t in doc["tensors"]}
    assert before == {"f8": 32, "f8b": 16, "i4": 16, "u4": 11, "w": 256}
    out = tmp_path / "o.onnx"
    assert main(["export", str(path), "-o", str(out), "--scheme", "int8"]) == 0
    assert doc["total"]["quantized_bytes"] == out.stat().st_size


# --- a tensor named like the plan record -------------------------------------------------------


def test_tensor_named_like_the_plan_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arrays = _kernels() | {"__quant_inspector_plan__": np.arange(12, dtype=np.float32)}
    path = _npz(tmp_path / "m.npz", arrays)
    # npz stores its plan under that name: refused, saying which formats work.
    assert main(["export", str(path), "-o", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "__quant_inspector_plan__" in err
    assert "--format" in err and "safetensors" in err
    assert not (tmp_path / "o.npz").exists()
    # safetensors keeps the plan in __metadata__: the tensor is written like any other.
    out = tmp_path / "o.safetensors"
    assert main(["export", str(path), "-o", str(out), "--format", "safetensors"]) == 0
    capsys.readouterr()
    with open_model(out) as model:
        assert "__quant_inspector_plan__" in model.tensors
        np.testing.assert_array_equal(model["__quant_inspector_plan__"].load(), np.arange(12))


def test_own_npz_plan_record_is_not_a_tensor(tmp_path: Path) -> None:
    """Re-exporting this tool's own npz export: its plan record is metadata, not a tensor,
    so it is neither refused nor copied into a safetensors export as a weight."""
    src = _npz(tmp_path / "m.npz", _kernels())
    first = tmp_path / "q.npz"
    assert main(["export", str(src), "-o", str(first), "--scheme", "uint8"]) == 0
    with open_model(first) as model:
        assert sorted(model.tensors) == ["conv1/kernel", "dense/kernel"]
        assert json.loads(model.metadata["npz_plan"])["overrides"]
    for out, fmt in ((tmp_path / "again.npz", "npz"), (tmp_path / "q.safetensors", "safetensors")):
        assert main(["export", str(first), "-o", str(out), "--format", fmt]) == 0
        with open_model(out) as model:
            assert sorted(model.tensors) == ["conv1/kernel", "dense/kernel"]


def test_tensor_named_metadata_refused_for_safetensors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _npz(tmp_path / "m.npz", {"__metadata__": np.ones(4, np.float32)})
    out = tmp_path / "o.safetensors"
    assert main(["export", str(path), "-o", str(out), "--format", "safetensors"]) == 2
    err = capsys.readouterr().err
    assert "__metadata__" in err and str(path) in err and not out.exists()


# --- safetensors truncated while it is read: never SIGBUS --------------------------------------


def _safetensors(path: Path, tensors: int, elements: int) -> Path:
    header: dict[str, object] = {}
    for i in range(tensors):
        begin = i * elements * 4
        offsets = [begin, begin + elements * 4]
        header[f"t{i}"] = {"dtype": "F32", "shape": [elements], "data_offsets": offsets}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    values = np.arange(elements, dtype=np.float32).tobytes()
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        for _ in range(tensors):
            fh.write(values)
    return path


_TRUNCATE_WHILE_HELD = r"""
import os, sys
import numpy as np
from inspector.core.errors import FormatError
from inspector.formats.registry import open_model
path = sys.argv[1]
with open_model(path) as model:
    held = model["t0"].load()  # what a preview holds while it computes
    os.truncate(path, 4096)  # another process cuts the file
    total = float(held.sum())  # an mmap view here would die of SIGBUS
    try:
        model["t3"].load()
    except FormatError as exc:
        print("ERROR", exc.path, exc.tensor, exc.reason)
    print("SUM", total)
"""


def test_truncated_while_held_is_no_sigbus(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "m.safetensors", tensors=4, elements=1 << 20)
    proc = subprocess.run(
        [sys.executable, "-c", _TRUNCATE_WHILE_HELD, str(path)],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"ERROR {path} t3 ") and "early" in lines[0]
    assert lines[1] == f"SUM {float(np.arange(1 << 20, dtype=np.float32).sum())}"


def test_truncated_during_cli_preview(tmp_path: Path) -> None:
    """A CLI preview whose file another process truncates mid-way: one clear error line naming
    the file and the tensor, status 2 (or 0 when the preview finished first) — never SIGBUS."""
    path = _safetensors(tmp_path / "m.safetensors", tensors=40, elements=1 << 20)
    code = r"""
import os, sys
from inspector.cli import main
from inspector.core.model import Tensor
real, seen = Tensor.load, []
def load_then_cut(self):
    arr = real(self)  # the preview now computes on these values ...
    if not seen:
        seen.append(1)
        os.truncate(sys.argv[1], 4096)  # ... while another process cuts the file
    return arr
Tensor.load = load_then_cut
sys.exit(main(["preview", sys.argv[1], "--scheme", "uint8"]))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"quant-inspector: error: {path}: tensor 't")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_truncated_before_load_names_tensor(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "m.safetensors", tensors=3, elements=1000)
    with open_model(path) as model:
        path.write_bytes(path.read_bytes()[:100])
        with pytest.raises(FormatError) as info:
            model["t1"].load()
    assert info.value.path == str(path) and info.value.tensor == "t1"


_GUI_TRUNCATED = r"""
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from pathlib import Path
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from inspector.core.plan import Plan
path = Path(sys.argv[1])
app = QApplication([])
from inspector.ui.main_window import MainWindow
win = MainWindow(QSettings(str(path.with_suffix(".ini")), QSettings.Format.IniFormat))
win.show()
phase = [0]
def tick():
    state = win.state
    if phase[0] == 0 and state.preview is not None:
        name = next(iter(state.model.tensors))
        state.set_selection([name], name)
        os.truncate(path, 4096)  # another process cuts the file under the open window
        state.set_plan(Plan(default="int8"))  # a new preview reads every tensor again
        phase[0] = 1
    elif phase[0] == 1 and "failed" in win.status_label.text().lower():
        print("STATUS", win.status_label.text())
        QTimer.singleShot(300, lambda: (print("ALIVE", win.isVisible()), app.exit(0)))
        return
    QTimer.singleShot(50, tick)
QTimer.singleShot(50, tick)
QTimer.singleShot(90_000, lambda: app.exit(3))
win.open_path(path)
code = app.exec()
win.shutdown()
sys.exit(code)
"""


def test_window_survives_a_truncated_safetensors(tmp_path: Path) -> None:
    pytest.importorskip("PySide6")
    path = _safetensors(tmp_path / "m.safetensors", tensors=8, elements=1 << 18)
    proc = subprocess.run(
        [sys.executable, "-c", _GUI_TRUNCATED, str(path)],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode != -signal.SIGBUS, "the window was killed by SIGBUS"
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "STATUS Preview failed: " in proc.stdout and "early" in proc.stdout
    assert "ALIVE True" in proc.stdout
