"""The ONNX reader against the protos it was given: names, shapes, dtypes, layers, channel axes,
values (inline, external read by offset, Constant nodes, If branches, DequantizeLinear decoded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.formats.onnx.reader import OnnxSource, looks_like_onnx, read_onnx
from inspector.formats.registry import open_model, sniff_format
from tests.onnx.conftest import convnet_proto, onnx

numpy_helper = onnx.numpy_helper


def test_convnet_tensors_match_the_proto(convnet: Path) -> None:
    proto = onnx.load(str(convnet))
    with read_onnx(convnet) as model:
        assert model.format == "onnx"
        assert [t.name for t in model] == [i.name for i in proto.graph.initializer]
        for init in proto.graph.initializer:
            t = model[init.name]
            expected = numpy_helper.to_array(init)
            assert t.info.shape == expected.shape
            assert t.info.dtype == "float32"
            np.testing.assert_array_equal(t.load(), expected)
        layers = {t.name: (t.info.layer, t.info.channel_axis) for t in model}
        assert layers == {
            "conv1.weight": ("conv1 (Conv)", 0),
            "conv1.bias": ("conv1 (Conv)", None),
            "conv2.weight": ("conv2 (Conv)", 0),
            "fc.weight": ("fc (Gemm)", 0),
            "fc.bias": ("fc (Gemm)", None),
            "head.weight": ("head (MatMul)", 1),
        }
        meta = model.metadata
        assert meta["opset"] == 17
        assert meta["onnx_inputs"] == [{"name": "x", "shape": ["N", 3, 8, 8], "dtype": "float32"}]
        assert meta["onnx_outputs"] == [{"name": "y", "shape": ["N", 5], "dtype": "float32"}]
        assert meta["onnx_sources"]["fc.weight"] == OnnxSource(
            (), "initializer", "fc.weight", ("fc.weight",)
        )


def test_constant_node_and_gemm_transb0(constant_model: Path) -> None:
    with read_onnx(constant_model) as model:
        assert [t.name for t in model] == ["g.weight", "const_w"]
        c = model["const_w"]
        assert (c.info.shape, c.info.layer, c.info.channel_axis) == ((6, 3), "mm (MatMul)", 1)
        assert model["g.weight"].info.channel_axis == 1  # Gemm transB=0: B is (K, N)
        assert model.metadata["onnx_sources"]["const_w"].kind == "constant"
        proto = onnx.load(str(constant_model))
        expected = numpy_helper.to_array(proto.graph.node[0].attribute[0].t)
        np.testing.assert_array_equal(c.load(), expected)


def test_if_branch_weights_are_found(if_model: Path) -> None:
    with read_onnx(if_model) as model:
        assert [t.name for t in model] == [
            "zero",
            "else.weight",
            "then.weight",
        ]  # attributes sorted by name
        then = model["then.weight"]
        assert then.info.layer == "then_mm (MatMul)"
        assert then.info.channel_axis == 1
        src = model.metadata["onnx_sources"]["then.weight"]
        assert src.graph == ((2, "then_branch", -1),)
        assert model.metadata["onnx_sources"]["else.weight"].graph == ((2, "else_branch", -1),)
        assert then.load().shape == (4, 3)


def test_external_data_is_read_not_mapped(external_model: Path) -> None:
    """External bytes are copied by positional reads: a memory map would kill the process with
    SIGBUS when another process truncates the file (tests/robustness/test_onnx_hostile.py)."""
    assert (external_model.parent / "weights.bin").is_file()
    expected = convnet_proto(seed=5)
    with read_onnx(external_model) as model:
        for init in expected.graph.initializer:
            arr = model[init.name].load()
            base = arr
            while getattr(base, "base", None) is not None:
                assert not isinstance(base, np.memmap), init.name
                base = base.base
            np.testing.assert_array_equal(arr, numpy_helper.to_array(init))


def test_external_location_outside_folder_is_refused(tmp_path: Path) -> None:
    proto = convnet_proto()
    init = proto.graph.initializer[0]
    init.ClearField("raw_data")
    init.ClearField("float_data")
    init.data_location = onnx.TensorProto.EXTERNAL
    entry = init.external_data.add()
    entry.key, entry.value = "location", "../secret.bin"
    (tmp_path / "secret.bin").write_bytes(b"\0" * 1000)
    (tmp_path / "m").mkdir()
    path = tmp_path / "m" / "evil.onnx"
    onnx.save(proto, str(path))
    with read_onnx(path) as model, pytest.raises(FormatError, match="leaves the model's folder"):
        model["conv1.weight"].load()


def test_dequantize_linear_weights_are_decoded(dq_model: Path) -> None:
    proto = onnx.load(str(dq_model))
    arrays = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    with read_onnx(dq_model) as model:
        assert [t.name for t in model] == ["mm.w", "fc.w"]
        mm, fc = model["mm.w"], model["fc.w"]
        assert (mm.info.dtype, mm.info.layer, mm.info.channel_axis) == ("float32", "mm (MatMul)", 1)
        assert mm.info.stored.scheme == "int8:axis=1"
        assert mm.info.stored.params["axis"] == 1
        expected = arrays["mm.w_q"].astype(np.float32) * arrays["mm.w_scale"][None, :]
        np.testing.assert_array_equal(mm.load(), expected)
        assert fc.info.stored.scheme == "uint8"
        assert fc.info.stored.params == {
            "dtype": "uint8",
            "scale": pytest.approx(0.02),
            "zero_point": 128,
            "axis": None,
        }
        expected = (arrays["fc.w_q"].astype(np.float32) - 128) * np.float32(0.02)
        np.testing.assert_array_equal(fc.load(), expected)
        assert fc.info.channel_axis == 0
        src = model.metadata["onnx_sources"]["fc.w"]
        assert (src.kind, src.parts) == ("dequantize", ("fc.w_q", "fc.w_scale", "fc.w_zp"))


def test_registry_sniffs_onnx(convnet: Path, tmp_path: Path) -> None:
    assert looks_like_onnx(convnet)
    assert sniff_format(convnet) == "onnx"
    with open_model(convnet) as model:
        assert model.format == "onnx"
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff\xff garbage")
    assert not looks_like_onnx(bad)
    with pytest.raises(FormatError, match=r"bad\.onnx"):
        open_model(bad)


def test_missing_extra_is_a_clear_error(convnet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from inspector.core.errors import InspectorError

    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    with pytest.raises(InspectorError, match=r"pip install 'quant-inspector\[onnx\]'"):
        read_onnx(convnet)
