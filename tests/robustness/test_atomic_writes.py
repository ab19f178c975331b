"""Atomic writes (issue 18 §2): temporaries live in a private workspace folder with a marker;
only verified workspaces of dead writers are swept, never a user's file that merely looks
like a temporary; replacing a folder leaves nothing beside it; any legal output name works;
a killed `.keras` export's scratch files are swept by the next export; write errors name the
output the user chose.

Every model and every look-alike file is made by the test.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import CONVNET

from inspector.cli import main
from inspector.core.errors import FormatError
from inspector.core.plan import Plan
from inspector.formats.atomic import MARKER, atomic_dir, atomic_file, sweep_stale_temporaries
from inspector.formats.export import export_model
from inspector.formats.registry import open_model

REPO = Path(__file__).resolve().parents[2]
DEAD_PID = 999_999  # above the default pid_max (4,194,304 is possible: checked below)


def _sha(path: Path) -> str:
    if path.is_dir():
        return hashlib.sha256(
            b"".join(_sha(p).encode() + p.name.encode() for p in sorted(path.iterdir()))
        ).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _npz(path: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    arrays = {f"layer{i}/kernel": rng.standard_normal((16, 8), np.float32) for i in range(n)}
    with open(path, "wb") as fh:  # np.savez(name) would append ".npz"
        np.savez(fh, **arrays)
    return path


def _dead_pid() -> int:
    pid = DEAD_PID
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def _fake_workspace(folder: Path, name: str, marker: dict | None) -> Path:
    ws = folder / name
    ws.mkdir()
    (ws / "payload").write_bytes(b"user data")
    if marker is not None:
        (ws / MARKER).write_text(json.dumps(marker))
    return ws


def test_user_files_that_look_like_temporaries_survive(tmp_path: Path) -> None:
    """Names from the old sweep's pattern and the new one; folders with forged or mismatched
    markers; a symlink to a real-looking workspace: none is touched by an export's sweep."""
    pid = _dead_pid()
    src = _npz(tmp_path / "m.npz")
    lookalikes = [
        _npz(tmp_path / f".o.npz.{pid}.x.tmp"),
        _npz(tmp_path / f".o.npz.{pid}.x.old"),
        _npz(tmp_path / f".o.npz.{pid}.abc.tmp.body"),
        _npz(tmp_path / f".qi-{pid}-abc.tmp"),  # a file, not a folder
        _fake_workspace(tmp_path, f".qi-{pid}-nomarker.tmp", None),
        _fake_workspace(tmp_path, f".qi-{pid}-forged.tmp", {"magic": "something else"}),
        _fake_workspace(
            tmp_path,
            f".qi-{pid}-other.tmp",
            {
                "magic": "quant-inspector atomic-write workspace v1",
                "workspace": f".qi-{pid}-somewhere_else.tmp",
                "pid": pid,
                "target": "o.npz",
            },
        ),
    ]
    real_looking = tmp_path / "elsewhere"
    real_looking.mkdir()
    link_target = _fake_workspace(
        real_looking,
        f".qi-{pid}-linked.tmp",
        {
            "magic": "quant-inspector atomic-write workspace v1",
            "workspace": f".qi-{pid}-linked.tmp",
            "pid": pid,
            "target": "o.npz",
        },
    )
    link = tmp_path / f".qi-{pid}-linked.tmp"
    link.symlink_to(link_target)
    before = {p: _sha(p) for p in [*lookalikes, link_target]}
    # Use each look-alike as an *input* too: it must stay readable and unchanged.
    for i, p in enumerate(lookalikes[:4]):
        assert main(["export", str(p), "-o", str(tmp_path / f"o{i}.npz"), "--scheme", "uint8"]) == 0
    assert main(["export", str(src), "-o", str(tmp_path / "o.npz"), "--scheme", "uint8"]) == 0
    assert sweep_stale_temporaries(tmp_path / "o.npz") == []
    for p, digest in before.items():
        assert p.exists() and _sha(p) == digest, p
    assert link.is_symlink()


