"""Unclear errors of the CLI (issue 18 §2): every failure is ONE printable line naming the file
(and the tensor), exit status 2; names from a file never reach the terminal raw; a closed pipe is
not an error; hostile plan files end in a clear line, not a traceback.

Every input is made by the test (npz files with hostile tensor names, damaged plan files).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import bounded

from inspector.cli import main
from inspector.cli.safe_text import MAX_ERROR_CHARS, cap, error_line, escape
from inspector.core.errors import FormatError

REPO = Path(__file__).resolve().parents[2]
HOSTILE_NAMES = [
    "a\nquant-inspector: wrote fake.npz (npz, 1 bytes)",
    "b\x1b[2J\x1b[31mred",
    "c\x1b]52;c;ZXZpbA==\x07",  # OSC 52: write the clipboard
    "d\u202eevil",  # right-to-left override
    "e\r\roverwrite",
    "f\x9b31m",  # C1 CSI
]


def _npz(path: Path, names: list[str]) -> Path:
    np.savez(path, **{n: np.linspace(-1, 1, 64, dtype=np.float32) for n in names})
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _raw_controls(text: str) -> list[str]:
    """Characters a terminal would act on, apart from the newlines/tabs of the layout."""
    return [ch for ch in text if ch not in "\n\t" and (not ch.isprintable())]


@pytest.mark.parametrize("command", ["info", "preview"])
def test_hostile_names_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = _npz(tmp_path / "m.npz", HOSTILE_NAMES)
    extra = ["--scheme", "int8"] if command == "preview" else []
    status, out, err = _run(capsys, command, str(path), *extra)
    assert status == 0
    assert _raw_controls(out) == [] and _raw_controls(err) == []
    lines = out.splitlines()
    # One row per tensor: the faked "wrote" line is part of the first row, not a line.
    assert not any(line.startswith("quant-inspector:") for line in lines)
    for name in HOSTILE_NAMES:
        assert sum(line.startswith(escape(name) + " ") for line in lines) == 1, name
    assert "a\\nquant-inspector: wrote fake.npz" in out and "b\\e[2J\\e[31mred" in out


def test_json_keeps_names_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json output is for programs: names are JSON-escaped and decode back exactly."""
    path = _npz(tmp_path / "m.npz", HOSTILE_NAMES)
    status, out, _ = _run(capsys, "info", str(path), "--json")
    assert status == 0 and _raw_controls(out) == []
    assert [t["name"] for t in json.loads(out)["tensors"]] == HOSTILE_NAMES


def test_hostile_file_name_in_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x\x1b[2J\nquant-inspector: ok.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    status, out, err = _run(capsys, "info", str(path))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and _raw_controls(err) == []
    assert "x\\e[2J\\nquant-inspector: ok.npz" in err


def test_invalid_utf8_file_name_is_printed_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = os.fsdecode(b"bad\xff\xfename.npz")
    path = _npz(tmp_path / name, ["w"])
    status, out, err = _run(capsys, "info", str(path))
    assert status == 0 and err == ""
    assert "bad\\xff\\xfename.npz" in out


def test_error_line_is_capped_keeping_file_and_tensor() -> None:
    long_reason = "values " + ", ".join(str(i) for i in range(5000))
    exc = FormatError("/data/models/model.h5", long_reason, "dense_1/kernel:0")
    line = error_line(exc)
    assert len(line) <= MAX_ERROR_CHARS + 10
    assert line.startswith("/data/models/model.h5: tensor 'dense_1/kernel:0': values 0, 1")
    assert "…" in line and line.endswith("4999")
    # a name itself thousands of characters long keeps both ends
    exc = FormatError("/x/" + "d" * 5000 + "/end.npz", "bad", "t" * 3000 + "TAIL")
    line = error_line(exc)
    assert len(line) <= MAX_ERROR_CHARS + 10
    assert "end.npz: tensor '" in line and "TAIL'" in line and line.endswith(": bad")


def test_long_error_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"default": "uint8", "rules": "x" * 20000}))
    model = _npz(tmp_path / "m.npz", ["w"])
    status, _, err = _run(capsys, "preview", str(model), "--plan", str(plan))
    assert status == 2 and err.count("\n") == 1 and len(err) < MAX_ERROR_CHARS + 60
    assert str(plan) in err


def test_escape_and_cap_units() -> None:
    assert escape("plain/name:0") == "plain/name:0"
    assert escape("a\nb\tc\x1bd\x00e\u200bf") == "a\\nb\\tc\\ed\\x00e\\u200bf"
    assert escape("keep\nline", keep="\n") == "keep\nline"
    assert escape("ünïcödé 名前") == "ünïcödé 名前"
    assert cap("short", 10) == "short"
    assert cap("0123456789abcdef", 9) == "01234…def" and len(cap("x" * 100, 9)) == 9


