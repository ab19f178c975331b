"""Generator: files truncated by "another process" while they are read (issue 18 §2, crash).

For each format whose values are read lazily, a child process opens a copy of a real-format
file, loads some tensors and keeps them (what a preview holds while it computes), truncates the
file at an offset drawn by the test (hypothesis, derandomized), then uses the held values and
loads every tensor. Every case must end in "ok" or a clean `InspectorError` naming the file —
never a signal (SIGBUS from a memory map), never another exception. The cases of one format run
in one child; a crash names the case that caused it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
CASES = int(40 * float(os.environ.get("FUZZ_SCALE", "1")))

_CHILD = r"""
import json, os, shutil, sys
import numpy as np
from inspector.core.errors import InspectorError
from inspector.formats.registry import open_model
seed, name, work, cases = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
for i, (held, cut) in enumerate(cases):
    print("CASE", i, held, cut, flush=True)
    case = os.path.join(work, f"case{i}")
    shutil.copytree(seed, case)
    entry = os.path.join(case, name)
    files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(case) for f in fs)
    data_files = [f for f in files if not f.endswith((".json", ".onnx"))] or files
    try:
        with open_model(entry) as model:
            tensors = list(model)
            kept = [t.load() for t in tensors[: held % (len(tensors) + 1)]]
            victim = data_files[cut % len(data_files)]
            os.truncate(victim, cut % (os.path.getsize(victim) + 1))
            for arr in kept:
                np.asarray(arr, dtype=np.float64).sum()
            for t in tensors:
                np.asarray(t.load(), dtype=np.float64).sum()
        print("RESULT ok", flush=True)
    except InspectorError as exc:
        path = str(getattr(exc, "path", None) or "")
        assert not path or case in path or path in entry, (path, case)
        print("RESULT error", flush=True)
    shutil.rmtree(case)
print("DONE", flush=True)
"""


def _safetensors(path: Path) -> Path:
    rng = np.random.default_rng(0)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    chunks, offset = [], 0
    for i, shape in enumerate([(64, 32), (32,), (128, 64), (16, 16, 3)]):
        data = rng.standard_normal(shape).astype(np.float32).tobytes()
        header[f"layer{i}.weight"] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + b"".join(chunks))
    return path


def _npz(path: Path) -> Path:
    rng = np.random.default_rng(1)
    arrays = {
        f"l{i}/kernel": rng.standard_normal((48, 24 + i)).astype(np.float32) for i in range(4)
    }
    np.savez(path, **arrays)
    return path


def _gguf(path: Path, tmp: Path) -> Path:
    from inspector.core.plan import Plan
    from inspector.formats.export import export_model
    from inspector.formats.registry import open_model

    with open_model(_npz(tmp / "for_gguf.npz")) as model:
        export_model(model, Plan(default="q8_0"), "gguf", path)
    return path


def _tfjs(folder: Path) -> Path:
    shutil.rmtree(folder)
    shutil.copytree(REPO / "resources" / "diabetes_mlp" / "tfjs", folder)
    return folder


def _onnx_external(path: Path) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path, save_as_external_data=True, location="m.data", size_threshold=0)
    return path


MAKERS = {  # format: (maker of the seed inside a folder, entry name)
    "safetensors": (lambda d: _safetensors(d / "m.safetensors"), "m.safetensors"),
    "npz": (lambda d: _npz(d / "m.npz"), "m.npz"),
    "gguf": (lambda d: _gguf(d / "m.gguf", d.parent), "m.gguf"),
    "tfjs": (lambda d: _tfjs(d), "model.json"),
    "onnx-external": (lambda d: _onnx_external(d / "m.onnx"), "m.onnx"),
}


def _run_cases(seed: Path, name: str, work: Path, cases: list[tuple[int, int]]) -> None:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "QUANT_INSPECTOR_NO_JIT": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(seed), name, str(work), json.dumps(cases)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = proc.stdout.splitlines()
    last = next((line for line in reversed(lines) if line.startswith("CASE")), "no case")
    if proc.returncode < 0:
        pytest.fail(f"killed by {signal.Signals(-proc.returncode).name} at {last}")
    assert proc.returncode == 0 and lines[-1:] == ["DONE"], f"{last}\n{proc.stderr[-3000:]}"
    results = [line for line in lines if line.startswith("RESULT")]
    assert len(results) == len(cases)


@pytest.mark.parametrize("fmt", list(MAKERS))
def test_truncated_while_reading(tmp_path: Path, fmt: str) -> None:
    make, name = MAKERS[fmt]
    seed = tmp_path / "seed"
    seed.mkdir()
    make(seed)
    work = tmp_path / "work"
    work.mkdir()
    drawn: list[tuple[int, int]] = []

    @settings(
        max_examples=CASES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(held=st.integers(0, 16), cut=st.integers(0, 1 << 20))
    def collect(held: int, cut: int) -> None:
        drawn.append((held, cut))

    collect()
    _run_cases(seed, name, work, drawn)
