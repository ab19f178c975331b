"""Structure fuzzing of npz archives: hypothesis builds archives member by member — `.npy`
headers declaring any shape (negative, 10^12, 2^62, 40 dims) and dtype (numbers, strings,
objects, structured, big-endian), payloads that do or do not match, stored or deflated, Fortran
order, directories, duplicate names, 1,500 extra members — and sometimes forges a member's
declared uncompressed size in both zip headers.

Oracle, for the model reader and for evaluation data alike: it works (every array of its
declared shape and dtype) or raises a `FormatError` naming the file; within 5 s and 64 MiB of
traced allocations per case. Derandomized; `NPZ_FUZZ_EXAMPLES` runs more.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from robust_helpers import bounded

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from inspector.core.errors import FormatError  # noqa: E402
from inspector.engine.eval_data import load_data  # noqa: E402
from inspector.formats.npz.reader import read_npz  # noqa: E402

EXAMPLES = int(os.environ.get("NPZ_FUZZ_EXAMPLES", "200"))

SANE = st.lists(st.integers(0, 6), max_size=3).map(tuple)
HOSTILE = st.lists(
    st.sampled_from([-1, 0, 1, 7, 10**6, 10**12, 2**31, 2**62, 2**63 - 1]), max_size=4
).map(tuple)
SHAPES = st.sampled_from(["sane"] * 6 + ["hostile", "long"]).flatmap(
    lambda k: {"sane": SANE, "hostile": HOSTILE, "long": st.just((1,) * 40)}[k]
)
DESCRS = st.sampled_from(
    ["<f4"] * 6 + ["<f2", ">f8", "|u1", "<i8", "|b1", "<c8", "<U3", "|O", "|V4", "<M8[s]"]
)
NAMES = st.sampled_from(["x", "y", "x0", "x1", "w", "a/b", ".hidden", "dir/", ""])


def _header(shape: tuple[int, ...], descr: str, fortran: bool) -> bytes:
    buf = io.BytesIO()
    d = {"descr": descr, "fortran_order": fortran, "shape": shape}
    np.lib.format.write_array_header_2_0(buf, d) if len(repr(d)) > 60000 else (
        np.lib.format.write_array_header_1_0(buf, d)
    )
    return buf.getvalue()


@st.composite
def members(draw: Any) -> tuple[str, bytes, bool]:
    name = draw(NAMES)
    shape = draw(SHAPES)
    descr = draw(DESCRS)
    fortran = draw(st.sampled_from([False] * 3 + [True]))
    try:
        itemsize = np.dtype(descr).itemsize
    except TypeError:
        itemsize = 4
    count = int(np.prod([max(d, 0) for d in shape], dtype=object)) if shape else 1
    exact = count * itemsize if count * itemsize < 4096 else 64
    size = draw(st.sampled_from([exact] * 5 + [max(exact - 1, 0), exact + 4, 0]))
    payload = draw(st.sampled_from(["zeros", "random"]))
    data = bytes(size) if payload == "zeros" else draw(st.binary(min_size=size, max_size=size))
    head = (
        _header(shape, descr, fortran)
        if draw(st.sampled_from([True] * 7 + [False]))
        else b"\x93NUMPY"
    )
    return (
        (name if name.endswith("/") or not name else name + ".npy"),
        head + data,
        draw(st.booleans()),
    )


Recipe = tuple[list[tuple[str, bytes, bool]], bool, int | None]
"""(members as (name, bytes, deflated), add 1,500 small members, forged size or None): small
enough for hypothesis to print; `build` makes the archive."""


@st.composite
def archives(draw: Any) -> Recipe:
    items = draw(st.lists(members(), min_size=1, max_size=6))
    many = draw(st.sampled_from([False] * 11 + [True]))
    forged = draw(st.sampled_from([None] * 5 + [0, 1, 2**31, 2**32 - 1, 10**9]))
    return items, many, forged


def build(recipe: Recipe) -> bytes:
    items, many, forged = recipe
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are the point
        for name, data, deflate in items:
            kind = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            zf.writestr(zipfile.ZipInfo(name or "unnamed"), data, compress_type=kind)
        if many:
            small = _header((1,), "<f4", False) + bytes(4)
            for i in range(1500):
                zf.writestr(f"m{i}.npy", small)
    raw = bytearray(buf.getvalue())
    if forged is not None:
        _forge_size(raw, forged)
    return bytes(raw)


def _forge_size(raw: bytearray, value: int) -> None:
    """Set the first member's uncompressed size in its local and central headers."""
    if raw[:4] == b"PK\x03\x04":
        raw[22:26] = struct.pack("<I", value)
    central = raw.find(b"PK\x01\x02")
    if central >= 0:
        raw[central + 24 : central + 28] = struct.pack("<I", value)


def _check_model(path: Path) -> str:
    try:
        with bounded(), read_npz(path) as model:
            for t in model:
                arr = t.load()
                assert arr.shape == t.info.shape and arr.dtype.name == t.info.dtype, t.name
    except FormatError as exc:
        assert str(path) in str(exc), exc
        return "refused"
    return "opened"


def _check_data(path: Path) -> None:
    try:
        with bounded():
            data = load_data(path, [(None, 3)])
        assert data.inputs[0].ndim == 2 and data.inputs[0].shape[1] == 3
    except FormatError as exc:
        assert str(path) in str(exc), exc


SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@SETTINGS
@given(recipe=archives())
def test_npz_structures(tmp_path_factory: pytest.TempPathFactory, recipe: Recipe) -> None:
    path = tmp_path_factory.mktemp("npz") / "m.npz"
    path.write_bytes(build(recipe))
    _check_model(path)
    _check_data(path)


def test_the_generator_reaches_both_outcomes(tmp_path: Path) -> None:
    outcomes = set()

    @settings(
        max_examples=60,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(recipe=archives())
    def run(recipe: Recipe) -> None:
        path = tmp_path / "m.npz"
        path.write_bytes(build(recipe))
        outcomes.add(_check_model(path))

    run()
    assert outcomes == {"opened", "refused"}
