"""Our encoders against the bytes llama-quantize wrote (data/make_golden.py, llama.cpp 0c1e57098):
every tensor of every output, matched by name, with and without importance matrices (GGUF and
legacy .dat), from F32 and F16 inputs, including the tensors llama-quantize stored in a
fallback type because their rows do not fit the requested one."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.core.ggml.fallback import fallback_type
from inspector.core.ggml.quant import QUANTIZABLE, quantize
from inspector.formats.gguf.imatrix import read_imatrix
from tests.core.ggml.conftest import DATA, input_values, manifest, read_gguf

OUTPUTS = sorted(manifest()["outputs"])
# outputs whose requested type we encode: every tensor of them must be compared
FULL = [o for o in OUTPUTS if o.split(".")[0].removeprefix("f16in_").split("_imatrix")[0]
        .split("_legacy")[0] in QUANTIZABLE]  # fmt: skip


def test_golden_set_covers_the_encoders():
    covered = {t for out in OUTPUTS for t, _, _ in read_gguf(f"out/{out}").values()}
    assert QUANTIZABLE - {"f32"} <= covered
    assert {"q4_k", "q6_k", "iq4_nl"} <= {
        t for out in OUTPUTS if "imatrix" in out for t, _, _ in read_gguf(f"out/{out}").values()
    }


@pytest.mark.parametrize("output", OUTPUTS)
def test_bytes_equal_llama_quantize(output):
    spec = manifest()["outputs"][output]
    imatrix = read_imatrix(DATA / spec["imatrix"]) if spec["imatrix"] else None
    compared = 0
    for name, (type_name, shape, expected) in read_gguf(f"out/{output}").items():
        if type_name not in QUANTIZABLE or len(shape) < 2:
            continue
        x = input_values(spec["input"], name)
        qw = imatrix.for_tensor(name, x.shape[1]) if imatrix else None
        ours = quantize(x, type_name, None if qw is None else qw[0])
        assert ours.tobytes() == expected.tobytes(), f"{output}: {name} ({type_name})"
        compared += 1
    assert compared >= (5 if output in FULL else 1)


@pytest.mark.parametrize("output", FULL)
def test_stored_types_are_the_fallbacks(output):
    requested = {t for t, _, s in read_gguf(f"out/{output}").values() if len(s) > 1}
    ne0_of = {n: s[-1] for n, (_, s, _) in read_gguf(f"out/{output}").items()}
    types = {n: t for n, (t, _, _) in read_gguf(f"out/{output}").items()}
    main = types["blk.0.attn_q.weight"]
    for name, ne0 in ne0_of.items():
        if name.endswith("norm.weight"):
            continue
        assert fallback_type(main, ne0).type.name == types[name], name
    assert main in requested


def test_imatrix_changes_the_bytes():
    plain = read_gguf("out/q4_k.gguf")["blk.0.attn_q.weight"][2]
    weighted = read_gguf("out/q4_k_imatrix.gguf")["blk.0.attn_q.weight"][2]
    legacy = read_gguf("out/q4_k_legacy.gguf")["blk.0.attn_q.weight"][2]
    assert plain.tobytes() != weighted.tobytes() != legacy.tobytes()


def test_f16_input_equals_its_f32_widening():
    x16 = input_values("golden_f16.gguf", "blk.0.ffn_down.weight")
    assert np.array_equal(x16, x16.astype(np.float16).astype(np.float32))
    expected = read_gguf("out/f16in_q4_k.gguf")["blk.0.ffn_down.weight"][2]
    assert quantize(x16, "Q4_K").tobytes() == expected.tobytes()
