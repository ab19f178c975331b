"""Keras legacy HDF5 reader on the real fer emotion model and on files made here with h5py."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.formats import open_model, sniff_format


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def test_fer_emotion_full_model(shared_models: Path) -> None:
    path = shared_models / "keras-h5-fer-emotion" / "emotion_model.hdf5"
    assert sniff_format(path) == "keras-h5"
    with h5py.File(path, "r") as f, open_model(path) as model:
        assert model.format == "keras-h5"
        meta = model.metadata
        assert meta["keras_config"] == json.loads(f.attrs["model_config"])
        assert meta["training_config"]["optimizer_config"]["class_name"] == "Adam"
        assert (meta["keras_version"], meta["backend"]) == ("2.0.5", "tensorflow")
        assert meta["weights_root"] == "model_weights"
        mw = f["model_weights"]
        layers = [_s(n) for n in mw.attrs["layer_names"]]
        assert [name for name, _ in meta["h5_layout"]] == layers
        expected = []
        for layer in layers:
            for w in mw[layer].attrs["weight_names"]:
                expected.append((_s(w), layer, mw[layer][_s(w)]))
        opt = f["optimizer_weights"]
        opt_names = [_s(w) for w in opt.attrs["weight_names"]]
        assert meta["optimizer_weight_names"] == opt_names
        tensors = list(model)
        assert len(expected) == 80 and len(tensors) == 80 + len(opt_names)
        for t, (name, layer, ds) in zip(tensors, expected, strict=False):
            assert (t.name, t.info.layer, t.info.shape) == (name, layer, ds.shape)
            assert t.info.dtype == ds.dtype.name and not t.info.optimizer
            assert np.array_equal(t.load(), ds[()])
        assert tensors[0].name == "conv2d_1_1/kernel:0" and tensors[0].info.channel_axis == -1
        for t, name in zip(tensors[80:], opt_names, strict=True):
            assert t.name == f"optimizer_weights/{name}" and t.info.optimizer
            assert np.array_equal(t.load(), opt[name][()])
        assert model.parameter_count == 58_423
    with pytest.raises(FormatError, match="cannot read values"):
        tensors[0].load()  # closed with the model


def _weights_only(path: Path, names: list[str], split: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    values = {}
    with h5py.File(path, "w") as f:
        encoded = np.array([n.encode() for n in names])
        if split:
            f.attrs["layer_names0"] = encoded[: len(names) // 2]
            f.attrs["layer_names1"] = encoded[len(names) // 2 :]
        else:
            f.attrs["layer_names"] = encoded
        f.attrs["keras_version"] = b"3.15.1"
        f.attrs["backend"] = "tensorflow"
        for i, layer in enumerate(names):
            g = f.create_group(layer)
            wn = [f"sequential/{layer}/kernel", f"sequential/{layer}/bias"] if i % 2 else []
            g.attrs["weight_names"] = np.array([w.encode() for w in wn], dtype="S")
            for j, w in enumerate(wn):
                values[w] = rng.standard_normal((3, 4) if j == 0 else (4,)).astype(np.float32)
                g.create_dataset(w, data=values[w].astype(">f4" if i == 1 else "<f4"))
    return values


@pytest.mark.parametrize("split", [False, True])
def test_weights_only_keras3_names_and_split_layer_names(tmp_path: Path, split: bool) -> None:
    names = [f"d{i}" for i in range(6)]
    path = tmp_path / "w.bin"  # suffix does not matter
    values = _weights_only(path, names, split)
    with open_model(path) as m:
        assert m.metadata["weights_root"] == "/"
        assert m.metadata["keras_version"] == "3.15.1"
        assert [n for n, _ in m.metadata["h5_layout"]] == names
        assert "keras_config" not in m.metadata
        assert list(m.tensors) == list(values)
        for t in m:
            assert t.info.layer == t.name.split("/")[1]
            assert t.info.dtype == "float32"
            assert np.array_equal(t.load(), values[t.name])
        assert m.metadata["h5_paths"]["sequential/d1/kernel"] == "/d1/sequential/d1/kernel"


def test_duplicate_weight_names_are_prefixed_with_their_layer(tmp_path: Path) -> None:
    path = tmp_path / "dup.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"a", b"b"])
        for layer in "ab":
            g = f.create_group(layer)
            g.attrs["weight_names"] = np.array([b"kernel:0"])
            g.create_dataset("kernel:0", data=np.ones((2, 2), np.float16))
    with open_model(path) as m:
        assert list(m.tensors) == ["kernel:0", "b/kernel:0"]
        assert m["b/kernel:0"].info.dtype == "float16"


def _base(path: Path) -> h5py.File:
    f = h5py.File(path, "w")
    f.attrs["layer_names"] = np.array([b"d"])
    g = f.create_group("d")
    g.attrs["weight_names"] = np.array([b"d/kernel:0"])
    return f


def test_external_link_rejected(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "other.h5", "w") as o:
        o.create_dataset("x", data=np.ones(3, np.float32))
    with _base(tmp_path / "m.h5") as f:
        f["d"]["d"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/")
    with pytest.raises(FormatError, match="external link") as err:
        open_model(tmp_path / "m.h5")
    assert err.value.tensor == "d/kernel:0"


def test_virtual_dataset_reading_another_file_rejected(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "other.h5", "w") as o:
        o.create_dataset("x", data=np.ones(3, np.float32))
    layout = h5py.VirtualLayout(shape=(3,), dtype=np.float32)
    layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "x", shape=(3,))
    with _base(tmp_path / "m.h5") as f:
        f["d"].create_group("d").create_virtual_dataset("kernel:0", layout)
    with pytest.raises(FormatError, match="virtual dataset"):
        open_model(tmp_path / "m.h5")


def test_truncated_file_and_missing_parts_rejected(tmp_path: Path) -> None:
    with _base(tmp_path / "m.h5") as f:
        f["d"].create_dataset("d/kernel:0", data=np.ones((256, 256), np.float32))
    data = (tmp_path / "m.h5").read_bytes()
    (tmp_path / "t.h5").write_bytes(data[: len(data) - 1000])
    with pytest.raises(FormatError, match="truncated"):
        open_model(tmp_path / "t.h5")
    with _base(tmp_path / "missing.h5"):
        pass
    with pytest.raises(FormatError, match="missing dataset"):
        open_model(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "nolayer.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"gone"])
    with pytest.raises(FormatError, match="'gone' listed in layer_names is missing"):
        open_model(tmp_path / "nolayer.h5")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("x", data=np.ones(2))
    with pytest.raises(FormatError, match="no Keras weights"):
        open_model(tmp_path / "plain.h5")
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(FormatError, match="not a readable HDF5"):
        open_model(tmp_path / "junk.h5")


def test_bad_model_config_and_absurd_dataset_rejected(tmp_path: Path) -> None:
    with _base(tmp_path / "cfg.h5") as f:
        f.attrs["model_config"] = "{not json"
    with pytest.raises(FormatError, match="model_config is not valid JSON"):
        open_model(tmp_path / "cfg.h5")
    with _base(tmp_path / "big.h5") as f:
        f["d"].create_dataset("d/kernel:0", shape=(10**6, 10**6), dtype=np.float32, chunks=(1, 8))
    with pytest.raises(FormatError, match="declares 4000000000000 bytes"):
        open_model(tmp_path / "big.h5")
    with _base(tmp_path / "str.h5") as f:
        f["d"].create_dataset("d/kernel:0", data=np.array([b"a"]))
    with pytest.raises(FormatError, match="unsupported dtype"):
        open_model(tmp_path / "str.h5")