def test_replacing_a_folder_leaves_nothing_beside_it(tmp_path: Path) -> None:
    src = _npz(tmp_path / "m.npz")
    out = tmp_path / "out_tfjs"
    for _ in range(2):
        argv = ["export", str(src), "-o", str(out), "--format", "tfjs", "--scheme", "uint8"]
        assert main([*argv, "--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "out_tfjs"]
    assert "group1-shard1of1.bin" in [p.name for p in out.iterdir()]


def test_output_dot_is_refused_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-o . --force` would replace the folder the user is in (the old code left a
    `..PID.*.old` folder in the parent instead)."""
    src = _npz(tmp_path / "m.npz")
    work = tmp_path / "work"
    (work / "inner").mkdir(parents=True)
    for cwd, out in ((work, "."), (work / "inner", ".."), (work / "inner", str(work))):
        monkeypatch.chdir(cwd)
        argv = ["export", str(src), "-o", out, "--format", "tfjs", "--force"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is the current folder" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "work"]
    assert [p.name for p in work.iterdir()] == ["inner"]


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [
        ("npz", ".npz"),
        ("safetensors", ".safetensors"),
        ("tfjs", ""),
        ("keras", ".keras"),
        ("gguf", ".gguf"),  # also writes OUT.llama-quantize.txt beside it
    ],
)
def test_longest_legal_output_name(tmp_path: Path, fmt: str, suffix: str) -> None:
    """A 255-byte name (NAME_MAX), also in multi-byte UTF-8: temporaries stay within it."""
    src = CONVNET / "digits_convnet.keras" if fmt == "keras" else _npz(tmp_path / "m.npz")
    for stem_char in ("n", "é"):
        width = (255 - len(suffix.encode())) // len(stem_char.encode())
        out = tmp_path / (stem_char * width + suffix)
        assert len(out.name.encode()) <= 255
        with open_model(src) as model:
            export_model(model, Plan(default="q8_0" if fmt == "gguf" else "uint8"), fmt, out)
        assert out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


_SLOW_EXPORT = r"""
import sys, time
from pathlib import Path
import inspector.formats.export as export_mod
from inspector.cli import main
real = export_mod.quantize_tensor
ready = Path(sys.argv[1])
def slow(tensor, scheme, target):
    if ready.exists():
        time.sleep(600)
    q = real(tensor, scheme, target)
    ready.write_text("mid-export")
    return q
export_mod.quantize_tensor = slow
sys.exit(main(sys.argv[2:]))
"""


def _kill_mid_export(tmp_path: Path, argv: list[str]) -> None:
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", _SLOW_EXPORT, str(ready), *argv]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, "the export ended before it could be killed"
            assert time.monotonic() < end, "the export never started"
            time.sleep(0.01)
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    ready.unlink()


def test_killed_keras_export_scratch_is_swept(tmp_path: Path) -> None:
    """A `.keras` export copies the weights member to a scratch file beside its output; kill
    -9 leaves it inside the workspace, and the next export to the folder sweeps all of it."""
    src = tmp_path / "in" / "model.keras"
    src.parent.mkdir()
    src.write_bytes((CONVNET / "digits_convnet.keras").read_bytes())
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "q.keras"
    _kill_mid_export(tmp_path, ["export", str(src), "-o", str(out), "--scheme", "uint8"])
    left = list(out_dir.iterdir())
    assert len(left) == 1 and left[0].name.startswith(".qi-") and (left[0] / MARKER).is_file()
    assert any(p.name.endswith(".weights.h5") for p in left[0].iterdir()), "scratch not there"
    assert not out.exists()
    assert main(["export", str(src), "-o", str(out_dir / "other.keras")]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["other.keras"]


def test_killed_replacement_puts_the_old_output_back(tmp_path: Path) -> None:
    """Killed after moving the old output aside but before the new one was renamed in: the
    sweep restores the old output rather than deleting the user's last good export."""
    src = _npz(tmp_path / "m.npz")
    out = tmp_path / "out_tfjs"
    assert main(["export", str(src), "-o", str(out), "--format", "tfjs"]) == 0
    digest = _sha(out)
    pid = _dead_pid()
    ws = tmp_path / f".qi-{pid}-killed.tmp"
    ws.mkdir()
    marker = {
        "magic": "quant-inspector atomic-write workspace v1",
        "workspace": ws.name,
        "pid": pid,
        "start": "",
        "boot": "",
        "target": out.name,
    }
    (ws / MARKER).write_text(json.dumps(marker))
    (ws / "payload").mkdir()
    os.rename(out, ws / "old")
    assert sweep_stale_temporaries(out) == [ws]
    assert _sha(out) == digest and not ws.exists()


def test_live_writer_workspace_is_kept(tmp_path: Path) -> None:
    with atomic_file(tmp_path / "a.bin") as fh:
        fh.write(b"x")
        assert sweep_stale_temporaries(tmp_path / "a.bin") == []
        assert len([p for p in tmp_path.iterdir() if p.name.startswith(".qi-")]) == 1
    assert (tmp_path / "a.bin").read_bytes() == b"x"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_reused_pid_does_not_keep_a_workspace(tmp_path: Path) -> None:
    """The marker's process start time tells a dead writer from a new process with its pid."""
    ws = tmp_path / f".qi-{os.getppid()}-reused.tmp"
    ws.mkdir()
    marker = {
        "magic": "quant-inspector atomic-write workspace v1",
        "workspace": ws.name,
        "pid": os.getppid(),
        "start": "1",  # not the parent's real start time
        "boot": "",
        "target": "x",
    }
    (ws / MARKER).write_text(json.dumps(marker))
    if not Path(f"/proc/{os.getppid()}/stat").exists():
        pytest.skip("no /proc: start times unknown")
    assert sweep_stale_temporaries(tmp_path / "x") == [ws]


def test_disk_full_names_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import inspector.formats.npz.writer as npz_writer

    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(npz_writer, "write_npz_entries", full)
    src = _npz(tmp_path / "m.npz")
    out = tmp_path / "o.npz"
    assert main(["export", str(src), "-o", str(out), "--scheme", "uint8"]) == 2
    err = capsys.readouterr().err
    assert err == f"quant-inspector: error: {out}: cannot write: No space left on device\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_file_size_limit_names_the_output(tmp_path: Path) -> None:
    """A real write error (RLIMIT_FSIZE → EFBIG) from inside a writer, through the CLI."""
    src = _npz(tmp_path / "m.npz", n=40)
    code = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)); "
        "from inspector.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    for fmt, out in (("npz", "o.npz"), ("safetensors", "o.safetensors"), ("tfjs", "o_tfjs")):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        argv = ["export", str(src), "-o", str(tmp_path / out), "--format", fmt]
        proc = subprocess.run(
            [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"quant-inspector: error: {tmp_path / out}"), proc.stderr
        assert "File too large" in proc.stderr and ".qi-" not in proc.stderr
        assert proc.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_writer_error_names_output_not_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspector.formats.npz.writer as npz_writer

    def bad(fh: object, entries: object) -> None:
        raise FormatError(fh.name, "simulated writer failure", "layer0/kernel")  # type: ignore[attr-defined]

    monkeypatch.setattr(npz_writer, "write_npz_entries", bad)
    src = _npz(tmp_path / "m.npz")
    out = tmp_path / "o.npz"
    with open_model(src) as model, pytest.raises(FormatError) as info:
        export_model(model, Plan(default="uint8"), "npz", out)
    assert info.value.path == str(out) and info.value.tensor == "layer0/kernel"


def test_atomic_dir_failure_leaves_old_output(tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("boom")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


@pytest.mark.parametrize("force", [False, True])
def test_device_or_fifo_output_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], force: bool
) -> None:
    """`-o /dev/null --force` would rename the export over the device node itself."""
    src = _npz(tmp_path / "m.npz")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for out in (Path("/dev/null"), fifo):
        argv = ["export", str(src), "-o", str(out), *(["--force"] if force else [])]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(out) in err
    assert Path("/dev/null").is_char_device() and fifo.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "pipe"]


def test_writer_refusal_names_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A writer's refusal is about the output *and* the input it cannot come from."""
    src = tmp_path / "legacy.h5"
    src.write_bytes((REPO / "resources" / "diabetes_mlp" / "diabetes_mlp.h5").read_bytes())
    out = tmp_path / "x.keras"
    assert main(["export", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quant-inspector: error: {out}: ") and f"(exporting {src})" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legacy.h5"]


def test_output_mode_follows_umask(tmp_path: Path) -> None:
    """Temporaries are private (0600/0700); the result gets the usual mode under the umask."""
    old = os.umask(0o027)
    try:
        with atomic_file(tmp_path / "f.bin") as fh:
            ws = next(p for p in tmp_path.iterdir() if p.name.startswith(".qi-"))
            assert ws.stat().st_mode & 0o777 == 0o700
            fh.write(b"x")
        with atomic_dir(tmp_path / "d") as d:
            (d / "a.txt").write_text("a")
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "d" / "a.txt").stat().st_mode & 0o777 == 0o640
