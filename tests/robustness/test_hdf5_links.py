"""HDF5 links that leave the model's file (issue 18 §2, security).

Every way an HDF5 name can lead into another file must be refused before a value is read:
an external link anywhere on a weight's path, a soft link whose target path crosses an
external link, a layer group (legacy) or a Keras 3 `vars`/layer group that is itself an
external link, external links elsewhere in the file (the Keras writer copies every object),
external raw storage and virtual datasets mapping other files. The attacker's file holds
42.0/7.0 so a leak shows in the exported values. The generator at the end builds random
link graphs (hard, soft, external, dangling, cyclic) over a real weights file and checks the
oracle: opening either refuses with a `FormatError` naming the file, or every tensor loads
with values that came from the model's own file.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from robust_helpers import CONVNET, MLP, copy_file, expect_format_error

from inspector.cli import main as cli_main
from inspector.core.errors import FormatError
from inspector.formats.registry import open_model

MLP_H5 = MLP / "diabetes_mlp.h5"
KERAS = CONVNET / "digits_convnet.keras"
LEAK = 42.0

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=10: ten times the cases


def _attacker(folder: Path) -> Path:
    """A file outside the model's folder whose every value is 42 or 7."""
    outside = folder / "elsewhere"
    outside.mkdir(exist_ok=True)
    path = outside / "attacker.h5"
    with h5py.File(path, "w") as f:
        f["secret"] = np.full((10, 16), LEAK, np.float32)
        layer = f.create_group("grp/dense1")
        layer["kernel:0"] = np.full((10, 16), 7.0, np.float32)
        layer["bias:0"] = np.full((16,), 7.0, np.float32)
        v = f.create_group("vars")
        v["0"] = np.full((3, 3, 1, 8), 7.0, np.float32)
        v["1"] = np.full((8,), 7.0, np.float32)
    return path