# --- plan files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"default": "uint8", "overrides": {"\xff\xfe": "int8"}}', "not UTF-8"),
        (b'{"default": "uint8", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", "nested too deeply"),
        (b'{"transforms": ' + b'{"t": ' * 100000, "nested too deeply"),
        (b'{"version": ' + b"9" * 6000 + b"}", "not valid JSON"),
        (b'{"version": ' + b"[" * 990 + b"]" * 990 + b"}", "nested too deeply"),
        (b'{"version": "' + b"v" * 100000 + b'"}', "version 'vvvv"),
        (b"", "not valid JSON"),
        (b"[1, 2", "not valid JSON"),
    ],
)
def test_hostile_plan_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, reason: str
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_bytes(content)
    model = _npz(tmp_path / "m.npz", ["w"])
    assert main(["preview", str(model)]) == 0  # imports done outside the memory bound
    capsys.readouterr()
    with bounded():
        status, out, err = _run(capsys, "preview", str(model), "--plan", str(plan))
    assert status == 2 and out == ""
    assert err.startswith(f"quant-inspector: error: {plan}: plan ") and reason in err
    assert err.count("\n") == 1


def test_plan_with_byte_order_mark_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Windows editors save UTF-8 with a BOM: a valid plan, not a JSON error."""
    plan = tmp_path / "plan.json"
    plan.write_bytes(b"\xef\xbb\xbf" + json.dumps({"default": "uint8"}).encode())
    model = _npz(tmp_path / "m.npz", ["w"])
    status, out, _ = _run(capsys, "preview", str(model), "--plan", str(plan), "--json")
    assert status == 0 and json.loads(out)["plan"]["default"] == "uint8"


def test_plan_that_is_a_fifo_or_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _npz(tmp_path / "m.npz", ["w"])
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    assert main(["preview", str(model)]) == 0
    for plan in (fifo, tmp_path):
        with bounded():
            status, _, err = _run(capsys, "preview", str(model), "--plan", str(plan))
        assert status == 2 and f"{plan}: cannot read plan: not a regular file" in err


def test_plan_too_large_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inspector.core.plan import MAX_PLAN_BYTES

    plan = tmp_path / "plan.json"
    with open(plan, "wb") as fh:
        fh.truncate(MAX_PLAN_BYTES + 1000)  # sparse: costs no disk
    model = _npz(tmp_path / "m.npz", ["w"])
    status, _, err = _run(capsys, "preview", str(model), "--plan", str(plan))
    assert status == 2 and "over the" in err and "limit" in err


@pytest.mark.parametrize("option", ["--scheme", "--plan", "--rule"])
def test_empty_option_value_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    """`--scheme ''` used to be ignored silently (the default float32 applied)."""
    model = _npz(tmp_path / "m.npz", ["w"])
    status, out, err = _run(capsys, "preview", str(model), option, "")
    assert status == 2 and out == "" and err.count("\n") == 1


# --- closed pipes -----------------------------------------------------------------------------


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "inspector", *argv]


@pytest.mark.parametrize("argv", [["info"], ["info", "--json"], ["preview", "--scheme", "uint8"]])
def test_closed_pipe_is_not_an_error(tmp_path: Path, argv: list[str]) -> None:
    """`info | head -1`: the reader leaves early; the CLI ends quietly with status 0."""
    model = _npz(tmp_path / "m.npz", [f"layer{i}/kernel" for i in range(3000)])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = _cli(argv[0], str(model), *argv[1:])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0
    assert err == b""


@pytest.mark.parametrize("command", ["preview", "export"])
def test_scheme_that_cannot_apply_names_file_and_tensor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    model = tmp_path / "m.npz"
    np.savez(model, w=np.ones((5, 7), np.float32))
    extra = ["-o", str(tmp_path / "o.safetensors")] if command == "export" else []
    status, out, err = _run(capsys, command, str(model), "--scheme", "int8:axis=5", *extra)
    assert status == 2 and out == ""
    reason = "axis 5 is out of range for a 2-d tensor (5, 7)"
    assert err == f"quant-inspector: error: {model}: tensor 'w': {reason}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_huge_names_are_capped_in_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inspector.cli.text import MAX_CELL_CHARS

    name = "layer/" + "x" * 20000 + "/kernel"
    status, out, _ = _run(capsys, "info", str(_npz(tmp_path / "m.npz", [name, "b"])))
    assert status == 0
    assert max(len(line) for line in out.splitlines()) < MAX_CELL_CHARS + 100
    assert "layer/xxx" in out and "xxx/kernel" in out and "…" in out


def test_closed_stdout_and_stderr(tmp_path: Path) -> None:
    """Started with stdout (or stderr) closed: no crash, the usual status."""
    model = _npz(tmp_path / "m.npz", ["w"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for argv, status in ((["info", str(model)], 0), (["info", str(tmp_path / "no.npz")], 2)):
        for fd in (1, 2):
            proc = subprocess.run(
                ["sh", "-c", f'"$@" {fd}>&-', "sh", *_cli(*argv)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=120,
            )
            assert proc.returncode == status, (argv, fd)


def test_unexpected_exception_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a reader (any exception type) still ends in one line naming the model, status
    2; QUANT_INSPECTOR_DEBUG=1 lets the traceback through for developers."""
    import inspector.cli.text as text_mod

    def broken(model: object) -> str:
        raise KeyError("simulated\nbug")

    monkeypatch.setattr(text_mod, "info_table", broken)
    model = _npz(tmp_path / "m.npz", ["w"])
    status, out, err = _run(capsys, "info", str(model))
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"quant-inspector: error: {model}: internal error (KeyError: ")
    assert "simulated\\nbug" in err
    monkeypatch.setenv("QUANT_INSPECTOR_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["info", str(model)])
