"""PyTorch checkpoints read without torch: values equal what torch saved (expected.npz, made
with torch at dev time by data/make_torch_fixtures.py), names, aliases, layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.formats.torch.reader import read_torch

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(DATA / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _values(expected: dict[str, np.ndarray], file: str) -> dict[str, np.ndarray]:
    return {k.split("/", 1)[1]: v for k, v in expected.items() if k.startswith(file + "/")}


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    if want.dtype == np.float32 and got.dtype != np.float32:
        got = got.astype(np.float32)  # bfloat16 loads as itself; torch's .float() is exact
    return got.shape == want.shape and got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_state_dict_values_equal_torch(expected) -> None:
    want = _values(expected, "state_dict.bin")
    with read_torch(DATA / "state_dict.bin") as m:
        names = [t.name for t in m]
        assert m.metadata["torch_aliases"] == {"lm_head.weight": "embed.weight"}
        assert set(names) == set(want) - {"lm_head.weight"}
        assert names[:3] == ["position_ids", "steps", "embed.weight"]  # pickle order
        for t in m:
            assert _same(np.asarray(t.load()), want[t.name]), t.name
        assert m["fc.weight"].info.dtype == "float16"
        assert m["proj.weight"].info.dtype == "bfloat16"
        assert m["steps"].info.shape == ()
        assert m["qkv.weight"].info.channel_axis == 0
        assert m["qkv.bias"].info.channel_axis is None
        shared = m.metadata["torch_shared_storages"]
        assert sorted(next(v for v in shared.values() if "q.weight" in v)) == [
            "k.weight", "q.weight", "qkv.weight", "v.weight"
        ]  # fmt: skip


def test_views_are_strided_not_copied() -> None:
    with read_torch(DATA / "state_dict.bin") as m:
        t = m["fc_t.weight"].load()
        assert t.shape == (6, 8) and not t.flags.c_contiguous
        rows = m["expanded"].load()
        assert rows.shape == (3, 4) and rows.strides == (0, 4)
        assert rows.tolist() == [[0.0, 1.0, 2.0, 3.0]] * 3
        assert not m["embed.weight"].load().flags.writeable


def test_checkpoint_unwraps_model_and_marks_optimizer_state(expected) -> None:
    want = _values(expected, "checkpoint.pt")
    with read_torch(DATA / "checkpoint.pt") as m:
        names = {t.name: t.info.optimizer for t in m}
        assert names["embed.weight"] is False and names["norm.bias"] is False
        assert names["optimizer.state.0.exp_avg"] is True
        assert m.metadata["torch_extra"]["epoch"] == "3"
        assert m.metadata["torch_extra"]["optimizer.param_groups.0.lr"] == "0.01"
        for t in m:
            key = t.name if t.info.optimizer else f"model.{t.name}"
            assert _same(np.asarray(t.load()), want[key]), t.name


def test_deflated_records_read_through_the_zip(expected) -> None:
    with read_torch(DATA / "checkpoint.pt") as a, read_torch(DATA / "deflated.pth") as b:
        assert [t.name for t in a] == [t.name for t in b]
        for t in a:
            assert np.array_equal(t.load(), b[t.name].load())


def test_exotic_dtypes(expected) -> None:
    want = _values(expected, "exotic.pt")
    with read_torch(DATA / "exotic.pt") as m:
        assert {t.name for t in m} == set(want)
        for t in m:
            assert _same(np.asarray(t.load()), want[t.name]), t.name
        assert m["f8a"].info.dtype == "float32"
        assert m["f8a"].info.stored is not None
        assert m["f8a"].info.stored.scheme == "float8_e4m3fn"
        assert m["u16"].info.dtype == "uint16"
        assert m.metadata["torch_extra"]["device"] == "'cpu'"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("legacy.pt", "legacy PyTorch file"),
        ("scripted.pt", "TorchScript archive"),
        ("expected.npz", "expected one <archive>/data.pkl"),
        ("make_torch_fixtures.py", "not a PyTorch zip checkpoint"),
    ],
)
def test_refused_kinds(name: str, reason: str) -> None:
    with pytest.raises(FormatError) as info:
        read_torch(DATA / name)
    assert reason in info.value.reason
    assert str(DATA / name) in str(info.value)
