"""Hostile Keras files: the real demo `.h5`/`.keras` and the third-party fer `.hdf5`, copied and
damaged (truncation, external links, virtual datasets, external raw storage, absurd declared
sizes, duplicates, zip traversal and zip bombs)."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from robust_helpers import CONVNET, MLP, copy_file, expect_format_error, open_and_load, shared

MLP_H5 = MLP / "diabetes_mlp.h5"
KERNEL = "model_weights/dense1/dense1/kernel:0"  # dataset of tensor "dense1/kernel:0"
KERAS = CONVNET / "digits_convnet.keras"


@pytest.fixture
def h5(tmp_path: Path) -> Path:
    return copy_file(MLP_H5, tmp_path)


def _replace(path: Path, dataset: str, make) -> None:
    with h5py.File(path, "r+") as f:
        parent, _, leaf = dataset.rpartition("/")
        del f[parent][leaf]
        make(f[parent], leaf)


def test_untouched_copy_opens(h5: Path) -> None:
    open_and_load(h5)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.3, 0.6, 0.95, 0.999])
def test_truncated_h5(h5: Path, fraction: float) -> None:
    data = h5.read_bytes()
    h5.write_bytes(data[: int(len(data) * fraction)])
    expect_format_error(h5)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_third_party_hdf5(tmp_path: Path, fraction: float) -> None:
    src = shared("keras-h5-fer-emotion/emotion_model.hdf5")
    dst = tmp_path / src.name
    dst.write_bytes(src.read_bytes()[: int(src.stat().st_size * fraction)])
    expect_format_error(dst)


def test_external_link_outside(h5: Path) -> None:
    outside = h5.parent / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["secret"] = np.arange(160, dtype=np.float32).reshape(10, 16)
    _replace(h5, KERNEL, lambda g, leaf: g.__setitem__(leaf, h5py.ExternalLink(outside, "secret")))
    expect_format_error(h5, tensor="dense1/kernel:0", reason="external link")


def test_external_link_to_missing_file(h5: Path) -> None:
    link = h5py.ExternalLink("/nonexistent/x.h5", "secret")
    _replace(h5, KERNEL, lambda g, leaf: g.__setitem__(leaf, link))
    expect_format_error(h5, tensor="dense1/kernel:0", reason="external link")


def test_virtual_dataset_outside(h5: Path) -> None:
    outside = h5.parent / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["secret"] = np.arange(160, dtype=np.float32).reshape(10, 16)

    def make(group: h5py.Group, leaf: str) -> None:
        layout = h5py.VirtualLayout(shape=(10, 16), dtype="f4")
        layout[:] = h5py.VirtualSource(str(outside), "secret", shape=(10, 16))
        group.create_virtual_dataset(leaf, layout)

    _replace(h5, KERNEL, make)
    expect_format_error(h5, tensor="dense1/kernel:0", reason="virtual dataset")


def test_external_raw_storage(h5: Path) -> None:
    raw = h5.parent / "raw.bin"
    raw.write_bytes(np.ones(160, np.float32).tobytes())

    def make(group: h5py.Group, leaf: str) -> None:
        group.create_dataset(leaf, shape=(10, 16), dtype="f4", external=[(str(raw), 0, 640)])

    _replace(h5, KERNEL, make)
    expect_format_error(h5, tensor="dense1/kernel:0", reason="external files")


def test_soft_link_cycle(h5: Path) -> None:
    _replace(h5, KERNEL, lambda g, leaf: g.__setitem__(leaf, h5py.SoftLink(f"/{KERNEL}")))
    expect_format_error(h5, tensor="dense1/kernel:0")


def test_absurd_declared_size(h5: Path) -> None:
    """A chunked dataset declaring 10^12 float32 values while storing none."""

    def make(group: h5py.Group, leaf: str) -> None:
        group.create_dataset(leaf, shape=(10**6, 10**6), dtype="f4", chunks=(1, 1024))

    _replace(h5, KERNEL, make)
    expect_format_error(h5, tensor="dense1/kernel:0", reason="declares")


def test_fill_value_only_dataset_is_refused(h5: Path) -> None:
    """A chunked dataset with no chunks written would load as its fill value (zeros): Keras
    writes every value, so unwritten chunks mean lost data and are refused when read."""

    def make(group: h5py.Group, leaf: str) -> None:
        group.create_dataset(leaf, shape=(10, 16), dtype="f4", chunks=(2, 16))

    _replace(h5, KERNEL, make)
    expect_format_error(h5, tensor="dense1/kernel:0", reason="fill value")


@pytest.mark.parametrize("dtype", ["S8", [("a", "f4"), ("b", "i4")], h5py.string_dtype()])
def test_unknown_dtype(h5: Path, dtype: object) -> None:
    def make(group: h5py.Group, leaf: str) -> None:
        group.create_dataset(leaf, shape=(10, 16), dtype=dtype)

    _replace(h5, KERNEL, make)
    expect_format_error(h5, tensor="dense1/kernel:0", reason="unsupported dtype")


def test_duplicate_weight_names(h5: Path) -> None:
    with h5py.File(h5, "r+") as f:
        g = f["model_weights/dense1"]
        first = g.attrs["weight_names"][0]
        first = first.decode() if isinstance(first, bytes) else str(first)
        g.attrs["weight_names"] = [first.encode(), first.encode()]
    expect_format_error(h5, tensor=f"dense1/{first}", reason="duplicate")


def test_layer_listed_but_missing(h5: Path) -> None:
    with h5py.File(h5, "r+") as f:
        del f["model_weights/dense2"]
    expect_format_error(h5, reason="missing")


def test_weight_name_not_a_dataset(h5: Path) -> None:
    with h5py.File(h5, "r+") as f:
        f["model_weights/dense1"].attrs["weight_names"] = [b"dense1"]
    expect_format_error(h5, reason="not a dataset")


def test_model_config_not_json(h5: Path) -> None:
    with h5py.File(h5, "r+") as f:
        f.attrs["model_config"] = b'{"class_name": '
    expect_format_error(h5, reason="not valid JSON")


# ---- .keras zips ---------------------------------------------------------------------------


def _members(src: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(src) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _write_zip(dst: Path, members: dict[str, bytes], deflate: bool = False) -> Path:
    mode = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(dst, "w", mode) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return dst


@pytest.fixture
def keras(tmp_path: Path) -> Path:
    return copy_file(KERAS, tmp_path)


def test_keras_untouched_copy_opens(keras: Path) -> None:
    open_and_load(keras)


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.04, 0.5, 0.9, 0.9995])
def test_truncated_keras(keras: Path, fraction: float) -> None:
    data = keras.read_bytes()
    keras.write_bytes(data[: int(len(data) * fraction)])
    expect_format_error(keras)


@pytest.mark.parametrize("bad", ["../evil.txt", "/etc/evil", "a/../../evil", "C:\\evil"])
def test_keras_path_traversal(keras: Path, bad: str) -> None:
    members = _members(KERAS)
    members[bad] = b"owned"
    _write_zip(keras, members)
    expect_format_error(keras, reason="leaves the archive")
    assert not (keras.parent.parent / "evil.txt").exists()


def test_keras_deflated_members_open(keras: Path) -> None:
    """A .keras zip whose members are deflated (legal, just unusual) still opens."""
    _write_zip(keras, _members(KERAS), deflate=True)
    open_and_load(keras)


def _forge_sizes(path: Path, member: str, size: int) -> None:
    """Rewrite the declared uncompressed size of `member` in the central directory and local
    header (a zip bomb's lie about its size)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    local = info.header_offset
    struct.pack_into("<I", data, local + 22, size)
    cd = data.rfind(b"PK\x01\x02" + data[local + 4 : local + 6])
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        (name_len,) = struct.unpack_from("<H", data, pos + 28)
        if data[pos + 46 : pos + 46 + name_len].decode() == member:
            cd = pos
            break
        pos = data.find(b"PK\x01\x02", pos + 4)
    struct.pack_into("<I", data, cd + 24, size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
def test_keras_zip_bomb_declared_size(keras: Path, member: str) -> None:
    _write_zip(keras, _members(KERAS), deflate=True)
    _forge_sizes(keras, member, 0xFFFF_FFF0)
    expect_format_error(keras)


def test_keras_real_zip_bomb(keras: Path) -> None:
    """A genuinely highly compressed member: 256 MiB of spaces deflated to ~250 KiB."""
    members = _members(KERAS)
    with zipfile.ZipFile(keras, "w") as zf:
        for name, data in members.items():
            if name == "config.json":
                data = b" " * (256 << 20)
                zf.writestr(name, data, zipfile.ZIP_DEFLATED, compresslevel=6)
            else:
                zf.writestr(name, data)
        del data
    expect_format_error(keras, reason="declares")


def test_keras_stored_member_size_beyond_file(keras: Path) -> None:
    members = _members(KERAS)
    _write_zip(keras, members)
    data = bytearray(keras.read_bytes())
    with zipfile.ZipFile(keras) as zf:
        info = zf.getinfo("model.weights.h5")
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        (name_len,) = struct.unpack_from("<H", data, pos + 28)
        if data[pos + 46 : pos + 46 + name_len] == b"model.weights.h5":
            struct.pack_into("<II", data, pos + 20, 10**9, 10**9)
        pos = data.find(b"PK\x01\x02", pos + 4)
    struct.pack_into("<II", data, info.header_offset + 18, 10**9, 10**9)
    keras.write_bytes(bytes(data))
    expect_format_error(keras)


def test_keras_duplicate_member(keras: Path) -> None:
    members = _members(KERAS)
    with zipfile.ZipFile(keras, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("config.json", members["config.json"])
    expect_format_error(keras, reason="twice")


def test_keras_without_weights(keras: Path) -> None:
    members = _members(KERAS)
    del members["model.weights.h5"]
    _write_zip(keras, members)
    expect_format_error(keras, reason="model.weights.h5")


@pytest.mark.parametrize("config", [b"[]", b"{", b"\xff\xfe", b'{"a": ' * 50_000])
def test_keras_bad_config(keras: Path, config: bytes) -> None:
    members = _members(KERAS)
    members["config.json"] = config
    _write_zip(keras, members)
    expect_format_error(keras, reason="config.json")


def test_keras_inner_h5_external_link(keras: Path, tmp_path: Path) -> None:
    members = _members(KERAS)
    inner = tmp_path / "inner.h5"
    inner.write_bytes(members["model.weights.h5"])
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["secret"] = np.zeros((3, 3, 1, 8), np.float32)
    _replace(inner, "layers/conv2d/vars/0", lambda g, leaf: g.__setitem__(
        leaf, h5py.ExternalLink(str(outside), "secret")))  # fmt: skip
    members["model.weights.h5"] = inner.read_bytes()
    _write_zip(keras, members)
    err = expect_format_error(keras, reason="external link")
    assert err.tensor is not None


def test_keras_inner_h5_truncated(keras: Path) -> None:
    members = _members(KERAS)
    members["model.weights.h5"] = members["model.weights.h5"][:40_000]
    _write_zip(keras, members)
    expect_format_error(keras)
