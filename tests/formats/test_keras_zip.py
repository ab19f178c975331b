"""Keras 3 `.keras` zips and `.weights.h5` files built here with zipfile + h5py."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.formats import open_model, sniff_format

CONFIG = {
    "class_name": "Functional",
    "config": {
        "name": "net",
        "layers": [
            {"class_name": "InputLayer", "config": {"name": "inp"}, "name": "inp"},
            {"class_name": "Conv2D", "config": {"name": "stem"}, "name": "stem"},
            {"class_name": "BatchNormalization", "config": {"name": "bn"}, "name": "bn"},
            {
                "class_name": "Sequential",
                "config": {
                    "name": "head",
                    "layers": [
                        {"class_name": "InputLayer", "config": {"name": "hin"}},
                        {"class_name": "Dense", "config": {"name": "fc"}},
                    ],
                },
                "name": "head",
            },
            {"class_name": "Conv2D", "config": {"name": "conv_b"}, "name": "conv_b"},
        ],
    },
}
SHAPES = {
    "layers/conv2d/vars": [(3, 3, 1, 4), (4,)],
    "layers/batch_normalization/vars": [(4,)] * 4,
    "layers/sequential/layers/dense/vars": [(4, 2)],
    "layers/conv2d_1/vars": [(1, 1, 4, 4), (4,)],
    "optimizer/vars": [(), (3, 3, 1, 4)],
}
EXPECTED = [
    "stem/kernel", "stem/bias", "bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance",
    "head/fc/kernel", "conv_b/kernel", "conv_b/bias", "optimizer/vars/0", "optimizer/vars/1",
]  # fmt: skip


def _weights_h5(with_names: bool) -> tuple[bytes, list[np.ndarray]]:
    buf = io.BytesIO()
    values = []
    rng = np.random.default_rng(2)
    with h5py.File(buf, "w") as f:
        f.create_group("layers/input_layer/vars")
        f.create_group("layers/sequential/vars")
        f.create_group("vars").attrs["name"] = "net"
        for group, shapes in SHAPES.items():
            g = f.require_group(group)
            for i, shape in enumerate(shapes):
                values.append(rng.standard_normal(shape).astype(np.float32))
                g.create_dataset(str(i), data=values[-1])
        if with_names:
            for path, name in [("layers/conv2d", "stem"), ("layers/batch_normalization", "bn"),
                               ("layers/sequential", "head"),
                               ("layers/sequential/layers/dense", "fc"),
                               ("layers/conv2d_1", "conv_b")]:  # fmt: skip
                f[path]["vars"].attrs["name"] = name
    return buf.getvalue(), values


def _keras_zip(path: Path, weights: bytes, deflate: bool = False, **extra: bytes) -> Path:
    comp = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=comp) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", json.dumps(CONFIG))
        zf.writestr("model.weights.h5", weights)
        for name, data in extra.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(("with_names", "deflate"), [(True, False), (False, False), (False, True)])
def test_keras_zip_user_names_from_attrs_or_config(
    tmp_path: Path, with_names: bool, deflate: bool
) -> None:
    data, values = _weights_h5(with_names)
    path = _keras_zip(tmp_path / "m.keras", data, deflate)
    assert sniff_format(path) == "keras"
    with open_model(path) as m:
        assert m.format == "keras"
        assert list(m.tensors) == EXPECTED
        for t, v in zip(m, values, strict=True):
            assert t.info.shape == v.shape and t.info.dtype == "float32"
            assert np.array_equal(t.load(), v)
        assert [t.info.optimizer for t in m] == [False] * 9 + [True] * 2
        assert m["head/fc/kernel"].info.layer == "head/fc"
        meta = m.metadata
        assert meta["keras_config"] == CONFIG and meta["keras_version"] == "3.15.1"
        assert meta["keras_zip_members"] == ["metadata.json", "config.json", "model.weights.h5"]
        assert meta["h5_paths"]["conv_b/kernel"] == "/layers/conv2d_1/vars/0"
        assert meta["keras3_layer_names"]["/layers/sequential/layers/dense"] == "fc"


def test_weights_h5_without_config_uses_file_names(tmp_path: Path) -> None:
    data, _ = _weights_h5(False)
    path = tmp_path / "m.weights.h5"
    path.write_bytes(data)
    with open_model(path) as m:
        assert m.format == "keras-h5"
        assert m.metadata["keras_weights_layout"] == "keras3"
        assert list(m.tensors)[:3] == ["batch_normalization/gamma", "batch_normalization/beta",
                                       "batch_normalization/moving_mean"]  # fmt: skip
        assert "conv2d_1/kernel" in m.tensors and "sequential/dense/kernel" in m.tensors
        with_names, _ = _weights_h5(True)
    path.write_bytes(with_names)
    with open_model(path) as m:
        assert set(m.tensors) == set(EXPECTED)


@pytest.mark.parametrize(
    ("member", "reason"),
    [("../evil.txt", "leaves the archive"), ("/abs.txt", "leaves the archive")],
)
def test_traversal_members_rejected(tmp_path: Path, member: str, reason: str) -> None:
    data, _ = _weights_h5(True)
    path = _keras_zip(tmp_path / "m.keras", data, **{member: b"x"})
    with pytest.raises(FormatError, match=reason):
        open_model(path)


def test_zip_bomb_and_missing_members_rejected(tmp_path: Path) -> None:
    data, _ = _weights_h5(True)
    path = _keras_zip(tmp_path / "m.keras", data, deflate=True)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(300 * (1 << 20)))
    with pytest.raises(FormatError, match="declares 314572800 bytes"):
        open_model(path)
    with zipfile.ZipFile(tmp_path / "n.keras", "w") as zf:
        zf.writestr("model.weights.h5", data)
    with pytest.raises(FormatError, match=r"no config\.json"):
        open_model(tmp_path / "n.keras")
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(FormatError):
        open_model(tmp_path / "bad.keras")
    cut = path.read_bytes()[:5000]
    (tmp_path / "cut.keras").write_bytes(cut)
    with pytest.raises(FormatError):
        open_model(tmp_path / "cut.keras")
