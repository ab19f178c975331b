"""Each command imports only what it needs (issue 17): heavy modules cost 0.5-3 s of start-up
each on a busy two-core machine, more than `info` itself. Behaviour, not timing: a fresh
interpreter runs the command and reports which heavy packages ended up in `sys.modules`."""

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "ml_dtypes",
    "h5py",
    "onnx",
    "onnxruntime",
    "numba",
    "llvmlite",
    "PySide6",
    "pyqtgraph",
    "scipy",
    "gguf",
    "ai_edge_litert",
)
PROBE = """
import contextlib, io, json, sys
from inspector.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    status = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(HEAVY)))
heavy += ["inspector.engine"] if "inspector.engine" in sys.modules else []
print(json.dumps({"status": status, "heavy": heavy}))
"""


def imported(*argv: str, no_jit: bool = False) -> list[str]:
    """Heavy top-level packages imported by `quant-inspector ARGV` in a fresh interpreter."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen"}
    if no_jit:
        env["QUANT_INSPECTOR_NO_JIT"] = "1"
    code = PROBE.replace("HEAVY", repr(json.dumps(HEAVY)))
    res = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["status"] == 0
    return doc["heavy"]


def write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> Path:
    header, blobs, offset = {}, [], 0
    for name, (code, raw) in tensors.items():
        data = raw.tobytes()
        header[name] = {
            "dtype": code,
            "shape": list(raw.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("lazy")
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    bf16_bits = (w.view(np.uint32) >> 16).astype(np.uint16)  # truncated bfloat16 patterns
    f32 = write_safetensors(d / "f32.safetensors", {"w": ("F32", w), "b": ("F32", w[0])})
    bf16 = write_safetensors(d / "bf16.safetensors", {"w": ("BF16", bf16_bits)})
    return {"f32": f32, "bf16": bf16}


def test_info_parses_headers_only(models):
    for path in models.values():
        assert imported("info", str(path)) == []
        assert imported("info", str(path), "--json") == []


def test_info_of_a_block_quantized_gguf_needs_no_compiler():
    gguf = ROOT / "tests" / "core" / "ggml" / "data" / "out" / "q4_k_legacy.gguf"
    assert imported("info", str(gguf)) == []


def test_preview_of_safetensors_imports_no_gui_and_no_other_format(models):
    for no_jit in (True, False):
        heavy = set(
            imported("preview", str(models["f32"]), "--scheme", "uint8", "--json", no_jit=no_jit)
        )
        assert not heavy & {
            "PySide6",
            "pyqtgraph",
            "h5py",
            "onnx",
            "onnxruntime",
            "scipy",
            "ml_dtypes",
        }
        if no_jit:
            assert "numba" not in heavy


@pytest.mark.parametrize("scheme", ["uint8", "bfloat16"])
def test_touching_bfloat16_imports_ml_dtypes(models, scheme):
    """The probe sees an import when one happens: previewing bfloat16 values needs ml_dtypes."""
    heavy = imported("preview", str(models["bf16"]), "--scheme", scheme, "--json", no_jit=True)
    assert "ml_dtypes" in heavy


def test_auto_help_states_the_real_default_ladder():
    """The default of `auto --ladder` is written out in the help (building the parser does
    not import the budget module for it); it must stay the one the command uses."""
    from inspector.cli.main import build_parser
    from inspector.core.budget import DEFAULT_LADDER

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    ladder = next(a for a in sub.choices["auto"]._actions if a.dest == "ladder")
    assert f"(default: {','.join(DEFAULT_LADDER)})" in ladder.help


def test_info_loads_no_scheme_family(models):
    """Listing tensors needs the readers, not the quantizers."""
    code = (
        "import contextlib, io, sys; from inspector.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(sys.argv[1:])\n"
        "print(sorted(m for m in sys.modules if m.startswith('inspector.core.schemes')))"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    res = subprocess.run(
        [sys.executable, "-c", code, "info", str(models["f32"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"
