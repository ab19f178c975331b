"""Reading `.tflite` files the official converter wrote: values, names, layers, quantization."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from tflite_helpers import (
    DATA,
    DEMOS,
    MODES,
    bits,
    fixture,
    reference,
    shared_nmp,
    write_tree,
)

from inspector.formats.tflite.reader import decode, looks_like_tflite

CASES = [(d, m) for d in DEMOS for m in MODES]


def _compare(model, meta, ref) -> int:
    """Assert every constant the interpreter reports decodes bit for bit; returns the count."""
    sources = model.metadata["tflite_sources"]
    count = len(model.metadata["tflite_tree"]["subgraphs"][0]["tensors"])
    by_index = {s.tensor: name for name, s in sources.items() if s.subgraph == 0}
    checked = 0
    for index, info in meta.items():
        if index >= count:  # scratch tensors the interpreter adds for hybrid kernels
            continue
        got = np.asarray(model[by_index[index]].load())
        want = ref[f"values/{index}"]
        assert got.shape == want.shape, info["name"]
        if want.dtype.kind == "f":
            assert np.array_equal(bits(got), bits(want)), info["name"]
        else:
            assert got.dtype == want.dtype and np.array_equal(got, want), info["name"]
        checked += 1
    assert checked == len(model), "every listed tensor is a constant the interpreter knows"
    return checked


@pytest.mark.parametrize(("demo", "mode"), CASES)
def test_decoded_equal_interpreter_bit_for_bit(open_fixture, demo, mode):
    meta, ref = reference(DATA / f"{demo}_{mode}.npz")
    assert _compare(open_fixture(fixture(demo, mode)), meta, ref) > 5


def test_third_party_basic_pitch_bit_for_bit(open_fixture):
    meta, ref = reference(DATA / "nmp_reference.npz")
    assert _compare(open_fixture(shared_nmp()), meta, ref) == 67


def test_sniffing_by_identifier(tmp_path):
    assert looks_like_tflite(fixture("digits_convnet", "float32"))
    other = tmp_path / "x.tflite"
    other.write_bytes(b"\x00" * 64)
    assert not looks_like_tflite(other)


def test_float16_ptq_file_lists_dequantized_weights(open_fixture):
    m = open_fixture(fixture("digits_convnet", "float16"))
    assert all(
        t.info.dtype == "float32" and t.info.stored.scheme == "float16"
        for t in m
        if t.info.is_float
    )
    src = m.metadata["tflite_sources"]
    tree = m.metadata["tflite_tree"]
    for t in m:
        s = src[t.name]
        if t.info.stored is not None:
            assert s.dequantize is not None and s.value != s.tensor
            ops = tree["subgraphs"][0]["operators"]
            assert list(ops[s.dequantize]["outputs"]) == [s.value]


def test_dynamic_range_file_stored_per_channel(open_fixture):
    m = open_fixture(fixture("digits_depthwise", "dynamic"))
    stored = {t.info.layer.split()[0]: t.info.stored for t in m if t.info.stored is not None}
    assert stored["CONV_2D"].scheme == "int8:axis=0"
    assert stored["DEPTHWISE_CONV_2D"].scheme == "int8:axis=3"
    assert stored["CONV_2D"].params["kernel"] == "hybrid"
    for t in m:
        if t.info.stored is not None:
            p = t.info.stored.params
            assert len(p["scale"]) == t.info.shape[p["axis"]] and not any(p["zero_point"])


def test_full_integer_kernels(open_fixture):
    m = open_fixture(fixture("digits_convnet", "int8"))
    kinds = {t.info.stored.params["kernel"] for t in m if t.info.stored is not None}
    assert kinds == {"integer-int8", "integer"}  # int8 weights re-storable, int32 biases kept
    biases = [
        t for t in m if t.info.stored is not None and t.info.stored.params["dtype"] == "int32"
    ]
    assert biases and all(t.info.dtype == "float32" for t in biases)


def test_channel_axes_and_layers(open_fixture):
    m = open_fixture(fixture("digits_depthwise", "float32"))
    axes = {}
    for t in m:
        if len(t.info.shape) == 4:
            axes.setdefault(t.info.layer.split()[0], set()).add(t.info.channel_axis)
    assert axes == {"CONV_2D": {0}, "DEPTHWISE_CONV_2D": {3}}
    fc = [t for t in m if t.info.layer.startswith("FULLY_CONNECTED") and len(t.info.shape) == 2]
    assert fc and all(t.info.channel_axis == 0 for t in fc)
    assert all(";" not in t.info.layer for t in m)


def test_repeated_names_made_unique_deterministically(open_fixture, tmp_path):
    model = open_fixture(fixture("digits_convnet", "float32"))
    tree = copy.deepcopy(model.metadata["tflite_tree"])
    for t in tree["subgraphs"][0]["tensors"]:
        t["name"] = "w"  # every tensor of the subgraph named alike
    out = tmp_path / "same_names.tflite"
    write_tree(model, tree, out)
    names = [t.name for t in open_fixture(out)]
    assert names[:3] == ["w", "w#2", "w#3"] and len(set(names)) == len(names) == 9
    assert names == [t.name for t in open_fixture(out)]


def test_metadata_and_signatures_read(open_fixture):
    m = open_fixture(fixture("digits_convnet", "float32"))
    tree = m.metadata["tflite_tree"]
    assert [s["signature_key"] for s in tree["signature_defs"]] == ["serving_default"]
    assert {e["name"] for e in tree["metadata"]} >= {"min_runtime_version"}


def test_decode_per_channel_int8_and_int4():
    raw = np.array([1, -2, 3, -4, 127, -127], np.int8).view(np.uint8)
    q = {"scale": [0.5, 0.25], "zero_point": [0, 0], "quantized_dimension": 0}
    got = decode(raw, "int8", (2, 3), q)
    assert np.array_equal(got, np.array([[0.5, -1, 1.5], [-1, 31.75, -31.75]], np.float32))
    packed = np.array([0x21, 0xF7], np.uint8)  # low nibble first: 1, 2, 7, -1
    got = decode(packed, "int4", (4,), {"scale": [2.0], "zero_point": [1]})
    assert np.array_equal(got, np.array([0, 2, 12, -4], np.float32))
