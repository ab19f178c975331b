"""FIFOs (named pipes) and other non-regular files given as a model or inside one (issue 18
§2, hangs): reading a FIFO blocks until a writer comes, so sniffing `model.h5` or
`model.json` hung for ever. Every path is now checked to be a regular file (or a folder)
before it is opened: the model itself, `model.json` in a folder, TF.js shards, a safetensors
index and its shards. A watchdog (SIGALRM) turns a hang into a test failure instead of a
stuck suite; the CLI runs in a subprocess with a timeout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from robust_helpers import CONVNET, MLP, REPO

from inspector.core.errors import FormatError
from inspector.formats.registry import open_model, sniff_format

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")

WATCHDOG_S = 10

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=10: ten times the cases


@contextlib.contextmanager
def watchdog(seconds: int = WATCHDOG_S) -> Iterator[None]:
    def hung(_sig: int, _frame: object) -> None:
        raise TimeoutError(f"hung for {seconds} s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _expect_refused(path: Path, names: Path | None = None, reason: str = "FIFO") -> None:
    with watchdog(), pytest.raises(FormatError) as info, open_model(path) as model:
        for t in model:
            t.load()
    assert str(names or path) in str(info.value)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    "name", ["model.h5", "model.json", "m.keras", "w.safetensors", "x.npz", "m.onnx", "noext"]
)
def test_fifo_as_the_model(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    with watchdog():
        assert sniff_format(fifo) is None
    _expect_refused(fifo)


def test_symlink_to_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "model.h5"
    link.symlink_to(fifo)
    _expect_refused(link)


def test_fifo_model_json_in_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "tfjs"
    folder.mkdir()
    os.mkfifo(folder / "model.json")
    with watchdog(), pytest.raises(FormatError) as info:
        open_model(folder)
    assert str(folder) in str(info.value)


def test_fifo_tfjs_shard(tmp_path: Path) -> None:
    folder = tmp_path / "tfjs"
    shutil.copytree(MLP / "tfjs", folder)
    shard = next(folder.glob("*.bin"))
    shard.unlink()
    os.mkfifo(shard)
    _expect_refused(folder / "model.json", names=shard)


def test_fifo_safetensors_index_and_shard(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    os.mkfifo(folder / "model.safetensors.index.json")
    with watchdog(), pytest.raises(FormatError) as info:
        open_model(folder)
    assert "FIFO" in str(info.value)
    (folder / "model.safetensors.index.json").unlink()
    (folder / "model.safetensors.index.json").write_text(
        '{"metadata": {}, "weight_map": {"a": "model-00001-of-00001.safetensors"}}'
    )
    os.mkfifo(folder / "model-00001-of-00001.safetensors")
    with watchdog(), pytest.raises(FormatError):
        open_model(folder)


@pytest.mark.parametrize("name", ["model.h5", "model.json"])
def test_cli_on_a_fifo_exits_2_at_once(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for args in (["info", str(fifo)], ["export", str(fifo), "-o", str(tmp_path / "o.npz")]):
        run = subprocess.run(
            [sys.executable, "-m", "inspector", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and str(fifo) in lines[0] and "FIFO" in lines[0], lines


# --- generator: any file of a model replaced by a FIFO -----------------------------------------

_MODELS = {
    "h5": (MLP / "diabetes_mlp.h5", "diabetes_mlp.h5"),
    "keras": (CONVNET / "digits_convnet.keras", "digits_convnet.keras"),
    "tfjs": (MLP / "tfjs", "model.json"),
    "npz": (MLP / "sample.npz", "sample.npz"),
}


@settings(
    max_examples=int(20 * SCALE),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(which=st.sampled_from(sorted(_MODELS)), pick=st.integers(0, 10), via_folder=st.booleans())
def test_random_fifo_in_a_model(
    tmp_path_factory: pytest.TempPathFactory, which: str, pick: int, via_folder: bool
) -> None:
    """Replace one file of a model (the model file, model.json or a shard) by a FIFO and open
    the model (or its folder): a `FormatError` within the watchdog, never a hang."""
    tmp = tmp_path_factory.mktemp("fifo")
    src, main = _MODELS[which]
    folder = tmp / "m"
    if src.is_dir():
        shutil.copytree(src, folder)
    else:
        folder.mkdir()
        shutil.copyfile(src, folder / main)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    victim = files[pick % len(files)]
    victim.unlink()
    os.mkfifo(victim)
    target = folder if via_folder and which == "tfjs" else folder / main
    with watchdog():
        try:
            with open_model(target) as model:
                for t in model:
                    t.load()
        except FormatError as exc:
            assert str(folder) in str(exc)
        else:
            raise AssertionError(f"{victim.name} as a FIFO opened")
