"""HDF5 files that another process truncates while they are previewed or exported (issue 18
§2, silently wrong): libhdf5's file driver returns zeros for bytes past the end of the file,
so without a check the tensors after the cut were exported as zeros with exit status 0.
Every read now checks the file's current size against the end of the tensor's stored bytes,
before and after the read, and refuses a dataset some of whose chunks were never written.
The generator cuts the file at random points between and during reads.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from robust_helpers import CONVNET, bounded

from inspector.core.errors import FormatError
from inspector.core.plan import Plan
from inspector.formats.export import export_model
from inspector.formats.registry import open_model

COUNT = 50

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=10: ten times the cases


def legacy_h5(path: Path, count: int = COUNT, chunked: bool = False) -> Path:
    """A legacy weights-only Keras `.h5` of `count` one-tensor layers (values `i + 1`)."""
    names = [f"dense_{i}" for i in range(count)]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        for i, n in enumerate(names):
            g = f.create_group(n)
            g.attrs["weight_names"] = [f"{n}/kernel:0".encode()]
            values = np.full((64, 32), i + 1, np.float32)
            g.create_dataset(f"{n}/kernel:0", data=values, chunks=(16, 32) if chunked else None)
    return path


def _cut_after(path: Path, fraction: float) -> None:
    os.truncate(path, int(path.stat().st_size * fraction))


@pytest.mark.parametrize("chunked", [False, True])
def test_truncated_between_reads_names_the_tensor(tmp_path: Path, chunked: bool) -> None:
    path = legacy_h5(tmp_path / "m.h5", chunked=chunked)
    with open_model(path) as model:
        tensors = list(model)
        for t in tensors[:20]:
            assert np.all(t.load() == float(tensors.index(t) + 1))
        _cut_after(path, 0.6)
        failed = []
        with bounded():
            for t in tensors[20:]:
                try:
                    values = t.load()
                except FormatError as exc:
                    assert str(path) in str(exc) and exc.tensor == t.name
                    assert "shrank" in exc.reason
                    failed.append(t.name)
                else:
                    assert np.all(values == float(tensors.index(t) + 1)), t.name
        assert failed, "no read noticed the cut"
        assert failed == [t.name for t in tensors[-len(failed) :]]


def test_truncated_during_a_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cut lands while libhdf5 reads: the check after the read catches it."""
    path = legacy_h5(tmp_path / "m.h5")
    original = h5py.Dataset.read_direct
    calls = [0]

    def read_and_cut(self: h5py.Dataset, *args: object, **kwargs: object) -> None:
        calls[0] += 1
        if calls[0] == 30:
            _cut_after(path, 0.5)
        original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "read_direct", read_and_cut)
    with open_model(path) as model, pytest.raises(FormatError, match="during the read") as info:
        for t in model:
            t.load()
    assert info.value.tensor == "dense_29/kernel:0"


@pytest.mark.parametrize("fmt,suffix", [("keras", ".h5"), ("npz", ".npz")])
def test_export_of_a_file_cut_midway_fails_and_writes_nothing(
    tmp_path: Path, fmt: str, suffix: str
) -> None:
    """Was: exit 0 and zeros for the 20 tensors after the cut in the written file."""
    path = legacy_h5(tmp_path / "m.h5")
    out = tmp_path / f"out{suffix}"

    def progress(done: int, _total: int, _name: str) -> None:
        if done == 30:
            _cut_after(path, 0.6)

    with open_model(path) as model, pytest.raises(FormatError, match="shrank") as info:
        export_model(model, Plan(default="int8"), fmt, out, progress=progress)
    assert info.value.tensor is not None and info.value.tensor.startswith("dense_")
    assert not out.exists()


def test_truncated_stored_keras_member(tmp_path: Path) -> None:
    """A `.keras` whose weights are read in place from the archive: a short read is an error,
    never bytes libhdf5 pads with zeros."""
    src = CONVNET / "digits_convnet.keras"
    path = tmp_path / "m.keras"
    path.write_bytes(src.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model.weights.h5")
        assert info.compress_type == zipfile.ZIP_STORED
    with open_model(path) as model:
        tensors = list(model)
        _cut_after(path, 0.5)
        with bounded(), pytest.raises(FormatError) as err:
            for t in tensors:
                t.load()
    assert str(path) in str(err.value) and err.value.tensor is not None


@settings(
    max_examples=int(15 * SCALE),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    chunked=st.booleans(),
    after=st.integers(0, COUNT - 1),
    fraction=st.floats(0.0, 1.0),
    during=st.booleans(),
)
def test_random_cuts(
    tmp_path_factory: pytest.TempPathFactory,
    chunked: bool,
    after: int,
    fraction: float,
    during: bool,
) -> None:
    """Oracle: every tensor loads with its own values, or a `FormatError` names the file and
    the tensor; a zero-filled tensor never comes back."""
    path = legacy_h5(tmp_path_factory.mktemp("cut") / "m.h5", chunked=chunked)
    original = h5py.Dataset.read_direct

    def read(self: h5py.Dataset, *args: object, **kwargs: object) -> None:
        if during and self.name.startswith(f"/dense_{after}/"):
            _cut_after(path, fraction)
        original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(h5py.Dataset, "read_direct", read)
        with open_model(path) as model:
            for i, t in enumerate(model):
                if i == after and not during:
                    _cut_after(path, fraction)
                try:
                    values = t.load()
                except FormatError as exc:
                    assert str(path) in str(exc) and exc.tensor == t.name
                    continue
                assert np.all(values == float(i + 1)), f"{t.name} read wrong values"