@pytest.fixture
def h5(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    return copy_file(MLP_H5, tmp_path / "model")


def _refused(path: Path, reason: str = "another file", tensor: str | None = None) -> None:
    expect_format_error(path, reason=reason, tensor=tensor)


def test_soft_link_to_external_link(h5: Path) -> None:
    evil = _attacker(h5.parent.parent)
    with h5py.File(h5, "r+") as f:
        f["ext"] = h5py.ExternalLink(str(evil), "secret")
        g = f["model_weights/dense1/dense1"]
        del g["kernel:0"]
        g["kernel:0"] = h5py.SoftLink("/ext")
    _refused(h5, "external link", tensor="dense1/kernel:0")


def test_relative_soft_link_chain_to_external(h5: Path) -> None:
    evil = _attacker(h5.parent.parent)
    with h5py.File(h5, "r+") as f:
        g = f["model_weights/dense1/dense1"]
        g["hop2"] = h5py.ExternalLink(str(evil), "secret")
        g["hop1"] = h5py.SoftLink("hop2")
        del g["kernel:0"]
        g["kernel:0"] = h5py.SoftLink("hop1")
    _refused(h5, "external link", tensor="dense1/kernel:0")


def test_layer_group_is_external_link(h5: Path) -> None:
    evil = _attacker(h5.parent.parent)
    with h5py.File(h5, "r+") as f:
        del f["model_weights/dense1"]
        f["model_weights/dense1"] = h5py.ExternalLink(str(evil), "grp")
    err = expect_format_error(h5, reason="external link")
    assert "dense1" in err.reason


def test_weights_root_is_external_link(h5: Path) -> None:
    evil = _attacker(h5.parent.parent)
    with h5py.File(h5, "r+") as f:
        f.copy("model_weights", "moved")
        del f["model_weights"]
        f["model_weights"] = h5py.ExternalLink(str(evil), "grp")
    _refused(h5, "external link")


def test_unused_external_link_is_refused(h5: Path) -> None:
    """A link no weight uses still leaks: the Keras writer copies every object of the file."""
    evil = _attacker(h5.parent.parent)
    with h5py.File(h5, "r+") as f:
        f["model_weights/dense1/extra"] = h5py.ExternalLink(str(evil), "secret")
    _refused(h5, "external link")


def test_unused_virtual_dataset_reading_outside_is_refused(h5: Path) -> None:
    evil = _attacker(h5.parent.parent)
    with h5py.File(h5, "r+") as f:
        layout = h5py.VirtualLayout(shape=(10, 16), dtype="f4")
        layout[:] = h5py.VirtualSource(str(evil), "secret", shape=(10, 16))
        f.create_virtual_dataset("notes", layout)
    _refused(h5, "other files")


def test_unused_external_storage_is_refused(h5: Path) -> None:
    (h5.parent / "raw.bin").write_bytes(np.full(160, LEAK, np.float32).tobytes())
    with h5py.File(h5, "r+") as f:
        f.create_dataset("notes", shape=(160,), dtype="f4", external=[("raw.bin", 0, 640)])
    _refused(h5, "other files")


def test_same_file_virtual_weight_is_refused(h5: Path) -> None:
    """A virtual dataset reads fill values wherever its mapping has holes: never a weight."""
    with h5py.File(h5, "r+") as f:
        g = f["model_weights/dense1/dense1"]
        g.move("kernel:0", "real")
        layout = h5py.VirtualLayout(shape=(10, 16), dtype="f4")
        layout[:5] = h5py.VirtualSource(".", g["real"].name, shape=(10, 16))[:5]
        g.create_virtual_dataset("kernel:0", layout)
    _refused(h5, "virtual dataset", tensor="dense1/kernel:0")


def test_dangling_soft_link_names_tensor(h5: Path) -> None:
    with h5py.File(h5, "r+") as f:
        g = f["model_weights/dense1/dense1"]
        del g["kernel:0"]
        g["kernel:0"] = h5py.SoftLink("/nowhere/at/all")
    _refused(h5, "missing", tensor="dense1/kernel:0")


def test_soft_link_loop(h5: Path) -> None:
    with h5py.File(h5, "r+") as f:
        g = f["model_weights/dense1/dense1"]
        del g["kernel:0"]
        g["kernel:0"] = h5py.SoftLink("a")
        g["a"] = h5py.SoftLink("b")
        g["b"] = h5py.SoftLink("a")
    _refused(h5, "", tensor="dense1/kernel:0")


def test_in_file_soft_link_weight_still_opens(h5: Path) -> None:
    """Soft links that stay in the file are legal HDF5 and load their target's values."""
    with h5py.File(h5, "r+") as f:
        g = f["model_weights/dense1/dense1"]
        want = g["kernel:0"][()]
        g.move("kernel:0", "/stash_kernel")
        g["kernel:0"] = h5py.SoftLink("/stash_kernel")
    with open_model(h5) as model:
        np.testing.assert_array_equal(model["dense1/kernel:0"].load(), want)


def test_groups_nested_beyond_the_limit(h5: Path) -> None:
    """The writer copies the tree recursively: a 2,000-deep chain of groups is refused at
    open (it passed the reader and then blew the stack in export)."""
    with h5py.File(h5, "r+") as f:
        f.create_group("notes/" + "/".join(["g"] * 2000))
    _refused(h5, "nest more than")


# --- Keras 3: .weights.h5 inside .keras zips -------------------------------------------------


def _keras_with(tmp_path: Path, edit, compress: int) -> Path:
    """The demo `.keras` with its weights member edited by `edit(h5py.File, attacker)`."""
    evil = _attacker(tmp_path)
    (tmp_path / "model").mkdir(exist_ok=True)
    out = tmp_path / "model" / "m.keras"
    with zipfile.ZipFile(KERAS) as zin:
        inner = tmp_path / "inner.h5"
        inner.write_bytes(zin.read("model.weights.h5"))
        with h5py.File(inner, "r+") as f:
            edit(f, evil)
        with zipfile.ZipFile(out, "w", compress) as zout:
            for info in zin.infolist():
                data = inner.read_bytes() if info.filename == "model.weights.h5" else None
                zout.writestr(info.filename, data if data is not None else zin.read(info))
    return out


def _vars_external(f: h5py.File, evil: Path) -> None:
    del f["layers/conv2d/vars"]
    f["layers/conv2d/vars"] = h5py.ExternalLink(str(evil), "vars")


def _layer_external(f: h5py.File, evil: Path) -> None:
    del f["layers/conv2d"]
    f["layers/conv2d"] = h5py.ExternalLink(str(evil), "/")


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("edit", [_vars_external, _layer_external])
def test_keras3_group_external_link_is_refused(tmp_path: Path, compress: int, edit) -> None:
    """Was: the `vars` group silently skipped (a layer's weights vanished from the export)."""
    path = _keras_with(tmp_path, edit, compress)
    err = expect_format_error(path, reason="external link")
    assert "layers/conv2d" in err.reason


def test_keras3_weights_h5_vars_external_link(tmp_path: Path) -> None:
    evil = _attacker(tmp_path)
    (tmp_path / "model").mkdir()
    path = tmp_path / "model" / "m.weights.h5"
    with zipfile.ZipFile(KERAS) as zin:
        path.write_bytes(zin.read("model.weights.h5"))
    with h5py.File(path, "r+") as f:
        _vars_external(f, evil)
    _refused(path, "external link")


def test_keras3_layer_hard_linked_to_its_ancestor(tmp_path: Path) -> None:
    """A cycle of hard links (`layers/conv2d/layers/loop` is `layers/conv2d` again): the walk
    would recurse for ever; it stops at the nesting limit with one clear error."""

    def edit(f: h5py.File, _evil: Path) -> None:
        f["layers/conv2d"].create_group("layers")
        f["layers/conv2d/layers/loop"] = f["layers/conv2d"]

    path = _keras_with(tmp_path, edit, zipfile.ZIP_STORED)
    _refused(path, "nest")


def test_keras3_vars_soft_link_loop(tmp_path: Path) -> None:
    def edit(f: h5py.File, _evil: Path) -> None:
        del f["layers/conv2d/vars"]
        f["layers/conv2d/vars"] = h5py.SoftLink("/layers/conv2d/other")
        f["layers/conv2d/other"] = h5py.SoftLink("/layers/conv2d/vars")

    path = _keras_with(tmp_path, edit, zipfile.ZIP_STORED)
    _refused(path, "soft links")


def test_keras3_vars_that_is_a_dataset_is_not_skipped(tmp_path: Path) -> None:
    def edit(f: h5py.File, _evil: Path) -> None:
        del f["layers/conv2d/vars"]
        f["layers/conv2d/vars"] = np.zeros(3, np.float32)

    path = _keras_with(tmp_path, edit, zipfile.ZIP_STORED)
    _refused(path, "not a group")


def test_cli_export_refuses_with_status_2(h5: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = _attacker(h5.parent.parent)
    with h5py.File(h5, "r+") as f:
        f["ext"] = h5py.ExternalLink(str(evil), "secret")
        g = f["model_weights/dense1/dense1"]
        del g["kernel:0"]
        g["kernel:0"] = h5py.SoftLink("/ext")
    out = h5.parent.parent / "out.h5"
    code = cli_main(["export", str(h5), "-o", str(out), "--scheme", "int8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert not out.exists()
    assert len(err) == 1 and "dense1/kernel:0" in err[0] and "external link" in err[0]


def test_writer_refuses_a_file_swapped_after_opening(h5: Path) -> None:
    """The export re-reads the input to copy its tree: a file replaced since the preview
    opened it must be checked again."""
    from inspector.formats.keras.writer import _rewrite

    evil = _attacker(h5.parent.parent)
    with open_model(h5) as model:
        swapped = h5.with_name("swapped.h5")
        shutil.copyfile(h5, swapped)
        with h5py.File(swapped, "r+") as f:
            f["model_weights/dense1/extra"] = h5py.ExternalLink(str(evil), "secret")
        os.replace(swapped, h5)
        buf = io.BytesIO()
        with h5py.File(buf, "w") as dst, pytest.raises(FormatError, match="another file"):
            _rewrite(h5, model, [], dst, {})


# --- generator: random link graphs --------------------------------------------------------

_KINDS = ("hard", "soft_abs", "soft_rel", "external", "dangling", "loop")


@settings(
    max_examples=int(40 * SCALE),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.sampled_from(_KINDS), st.integers(0, 3), st.integers(1, 4)),
        min_size=1,
        max_size=5,
    )
)
def test_random_link_graphs(tmp_path_factory: pytest.TempPathFactory, plan) -> None:
    """Replace weights and layer groups by chains of links of random kinds; the oracle: a
    `FormatError` naming the file, or every tensor loads and no value came from outside."""
    tmp = tmp_path_factory.mktemp("links")
    (tmp / "model").mkdir()
    h5 = copy_file(MLP_H5, tmp / "model")
    evil = _attacker(tmp)
    leaks = False
    with h5py.File(h5, "r+") as f:
        weights = []
        f["model_weights"].visititems(
            lambda n, o: weights.append(o.name) if isinstance(o, h5py.Dataset) else None
        )
        layers = [f"/model_weights/{k}" for k in f["model_weights"]]
        for i, (kind, which, hops) in enumerate(plan):
            targets = weights if which % 2 == 0 else layers
            target = targets[(which + i) % len(targets)]
            try:
                link = f.get(target, getlink=True)
            except (KeyError, RuntimeError):  # its path crosses an earlier case's loop
                continue
            if not isinstance(link, h5py.HardLink):
                continue
            parent, _, leaf = target.rpartition("/")
            stash = f"/stash{i}"
            f.move(target, stash)
            chain = f"{parent}/{leaf}"
            for h in range(hops - 1):  # soft-link hops before the final link
                nxt = f"/hop{i}_{h}"
                f[chain] = h5py.SoftLink(nxt)
                chain = nxt
            if kind == "hard":
                f[chain] = f[stash]
            elif kind == "soft_abs":
                f[chain] = h5py.SoftLink(stash)
            elif kind == "soft_rel":
                beside = f"{chain.rpartition('/')[0]}/stash{i}"
                if beside != stash:
                    f.move(stash, beside)
                f[chain] = h5py.SoftLink(f"stash{i}")
            elif kind == "external":
                path = "secret" if target in weights else "grp/dense1"
                f[chain] = h5py.ExternalLink(str(evil), path)
                leaks = True
            elif kind == "dangling":
                f[chain] = h5py.SoftLink(f"/missing{i}")
            else:
                f[chain] = h5py.SoftLink(chain)
    try:
        with open_model(h5) as model:
            for t in model:
                v = t.load()
                assert not np.any(np.isin(v, (LEAK, 7.0))), f"{t.name} read the attacker's file"
    except FormatError as exc:
        assert str(h5) in str(exc)
        assert len(str(exc)) < 600
        return
    assert not leaks, "an external link opened without an error"


def test_long_hostile_names_keep_one_short_line_with_the_reason(
    h5: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Names from the file are cut in messages; the reason is never cut away."""
    evil = _attacker(h5.parent.parent)
    long = "L" * 10_000
    with h5py.File(h5, "r+") as f:
        f[f"model_weights/dense1/{long}"] = h5py.ExternalLink(str(evil) + "/" + "x" * 5000, "s")
    code = cli_main(["info", str(h5)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "external link" in err[0] and len(err[0]) < 600, err[0][:200]
    with h5py.File(h5, "r+") as f:
        del f[f"model_weights/dense1/{long}"]
        f["model_weights"].attrs["layer_names"] = [long.encode()]
    code = cli_main(["info", str(h5)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "is missing" in err[0] and len(err[0]) < 600, err[0][:200]
