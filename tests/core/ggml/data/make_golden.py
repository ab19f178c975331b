"""Make the golden files of tests/core/ggml with the real llama.cpp tools (dev time only).

llama.cpp: commit 0c1e57098 (vendored by llama-cpp-python 0.3.36, gguf-py 0.19.0), tools built
as /work/shared/TOOLING.md says (CPU, GGML_NATIVE=OFF) into $LLAMA_BIN
(default /work/tools/llbuild/bin). Needs the `gguf` package. Run from anywhere:

    python tests/core/ggml/data/make_golden.py

Writes into this folder:
- golden_f32.gguf / golden_f16.gguf: a one-block llama file whose weights have realistic
  statistics and awkward rows (constant, zero, tiny, subnormal, outliers, one-signed), rows of
  256, 512 and 768 values, one tensor with rows of 288 (fallback of 256-value types) and one
  with rows of 80 (f16 fallback of every type), and a 1-D norm.
- imatrix.gguf (llama-imatrix's GGUF layout) and imatrix_legacy.dat (the legacy format).
- out/*.gguf: `llama-quantize --pure IN OUT TYPE [--imatrix FILE]` for every type.
- golden.json: the commands, and per output and tensor the sha256 of llama.cpp's own
  dequantization of it (`llama-quantize --allow-requantize OUT F32`).
- mixtures.json: per-tensor types llama-quantize chose for every file type on llama-shaped
  files (8 and 12 blocks, GQA 4 and 1, tied and untied embeddings, rows needing fallback), with
  and without an importance matrix; those model files are made in a temporary folder only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np

HERE = Path(__file__).resolve().parent
BIN = Path(os.environ.get("LLAMA_BIN", "/work/tools/llbuild/bin"))
QUANTIZE = str(BIN / "llama-quantize")
COMMIT = "0c1e57098"

PLAIN = [
    *("F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K"),
    *("Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4_MOE"),
]  # no Q2_0: the gguf 0.19 wheel cannot read it (data/c_dequant.npz covers its decoder)
WITH_IMATRIX = [
    *("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL"),
    *("IQ4_XS", "IQ2_XXS", "IQ2_XS", "IQ2_M", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M"),
]
WITH_LEGACY = ["Q4_K", "IQ4_NL", "Q3_K"]
FROM_F16 = ["Q4_K", "Q6_K", "Q5_0", "IQ4_NL", "Q8_0"]


def weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Row-major float32 tensors of the golden file."""
    q = (rng.standard_normal((32, 512)) * 0.02).astype(np.float32)
    q[:, rng.integers(0, 512, 6)] *= 25  # outlier input channels, as in real attention weights
    q[3, 7] = -0.9
    down = (rng.standard_t(4, (16, 768)) * 0.015).astype(np.float32)
    down[0] = 0.125  # constant row
    down[1] = 0.0  # zero row
    down[2] *= 1e-20  # tiny magnitudes
    down[3, ::97] = 2.5  # a few outliers
    down[4] = np.abs(down[4])  # one-signed rows
    down[5] = -np.abs(down[5])
    down[6] = rng.standard_normal(768).astype(np.float32) * np.float32(1e-39)  # subnormal
    down[7] = rng.integers(-4, 5, 768).astype(np.float32)  # exact grid values, ties
    down[8, :384] = 0.0  # half-empty row
    down[9, ::2] = 0.0
    down[10] = np.float16(down[10]).astype(np.float32) * 1000
    return {
        "blk.0.attn_q.weight": q,
        "blk.0.ffn_down.weight": down,
        "blk.0.attn_k.weight": (rng.standard_normal((16, 288)) * 0.05).astype(np.float32),
        "blk.0.attn_v.weight": (rng.laplace(size=(8, 80)) * 0.03).astype(np.float32),
        "blk.0.ffn_up.weight": (rng.standard_t(2.5, (8, 256)) * 0.02).astype(np.float32),
        "blk.0.attn_norm.weight": (1 + rng.standard_normal(512) * 0.1).astype(np.float32),
    }


