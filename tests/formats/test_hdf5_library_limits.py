"""libhdf5 itself can crash or loop forever on deliberately corrupted files; the readers isolate it.

Both files here are the diabetes demo `.h5` with a few bytes flipped (found by fuzzing the
reader); libhdf5 segfaults / spins inside H5Aread of a variable-length string attribute whose
global-heap reference is corrupt, before any of our checks can run.
`inspector.formats.keras.h5probe`
walks the metadata in a child process first, so the reader raises a clean `FormatError`. The
reader itself runs in a subprocess here too, so a regression fails the test instead of killing
pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from inspector.core.errors import FormatError
from inspector.formats import open_model
from inspector.formats.keras import h5probe
from inspector.formats.keras.h5probe import ENV_DISABLE, ENV_TIMEOUT, probe_hdf5, walk

DATA = Path(__file__).resolve().parent / "data"
RES = Path(__file__).resolve().parents[2] / "resources"
READ = (
    "import sys\n"
    "from inspector.core.errors import FormatError\n"
    "from inspector.formats import open_model\n"
    "try:\n"
    "    open_model(sys.argv[1]).close()\n"
    "except FormatError as exc:\n"
    "    print(exc)\n"
    "    sys.exit(0)\n"
    "sys.exit(3)\n"
)
CASES = [("h5_vlen_attr_segfault.h5", "crashed (SIGSEGV)"), ("h5_vlen_attr_hang.h5", "hung")]


def _read_in_child(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-c", READ, str(path)],
            timeout=30,
            capture_output=True,
            text=True,
            env={**os.environ, ENV_TIMEOUT: "3", **env},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("reader hung")


@pytest.mark.parametrize(("name", "what"), CASES)
def test_corrupt_vlen_attribute_gives_format_error(name: str, what: str) -> None:
    proc = _read_in_child(DATA / name)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert f"HDF5 library {what}" in proc.stdout and name in proc.stdout


def test_corrupt_weights_member_of_a_keras_zip_gives_format_error(tmp_path: Path) -> None:
    src = RES / "digits_convnet" / "digits_convnet.keras"
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith(".weights.h5"):
                data = (DATA / "h5_vlen_attr_segfault.h5").read_bytes()
            zout.writestr(info, data)
    proc = _read_in_child(bad)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "HDF5 library crashed" in proc.stdout and "model.weights.h5" in proc.stdout


def test_probe_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DISABLE, "0")
    monkeypatch.setattr(h5probe._SERVER, "probe", lambda *a, **k: pytest.fail("probe ran"))
    probe_hdf5(DATA / "h5_vlen_attr_segfault.h5")


def test_the_probe_child_survives_good_files_and_is_replaced_after_a_crash(tmp_path: Path) -> None:
    """One long-lived child walks file after file; a crash ends it and the next probe starts
    a new one. Runs in a subprocess: the crash must not take the test's probe child along."""
    script = (
        "import sys, time\n"
        "from inspector.core.errors import FormatError\n"
        "from inspector.formats.keras import h5probe\n"
        "good, bad = sys.argv[1], sys.argv[2]\n"
        "h5probe.probe_hdf5(good); first = h5probe._SERVER.proc.pid\n"
        "h5probe._PASSED.clear(); t = time.perf_counter(); h5probe.probe_hdf5(good)\n"
        "warm = time.perf_counter() - t\n"
        "assert h5probe._SERVER.proc.pid == first\n"
        "try:\n"
        "    h5probe.probe_hdf5(bad)\n"
        "    sys.exit('no error')\n"
        "except FormatError as exc:\n"
        "    assert 'crashed' in str(exc)\n"
        "h5probe._PASSED.clear(); h5probe.probe_hdf5(good)\n"
        "assert h5probe._SERVER.proc.pid != first\n"
        "print(f'warm probe {warm * 1000:.0f} ms')\n"
    )
    good = RES / "digits_convnet" / "digits_convnet.h5"
    proc = subprocess.run(
        [sys.executable, "-c", script, str(good), str(DATA / "h5_vlen_attr_segfault.h5")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-800:] + proc.stdout
    assert "warm probe" in proc.stdout


def test_probe_passes_good_files(tmp_path: Path) -> None:
    h5 = RES / "digits_convnet" / "digits_convnet.h5"
    assert walk(h5) > 10
    h5probe._PASSED.clear()
    probe_hdf5(h5)
    probe_hdf5(RES / "digits_convnet" / "digits_convnet.keras", "model.weights.h5")
    with open_model(h5) as model:
        assert len(list(model)) > 0


def test_python_level_errors_are_left_to_the_reader(tmp_path: Path) -> None:
    truncated = tmp_path / "t.h5"
    shutil.copy(RES / "digits_convnet" / "digits_convnet.h5", truncated)
    with open(truncated, "r+b") as fh:
        fh.truncate(4096)
    probe_hdf5(truncated)  # the child fails cleanly: no crash, no error from the probe
    with pytest.raises(FormatError, match=r"t\.h5"):
        open_model(truncated).close()


def test_a_passed_file_is_probed_again_only_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h5 = tmp_path / "m.h5"
    shutil.copy(RES / "digits_convnet" / "digits_convnet.h5", h5)
    runs = []
    real = h5probe._SERVER.probe
    monkeypatch.setattr(h5probe._SERVER, "probe", lambda *a, **k: runs.append(1) or real(*a, **k))
    probe_hdf5(h5)
    probe_hdf5(h5)
    assert len(runs) == 1
    os.utime(h5, ns=(time.time_ns(), time.time_ns() + 10**9))
    probe_hdf5(h5)
    assert len(runs) == 2
