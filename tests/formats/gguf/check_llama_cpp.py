"""Dev-time proof that llama.cpp reads our GGUF exports and that the llama-quantize command
written beside each export gives the same per-tensor types (needs llama.cpp's tools; CI has
none, so this is a script, not a test):

    PYTHONPATH=. /work/main/.venv/bin/python tests/formats/gguf/check_llama_cpp.py [LLAMA_BIN]

For each plan: export tests/formats/gguf/data/tiny_f16.gguf, read the file with
`llama-gguf FILE r n`, load it through llama.cpp's model loader with tensor validation
(`llama-quantize --allow-requantize FILE COPY`), run the written llama-quantize command on the
input and compare every tensor's type with ours. Prints one line per plan; exits 1 on a failure.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf

from inspector.core.plan import Plan
from inspector.formats import open_model
from inspector.formats.export import export_model

HERE = Path(__file__).resolve().parent
SRC = HERE / "data" / "tiny_f16.gguf"
BIN = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/tools/llbuild/bin")


def plans() -> dict[str, Plan]:
    q4km = Plan()
    with open_model(HERE / "data" / "tiny_q4_k_m.gguf") as m:
        for t in m:
            if t.info.stored is not None:
                q4km = q4km.with_overrides([t.name], t.info.stored.scheme)
    return {
        "float16": Plan(default="float16").with_rule("*norm*", "float32"),
        "int8 baked": Plan(default="int8").with_rule("*norm*", "float32"),
        "q8_0": Plan(default="q8_0").with_rule("*norm*", "float32"),
        "q4_k_m types": q4km,
        "mixed q4_0/q6_k": Plan(default="q4_0")
        .with_rule("*ffn*", "q6_k")
        .with_rule("*norm*", "float32"),
        "norm to f16": Plan(default="q8_0"),
    }


def run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True)


def types(path: Path) -> dict[str, str]:
    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}


def check(name: str, plan: Plan, work: Path) -> bool:
    out = work / f"{name.replace(' ', '_').replace('/', '_')}.gguf"
    with open_model(SRC) as model:
        export_model(model, plan, "gguf", out)
    problems = []
    r = run(BIN / "llama-gguf", out, "r", "n")
    if r.returncode:
        problems.append(f"llama-gguf: {r.stderr.strip().splitlines()[-1:]}")
    r = run(BIN / "llama-quantize", "--allow-requantize", out, work / "copy.gguf", "COPY")
    if r.returncode:
        problems.append(f"llama model loader: {r.stderr.strip().splitlines()[-1:]}")
    text = out.with_name(out.stem + ".llama-quantize.txt").read_text()
    lines = [ln.removesuffix("\\") for ln in text.splitlines() if not ln.startswith("#")]
    args = shlex.split(" ".join(lines))
    args[0], args[-3], args[-2] = str(BIN / "llama-quantize"), str(SRC), str(work / "repro.gguf")
    r = run(*args)
    impossible = [ln.split()[1] for ln in text.splitlines() if ln.startswith("#   ")]
    if r.returncode:
        problems.append(f"llama-quantize: {r.stderr.strip().splitlines()[-1:]}")
    else:
        ours, theirs = types(out), types(work / "repro.gguf")
        diff = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
        if set(diff) != set(impossible):
            problems.append(f"types differ: {diff} (said impossible: {impossible})")
    print(f"{name:18} {'ok' if not problems else 'FAIL'}  {'; '.join(problems)}")
    return not problems


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        results = [check(name, plan, Path(tmp)) for name, plan in plans().items()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
