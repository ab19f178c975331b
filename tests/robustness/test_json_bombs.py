"""JSON headers that cost far more memory or stack than their size suggests (issue 18 §2):
nesting 1,000 deep (a RecursionError in the TF.js export and the JSON encoder), container
bombs (`[{},{},…]`: ~20 bytes of Python objects per input byte), deflated `config.json`
inflating to hundreds of MB, and safetensors headers nested or shaped beyond what the format
has. Each must end in one `FormatError` naming the file, within `bounded()`'s time and
64 MiB traced-memory budget, and through the CLI with exit status 2 and one line. The
generator builds random nestings and bombs around the limits.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from robust_helpers import CONVNET, MLP, bounded, copy_file, copy_tfjs, expect_format_error

from inspector.cli import main as cli_main
from inspector.core.errors import FormatError
from inspector.formats._json import MAX_DEPTH, parse_json
from inspector.formats.registry import open_model

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=10: ten times the cases


def nested(depth: int, leaf: Any = 1) -> Any:
    """`depth` levels of alternating objects and lists around `leaf` (no recursion)."""
    doc = leaf
    for i in range(depth - 1 if depth else 0):
        doc = {"x": doc} if i % 2 else [doc]
    return doc


def _cli_one_line(capsys: pytest.CaptureFixture[str], args: list[str], *want: str) -> str:
    code = cli_main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    for w in want:
        assert w in err[0], err[0]
    return err[0]


# --- nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600, 1000, 100_000])
def test_tfjs_model_json_nested_deep(tmp_path: Path, depth: int) -> None:
    """Refused for its depth, or for its density of lists when they are most of the text."""
    model = copy_tfjs(MLP / "tfjs", tmp_path / "tfjs")
    doc = json.loads(model.read_text())
    doc["modelTopology"]["model_config"]["config"]["deep"] = nested(depth)
    model.write_text(json.dumps(doc) if depth < 900 else _deep_text(doc, depth))
    err = expect_format_error(model)
    assert "nests deeper" in err.reason or "objects and lists" in err.reason


def _deep_text(doc: dict[str, Any], depth: int) -> str:
    """`doc` with a `depth`-deep list spliced in as text (json.dumps itself cannot write it)."""
    del doc["modelTopology"]["model_config"]["config"]["deep"]
    text = json.dumps(doc)
    head, _, tail = text.rpartition('}}, "weightsManifest"')
    assert head, "model.json layout changed"
    return head + ', "deep": ' + "[" * depth + "]" * depth + '}}, "weightsManifest"' + tail


def test_keras_model_config_nested_deep_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: opened, then the TF.js export died in a RecursionError."""
    h5 = copy_file(MLP / "diabetes_mlp.h5", tmp_path)
    with h5py.File(h5, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][-1]["config"]["deep"] = "@"
        text = json.dumps(config).replace('"@"', "[" * 600 + "]" * 600)
        f.attrs["model_config"] = text
    err = expect_format_error(h5)
    assert "nests deeper" in err.reason or "objects and lists" in err.reason
    with h5py.File(h5, "r+") as f:  # the same depth diluted in long names: refused for depth
        f.attrs["model_config"] = text.replace("[" * 600, '["' + "n" * 9000 + '",' + "[" * 599)
    expect_format_error(h5, reason="nests deeper")
    out = tmp_path / "out"
    _cli_one_line(capsys, ["export", str(h5), "-o", str(out), "--format", "tfjs"], str(h5))
    assert not out.exists()


