"""Per-tensor types of llama-quantize's file types against what llama-quantize chose
(data/mixtures.json, made by data/make_golden.py from real runs on llama/falcon-shaped files:
8 and 12 blocks, GQA 4 and 1, tied embeddings, rows needing fallback, 8 experts)."""

from __future__ import annotations

import pytest

from inspector.core.ggml.mixtures import FTYPES, default_type, mixture_types, normalize_ftype
from tests.core.ggml.conftest import mixtures

CASES = [
    (scenario, key)
    for scenario, entry in sorted(mixtures()["scenarios"].items())
    for key in entry["results"]
]


@pytest.mark.parametrize(("scenario", "key"), CASES)
def test_types_equal_llama_quantize(scenario, key):
    entry = mixtures()["scenarios"][scenario]
    ftype, mode = key.split()
    tensors = [(name, tuple(shape), stored) for name, shape, stored in entry["tensors"]]
    if entry["results"][key].startswith("no tensor type fallback"):  # llama-quantize stopped
        with pytest.raises(ValueError, match="defines no fallback for q1_0"):
            mixture_types(ftype, tensors, entry["metadata"], has_imatrix=mode == "imatrix")
        return
    expected = dict(zip([t[0] for t in tensors], entry["results"][key].split(), strict=True))
    ours = mixture_types(ftype, tensors, entry["metadata"], has_imatrix=mode == "imatrix")
    assert list(ours) == list(expected)  # in the caller's order
    diff = {n: (ours[n], t) for n, t in expected.items() if ours[n] != t}
    assert not diff


def test_the_cases_cover_every_file_type_and_the_rules_that_matter():
    keys = {k.split()[0] for _, k in CASES}
    assert set(FTYPES) <= keys
    q4km = mixtures()["scenarios"]["llama8_gqa4"]["results"]["Q4_K_M plain"].split()
    assert {"q4_k", "q6_k"} <= set(q4km)  # use_more_bits on attn_v / ffn_down
    fallback = mixtures()["scenarios"]["llama12_tied_fallback"]["results"]["Q4_K_M plain"]
    assert "q5_0" in fallback.split() or "q8_0" in fallback.split()


def test_missing_metadata_is_inferred_from_the_names():
    tensors = [
        ("token_embd.weight", (64, 256)),
        *[(f"blk.{i}.ffn_down.weight", (256, 512)) for i in range(8)],
        *[(f"blk.{i}.attn_v.weight", (64, 256)) for i in range(8)],
        ("blk.0.attn_norm.weight", (256,), "f32"),
    ]
    types = mixture_types("Q4_K_M", tensors, {})
    more = [types[f"blk.{i}.ffn_down.weight"] for i in range(8)]
    assert more == ["q6_k", "q4_k", "q4_k", "q6_k", "q4_k", "q4_k", "q6_k", "q6_k"]
    assert types["token_embd.weight"] == "q6_k"  # tied embeddings: the output's rule
    assert types["blk.0.attn_norm.weight"] == "f32"


def test_ftype_names():
    assert normalize_ftype("q4_k") == "Q4_K_M"
    assert normalize_ftype("LLAMA_FTYPE_MOSTLY_IQ4_XS") == "IQ4_XS"
    assert default_type("Q3_K_L") == "q3_k" and default_type("IQ2_S") == "iq2_xs"
    with pytest.raises(ValueError, match="unknown llama-quantize type 'Q4_K_X'"):
        normalize_ftype("Q4_K_X")


def test_moe_tensor_without_a_layer_is_refused():
    meta = {"general.architecture": "llama", "llama.block_count": 2, "llama.expert_count": 8}
    with pytest.raises(ValueError, match=r"Failed to determine layer for tensor x\.ffn_down"):
        mixture_types("Q4_K_M", [("x.ffn_down.weight", (8, 256, 512))], meta)
