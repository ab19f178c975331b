"""safetensors (real silero file, hand-written headers) and npz readers."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.formats import open_model, sniff_format

_NP = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I8": "i1", "U8": "u1",
       "BOOL": "?", "F64": "<f8", "I16": "<i2"}  # fmt: skip


def test_silero_vad(shared_models: Path) -> None:
    path = shared_models / "safetensors-silero-vad-16k" / "silero_vad_16k.safetensors"
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    assert "__metadata__" not in header
    assert sniff_format(path) == "safetensors"
    with open_model(path) as m:
        assert m.metadata["safetensors_metadata"] == {}
        order = sorted(header, key=lambda k: header[k]["data_offsets"][0])
        assert list(m.tensors) == order and len(m) == 15
        for t in m:
            spec = header[t.name]
            assert t.info.shape == tuple(spec["shape"]) and t.info.dtype == "float32"
            assert t.info.layer == t.name.rpartition(".")[0]
            assert t.info.channel_axis == (0 if len(spec["shape"]) >= 2 else None)
            a, b = spec["data_offsets"]
            want = np.frombuffer(data[8 + n + a : 8 + n + b], "<f4").reshape(spec["shape"])
            assert np.array_equal(t.load(), want)


def _st(path: Path, tensors: dict, meta: dict | None = None, raw_header=None) -> Path:
    header, blob = {}, b""
    for name, (code, arr) in tensors.items():
        data = arr.tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [len(blob), len(blob) + len(data)]}  # fmt: skip
        blob += data
    if meta is not None:
        header["__metadata__"] = meta
    text = json.dumps(raw_header if raw_header is not None else header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + blob)
    return path


def test_dtypes_bf16_and_metadata(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    bf = rng.standard_normal((4, 3)).astype(ml_dtypes.bfloat16)
    arrays = {
        "enc.w": ("BF16", bf),
        "enc.h": ("F16", rng.standard_normal(5).astype("<f2")),
        "enc.d": ("F64", rng.standard_normal((2, 2))),
        "i8": ("I8", np.array([-128, 0, 127], "i1")),
        "u8": ("U8", np.array([0, 255], "u1")),
        "i32": ("I32", np.array([[1, -2]], "<i4")),
        "i64": ("I64", np.array([2**40], "<i8")),
        "i16": ("I16", np.array([-7], "<i2")),
        "b": ("BOOL", np.array([True, False])),
        "empty": ("F32", np.zeros((0, 3), "<f4")),
    }
    path = _st(tmp_path / "x.safetensors", arrays, {"format": "pt"})
    with open_model(path) as m:
        assert m.metadata["safetensors_metadata"] == {"format": "pt"}
        assert list(m.tensors) == list(arrays)
        t = m["enc.w"]
        assert (t.info.dtype, t.info.nbytes, t.info.channel_axis) == ("bfloat16", 24, 0)
        assert t.load().dtype == ml_dtypes.bfloat16 and not t.load().flags.writeable
        assert np.array_equal(t.load().view(np.uint16), bf.view(np.uint16))
        for name, (_, arr) in arrays.items():
            assert np.array_equal(m[name].load(), arr), name
            assert m[name].info.shape == arr.shape
        assert m["i64"].info.dtype == "int64" and m["b"].info.dtype == "bool"
        assert m["enc.h"].info.layer == "enc" and m["empty"].info.size == 0


def _header(**changes) -> dict:
    spec = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    spec.update(changes)
    return {"a": spec}


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (_header(data_offsets=[0, 20]), "outside the 16-byte buffer"),
        (_header(data_offsets=[4, 20]), "outside"),
        (_header(shape=[2, 3]), "more than the file holds"),
        (_header(shape=[2, -2]), "negative"),
        (_header(shape=[1, 2]), "span 16 bytes, shape needs 8"),
        (_header(dtype="F8_E9"), "unsupported dtype"),
        (_header(data_offsets=[0, "16"]), "two integers"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, "overlap"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, "unused bytes"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, "no tensor uses"),
        ({"__metadata__": {"k": 1}, **_header()}, "strings to strings"),
        ([1, 2], "JSON object"),
    ],
)  # fmt: skip
def test_bad_headers_rejected(tmp_path: Path, header, reason: str) -> None:
    path = _st(tmp_path / "bad.safetensors", {"a": ("F32", np.zeros(4, "<f4"))}, raw_header=header)
    with pytest.raises(FormatError, match=reason) as err:
        open_model(path)
    assert err.value.path == str(path)


def test_header_length_beyond_file_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", 10**6) + b'{"a": 1}')
    with pytest.raises(FormatError, match="exceeds the file"):
        open_model(path)
    good = _st(tmp_path / "g.safetensors", {"a": ("F32", np.zeros(64, "<f4"))}).read_bytes()
    path.write_bytes(good[:-10])
    with pytest.raises(
        FormatError, match=rf"truncated: {len(good) - 10} bytes, header needs {len(good)}$"
    ):
        open_model(path)
    path.write_bytes(good[:5])
    with pytest.raises(FormatError, match="too short"):
        open_model(path)


def test_npz_lazy_and_typed(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    arrays = {"conv/kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
              "fc.bias": np.arange(5, dtype=">i4"), "flag": np.array(True),
              "f": np.asfortranarray(rng.standard_normal((3, 4)))}  # fmt: skip
    for saver in (np.savez, np.savez_compressed):
        path = tmp_path / f"{saver.__name__}.bin"  # content decides, not the suffix
        with open(path, "wb") as fh:
            saver(fh, **arrays)
        assert sniff_format(path) == "npz"
        with open_model(path) as m:
            assert m.format == "npz" and list(m.tensors) == list(arrays)
            assert m["conv/kernel"].info.layer == "conv" and m["fc.bias"].info.layer == "fc"
            assert m["fc.bias"].info.dtype == "int32" and m["flag"].info.shape == ()
            assert m["conv/kernel"].info.channel_axis is None
            for name, arr in arrays.items():
                assert np.array_equal(m[name].load(), arr)
            assert m.metadata["npz_members"] == [f"{k}.npy" for k in arrays]


def test_npz_object_array_and_bad_members_rejected(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, ok=np.ones(2), obj=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(FormatError, match="pickle") as err:
        open_model(path)
    assert err.value.tensor == "obj"
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("x.npy", b"not an npy file at all")
    with pytest.raises(FormatError, match=r"not a valid \.npy member"):
        open_model(bad)
    short = tmp_path / "short.npz"
    with zipfile.ZipFile(short, "w") as zf, zf.open("x.npy", "w") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
        )
    with pytest.raises(FormatError, match="needs 4000000000000 bytes"):
        open_model(short)
    (tmp_path / "x.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(FormatError, match="not a readable npz"):
        open_model(tmp_path / "x.npz")


@pytest.mark.parametrize(
    ("spec", "fmt"),
    [("float16", "pt"), ("bfloat16", "pt"), ("float32", "pt"), ("uint8", "quant_inspector")],
)
def test_export_format_key_says_who_can_load_it(tmp_path: Path, spec: str, fmt: str) -> None:
    """transformers loads a safetensors file only if `__metadata__["format"]` is "pt" (or tf,
    flax, mlx): a float export under the input's names is such a state dict (the int64 buffer
    is stored as it is), codes with parameter arrays are not."""
    from inspector.core.plan import Plan
    from inspector.formats.export import export_model

    arrays = {
        "w": ("F32", np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)),
        "ids": ("I64", np.arange(4, dtype=np.int64)),
    }
    src = _st(tmp_path / "in.safetensors", arrays, {"format": "pt"})
    out = tmp_path / "out.safetensors"
    with open_model(src) as model:
        export_model(model, Plan().with_default(spec), "safetensors", out)
    with open_model(out) as written:
        assert written.metadata["safetensors_metadata"]["format"] == fmt
        assert {"ids", "w"} <= {t.name for t in written}