def test_nesting_within_the_limit_exports_to_tfjs(tmp_path: Path) -> None:
    """Depth up to the limit is accepted and every later step (topology translation, deep
    copies, the JSON encoder) handles it without recursion errors."""
    h5 = copy_file(MLP / "diabetes_mlp.h5", tmp_path)
    with h5py.File(h5, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["name"] = nested(MAX_DEPTH - 4, "deep")
        f.attrs["model_config"] = json.dumps(config)
    out = tmp_path / "out"
    assert cli_main(["export", str(h5), "-o", str(out), "--format", "tfjs"]) == 0
    doc = json.loads((out / "model.json").read_text())
    assert "modelTopology" in doc


def test_keras_zip_config_nested_deep(tmp_path: Path) -> None:
    config = (CONVNET / "digits_convnet.keras").read_bytes()
    with zipfile.ZipFile(CONVNET / "digits_convnet.keras") as z:
        config = z.read("config.json").decode()
    deep = "[" * 200 + "]" * 200
    path = _keras_with_config(
        tmp_path, config.replace('"config": {', f'"config": {{"z": {deep}, ', 1), zipfile.ZIP_STORED
    )
    expect_format_error(path, reason="nests deeper")


# --- container bombs and sizes -------------------------------------------------------------


def _bomb(n_bytes: int) -> str:
    return "[" + ",".join(["{}"] * (n_bytes // 3)) + "]"


def test_model_json_container_bomb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = copy_tfjs(MLP / "tfjs", tmp_path / "tfjs")
    doc = json.loads(model.read_text())
    doc["modelTopology"]["model_config"]["config"]["bomb"] = "@"
    model.write_text(json.dumps(doc).replace('"@"', _bomb(4 << 20)))
    expect_format_error(model, reason="objects and lists")
    _cli_one_line(capsys, ["info", str(model)], str(model), "objects and lists")


def test_bare_manifest_container_bomb(tmp_path: Path) -> None:
    path = tmp_path / "weights_manifest.json"
    path.write_text('[{"paths": [], "weights": ' + _bomb(4 << 20) + "}]")
    with bounded(), pytest.raises(FormatError) as info:
        open_model(path)
    assert str(path) in str(info.value)


def test_keras_model_config_bomb(tmp_path: Path) -> None:
    h5 = copy_file(MLP / "diabetes_mlp.h5", tmp_path)
    with h5py.File(h5, "r+") as f:
        f.attrs["model_config"] = '{"class_name": "Model", "config": ' + _bomb(3 << 20) + "}"
    expect_format_error(h5, reason="objects and lists")


def _keras_with_config(tmp_path: Path, config: str, compress: int) -> Path:
    out = tmp_path / "m.keras"
    with (
        zipfile.ZipFile(CONVNET / "digits_convnet.keras") as zin,
        zipfile.ZipFile(out, "w") as zout,
    ):
        for info in zin.infolist():
            data = config.encode() if info.filename == "config.json" else zin.read(info)
            zout.writestr(info.filename, data, compress_type=compress)
    return out


def test_keras_deflated_config_bomb(tmp_path: Path) -> None:
    """60 MB of `[{},…]` deflates to ~60 kB: refused from its text, before parsing."""
    path = _keras_with_config(tmp_path, _bomb(60 << 20), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2 << 20
    expect_format_error(path, reason="declares")


def test_keras_deflated_config_bomb_within_ratio(tmp_path: Path) -> None:
    path = _keras_with_config(tmp_path, _bomb(1 << 20), zipfile.ZIP_DEFLATED)
    expect_format_error(path, reason="objects and lists")


def test_keras_deflated_config_too_large(tmp_path: Path) -> None:
    """A config.json declaring more than 16 MiB is refused before it is read."""
    path = _keras_with_config(tmp_path, " " * (20 << 20) + "{}", zipfile.ZIP_STORED)
    expect_format_error(path, reason="declares")


# --- safetensors headers -----------------------------------------------------------------------


def _safetensors(path: Path, header: str, data: bytes = b"") -> Path:
    raw = header.encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.mark.parametrize(
    "header",
    [
        '{"a": {"dtype": "F32", "shape": [[1]], "data_offsets": [0, 4]}}',
        '{"__metadata__": {"k": {"x": "y"}}}',
        '{"a": ' + "[" * 50_000 + "]" * 50_000 + "}",
        '{"a": ' + _bomb(2 << 20) + "}",
        '{"a": {"dtype": "F32", "shape": [' + ",".join(["[]"] * 200_000) + "]}}",
    ],
    ids=["shape-nested", "metadata-nested", "deep", "container-bomb", "shape-of-lists"],
)
def test_safetensors_header_structure(tmp_path: Path, header: str) -> None:
    path = _safetensors(tmp_path / "m.safetensors", header, b"\0" * 4)
    expect_format_error(path)


def test_safetensors_header_of_many_zero_size_tensors_is_bounded(tmp_path: Path) -> None:
    entries = ",".join(
        f'"t{i}": {{"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}' for i in range(50_000)
    )
    path = _safetensors(tmp_path / "m.safetensors", "{" + entries + "}")
    with bounded(seconds=20, peak=256 << 20), open_model(path) as model:
        assert len(model) == 50_000


def test_real_safetensors_header_passes() -> None:
    """The structure limits leave a real header alone (a dense 10k-tensor one too)."""
    entries = {
        f"model.layers.{i}.weight": {"dtype": "BF16", "shape": [4096, 4096], "data_offsets": [0, 0]}
        for i in range(10_000)
    }
    data = json.dumps({"__metadata__": {"format": "pt"}, **entries}).encode()
    doc = parse_json("x", data, "h", max_depth=3, bytes_per_container=12)
    assert len(doc) == 10_001


# --- generator ---------------------------------------------------------------------------------


@settings(
    max_examples=int(60 * SCALE),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    where=st.sampled_from(["tfjs", "manifest", "h5", "keras", "safetensors"]),
    depth=st.integers(1, 3000),
    width=st.integers(0, 200_000),
    kind=st.sampled_from(["[]", "{}", "[0]", '{"a":1}', "1"]),
)
def test_random_nesting_and_bombs(
    tmp_path_factory: pytest.TempPathFactory, where: str, depth: int, width: int, kind: str
) -> None:
    """Oracle: opening ends within the budget, either cleanly or in a `FormatError` naming
    the file; never another exception (RecursionError, MemoryError)."""
    tmp = tmp_path_factory.mktemp("json")
    blob = "[" * depth + ",".join([kind] * width) + "]" * depth
    if where == "tfjs":
        path = copy_tfjs(MLP / "tfjs", tmp / "tfjs")
        path.write_text(
            path.read_text().replace('"modelTopology": {', f'"modelTopology": {{"z": {blob}, ', 1)
        )
    elif where == "manifest":
        path = tmp / "weights_manifest.json"
        path.write_text(f'[{{"paths": [], "weights": [], "z": {blob}}}]')
    elif where == "h5":
        path = copy_file(MLP / "diabetes_mlp.h5", tmp)
        with h5py.File(path, "r+") as f:
            text = f.attrs["model_config"]
            text = text.decode() if isinstance(text, bytes) else str(text)
            f.attrs["model_config"] = text.replace('"config": {', f'"config": {{"z": {blob}, ', 1)
    elif where == "keras":
        with zipfile.ZipFile(CONVNET / "digits_convnet.keras") as z:
            config = z.read("config.json").decode()
        config = config.replace('"config": {', f'"config": {{"z": {blob}, ', 1)
        path = _keras_with_config(tmp, config, zipfile.ZIP_DEFLATED)
    else:
        entry = f'"dtype": "F32", "shape": {blob}, "data_offsets": [0, 4]'
        header = f'{{"__metadata__": {{"z": "1"}}, "t": {{{entry}}}}}'
        path = _safetensors(tmp / "m.safetensors", header, np.zeros(1, np.float32).tobytes())
    with bounded(seconds=20):
        try:
            with open_model(path) as model:
                for t in model:
                    t.load()
        except FormatError as exc:
            assert str(path) in str(exc)
            assert len(str(exc)) < 1000


def test_safetensors_tensor_count_cap(tmp_path: Path) -> None:
    from inspector.formats.safetensors.reader import MAX_TENSORS

    entry = '{"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}'
    header = "{" + ",".join(f'"t{i}": {entry}' for i in range(MAX_TENSORS + 1)) + "}"
    path = _safetensors(tmp_path / "m.safetensors", header)
    with bounded(seconds=30), pytest.raises(FormatError, match="limit") as info:
        open_model(path)  # traced allocation (tracemalloc) makes the parse ~4x slower here
    assert str(MAX_TENSORS) in info.value.reason and str(path) in str(info.value)