def write_model(path: Path, tensors: dict[str, np.ndarray], hp: dict, dtype=np.float32) -> None:
    arch = hp.get("arch", "llama")
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(hp["n_layer"])
    w.add_context_length(128)
    w.add_embedding_length(hp["n_embd"])
    w.add_feed_forward_length(hp["n_ff"])
    w.add_head_count(hp["n_head"])
    w.add_head_count_kv(hp["n_head_kv"])
    if arch == "falcon":
        w.add_layer_norm_eps(1e-5)
    else:
        w.add_layer_norm_rms_eps(1e-5)
    if hp.get("n_expert"):
        w.add_expert_count(hp["n_expert"])
        w.add_expert_used_count(2)
    w.add_file_type(0 if dtype == np.float32 else 1)
    for name, arr in tensors.items():
        w.add_tensor(name, arr.astype(dtype) if arr.ndim > 1 else arr.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_imatrix_gguf(
    path: Path, sums: dict[str, np.ndarray], count: int, dataset: str, chunks: int
) -> None:
    """llama-imatrix's GGUF layout: NAME.in_sum2 (n_mat, ne0) and NAME.counts (n_mat, 1)."""
    w = gguf.GGUFWriter(str(path), "imatrix")
    w.add_string("general.type", "imatrix")
    w.add_array("imatrix.datasets", [dataset])
    w.add_uint32("imatrix.chunk_count", chunks)
    w.add_uint32("imatrix.chunk_size", 512)
    for name, values in sums.items():
        values = values.reshape(-1, values.shape[-1]).astype(np.float32)
        w.add_tensor(f"{name}.in_sum2", values)
        w.add_tensor(f"{name}.counts", np.full((values.shape[0], 1), count, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_imatrix_legacy(path: Path, entries: dict[str, np.ndarray], ncall: int) -> None:
    out = bytearray(struct.pack("<i", len(entries)))
    for name, values in entries.items():
        raw = name.encode()
        out += struct.pack("<i", len(raw)) + raw + struct.pack("<ii", ncall, values.size)
        out += values.astype("<f4").tobytes()
    name = b"legacy-calibration.txt"
    out += struct.pack("<i", 7) + struct.pack("<i", len(name)) + name
    path.write_bytes(bytes(out))


def quantize(args: list[str], cwd: Path = HERE) -> str:
    cmd = [QUANTIZE, *args]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if run.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return run.stdout + run.stderr


def llama_dequant_hashes(out: Path, tmp: Path) -> dict[str, str]:
    """sha256 of llama.cpp's float32 decoding of every tensor of `out`."""
    f32 = tmp / "requant_f32.gguf"
    quantize(["--allow-requantize", str(out), str(f32), "F32"])
    reader = gguf.GGUFReader(str(f32))
    hashes = {}
    for t in reader.tensors:
        data = np.asarray(t.data)
        if t.tensor_type != gguf.GGMLQuantizationType.F32:
            sys.exit(f"{out}: {t.name} did not decode to F32")
        hashes[t.name] = hashlib.sha256(data.astype("<f4").tobytes()).hexdigest()
    return hashes


def make_golden(tmp: Path) -> None:
    rng = np.random.default_rng(20240613)
    tensors = weights(rng)
    hp = {"n_layer": 1, "n_embd": 512, "n_ff": 768, "n_head": 8, "n_head_kv": 2}
    write_model(HERE / "golden_f32.gguf", tensors, hp)
    write_model(HERE / "golden_f16.gguf", tensors, hp, np.float16)
    mats = {n: a for n, a in tensors.items() if a.ndim == 2}
    sums = {
        n: (rng.random(a.shape[1]) ** 3 * 40 + 0.01).astype(np.float32) for n, a in mats.items()
    }
    sums["blk.0.attn_q.weight"][::40] = 0.0
    write_imatrix_gguf(HERE / "imatrix.gguf", sums, 37, "golden-calibration.txt", 12)
    legacy = {n: (rng.random(a.shape[1]) ** 2 * 9).astype(np.float32) for n, a in mats.items()}
    write_imatrix_legacy(HERE / "imatrix_legacy.dat", legacy, 10)
    outdir = HERE / "out"
    outdir.mkdir(exist_ok=True)
    runs = [(t, "golden_f32.gguf", None) for t in PLAIN]
    runs += [(t, "golden_f32.gguf", "imatrix.gguf") for t in WITH_IMATRIX]
    runs += [(t, "golden_f32.gguf", "imatrix_legacy.dat") for t in WITH_LEGACY]
    runs += [(t, "golden_f16.gguf", None) for t in FROM_F16]
    manifest: dict = {"llama_cpp_commit": COMMIT, "outputs": {}}
    for ftype, src, imatrix in runs:
        tag = {None: "", "imatrix.gguf": "_imatrix", "imatrix_legacy.dat": "_legacy"}[imatrix]
        prefix = "f16in_" if src == "golden_f16.gguf" else ""
        name = f"{prefix}{ftype.lower()}{tag}.gguf"
        flags = ["--pure"] + (["--imatrix", imatrix] if imatrix else [])
        quantize([*flags, src, f"out/{name}", ftype])
        manifest["outputs"][name] = {
            "command": " ".join(["llama-quantize", *flags, src, f"out/{name}", ftype]),
            "input": src,
            "imatrix": imatrix,
            "llama_f32_sha256": llama_dequant_hashes(outdir / name, tmp),
        }
        print(name, (outdir / name).stat().st_size)
    (HERE / "golden.json").write_text(json.dumps(manifest, indent=1) + "\n")


FTYPES = [
    *("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q2_K_S", "Q3_K_S"),
    *("Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"),
    *("IQ3_XS", "IQ3_S", "IQ3_M", "IQ3_XXS", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S"),
    *("IQ1_M", "TQ1_0", "TQ2_0", "MXFP4_MOE", "Q1_0", "Q2_0"),
]
SCENARIOS = {
    "llama8_gqa4": {"n_layer": 8, "n_embd": 256, "n_ff": 512, "n_head": 8, "n_head_kv": 2},
    "llama12_tied_fallback": {
        "n_layer": 12, "n_embd": 256, "n_ff": 320, "n_head": 4, "n_head_kv": 4, "tied": True,
    },
    "llama4_moe8": {
        "n_layer": 4, "n_embd": 256, "n_ff": 512, "n_head": 8, "n_head_kv": 8, "n_expert": 8,
    },
    "falcon4": {
        "arch": "falcon", "n_layer": 4, "n_embd": 256, "n_ff": 1024, "n_head": 4, "n_head_kv": 1,
    },
}  # fmt: skip
_LINE = re.compile(r"\]\s+(\S+)\s+- \[.*?\], type =\s*(\w+), (.*)$")


def scenario_tensors(hp: dict) -> dict[str, tuple[int, ...]]:
    """Row-major shapes of a llama- or falcon-shaped model (real llama.cpp tensor names)."""
    e, f, vocab = hp["n_embd"], hp["n_ff"], 64
    kv = e * hp["n_head_kv"] // hp["n_head"]
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (vocab, e)}
    shapes["output_norm.weight"] = (e,)
    if not hp.get("tied"):
        shapes["output.weight"] = (vocab, e)
    for i in range(hp["n_layer"]):
        b = f"blk.{i}."
        shapes[b + "attn_norm.weight"] = (e,)
        if hp.get("arch") == "falcon":
            shapes[b + "attn_norm.bias"] = (e,)
            shapes[b + "attn_qkv.weight"] = (e + 2 * kv, e)
        else:
            shapes[b + "attn_q.weight"] = (e, e)
            shapes[b + "attn_k.weight"] = (kv, e)
            shapes[b + "attn_v.weight"] = (kv, e)
            shapes[b + "ffn_norm.weight"] = (e,)
        shapes[b + "attn_output.weight"] = (e, e)
        if hp.get("n_expert"):
            n = hp["n_expert"]
            shapes[b + "ffn_gate_inp.weight"] = (n, e)
            shapes[b + "ffn_gate_exps.weight"] = (n, f, e)
            shapes[b + "ffn_up_exps.weight"] = (n, f, e)
            shapes[b + "ffn_down_exps.weight"] = (n, e, f)
        else:
            if hp.get("arch") != "falcon":
                shapes[b + "ffn_gate.weight"] = (f, e)
            shapes[b + "ffn_up.weight"] = (f, e)
            shapes[b + "ffn_down.weight"] = (e, f)
    return shapes


def read_types(path: Path) -> dict[str, str]:
    return {t.name: t.tensor_type.name.lower() for t in gguf.GGUFReader(str(path)).tensors}


def dry_run_types(log: str) -> dict[str, str]:
    types = {}
    for line in log.splitlines():
        m = _LINE.search(line)
        if m:
            found = re.search(r"\((\w+)\)\s*$", m.group(3))
            types[m.group(1)] = (found.group(1) if found else m.group(2)).lower()
    return types


def run_mixture(tmp: Path, src: Path, ftype: str, imatrix: Path | None) -> tuple[dict, str]:
    """The types of a real llama-quantize output; for the slow i-quants and the file types
    that need an imatrix, those its --dry-run reports (the same type choice code runs)."""
    out = tmp / "mix_out.gguf"
    flags = ["--imatrix", str(imatrix)] if imatrix else []
    cmd = [QUANTIZE, *flags, str(src), str(out), ftype]
    run = None
    if not ftype.startswith(("IQ1", "IQ2", "IQ3", "TQ", "Q2_0")):  # Q2_0: unknown to gguf 0.19
        run = subprocess.run(cmd, capture_output=True, text=True)
    if run is not None and run.returncode == 0:
        return read_types(out), "file"
    stopped = (
        re.search(r"failed to quantize: (no tensor type fallback[^\n]*)", run.stdout + run.stderr)
        if run
        else None
    )
    if stopped:
        return {"error": stopped.group(1)}, "error"
    if run is not None and "requires an imatrix" not in run.stdout + run.stderr:
        sys.exit(f"{' '.join(cmd)} failed:\n{run.stdout[-1500:]}\n{run.stderr[-1500:]}")
    log = quantize(["--dry-run", *flags, str(src), str(out), ftype], tmp)
    return dry_run_types(log), "dry-run"


def make_mixtures(tmp: Path, only: list[str] | None = None) -> None:
    """All file types, or with `only` just those, merged into the existing mixtures.json."""
    rng = np.random.default_rng(7)
    result: dict = {"llama_cpp_commit": COMMIT, "scenarios": {}}
    if only:
        result = json.loads((HERE / "mixtures.json").read_text())
    for name, hp in SCENARIOS.items():
        shapes = scenario_tensors(hp)
        tensors = {n: (rng.standard_normal(s) * 0.02).astype(np.float32) for n, s in shapes.items()}
        src = tmp / f"{name}.gguf"
        write_model(src, tensors, hp, np.float16)
        mats = {n: s for n, s in shapes.items() if len(s) > 1 and n.endswith("weight")}
        imatrix = tmp / f"{name}_imatrix.gguf"
        sums = {
            n: rng.random((s[0] if len(s) == 3 else 1, s[-1])).astype(np.float32) + 0.1
            for n, s in mats.items()
        }
        write_imatrix_gguf(imatrix, sums, 3, "mixture", 1)
        stored = {
            n: gguf.GGMLQuantizationType.F16.name.lower() if len(s) > 1 else "f32"
            for n, s in shapes.items()
        }
        meta = {n: v for n, v in gguf_metadata(src).items() if not n.startswith("tokenizer")}
        entry = {
            "metadata": meta,
            "tensors": [[n, list(s), stored[n]] for n, s in shapes.items()],
            "results": result["scenarios"][name]["results"] if only else {},
        }
        for ftype in only or FTYPES:
            for key, im in (("plain", None), ("imatrix", imatrix)):
                types, how = run_mixture(tmp, src, ftype, im)
                # one type per tensor, in the order of "tensors" (or llama-quantize's error)
                got = types.get("error") or " ".join(types[n] for n in shapes)
                entry["results"][f"{ftype} {key}"] = got
                print(name, ftype, key, how)
        result["scenarios"][name] = entry
    (HERE / "mixtures.json").write_text(json.dumps(result, indent=1) + "\n")


def gguf_metadata(path: Path) -> dict:
    reader = gguf.GGUFReader(str(path))
    meta = {}
    for field in reader.fields.values():
        if field.name.startswith("GGUF."):
            continue
        value = field.contents()
        meta[field.name] = value.tolist() if hasattr(value, "tolist") else value
    return meta


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if "--mixtures-only" not in sys.argv:
            make_golden(Path(tmp))
        if "--golden-only" not in sys.argv:
            only = [a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--ftypes=")]
            make_mixtures(Path(tmp), only[0] if only else None)


if __name__ == "__main__":
    main()
