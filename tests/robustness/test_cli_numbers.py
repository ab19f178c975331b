"""Numeric CLI arguments: overflowing, infinite, NaN, negative and absurdly long numbers are one
usage line naming the option, exit status 2 — never an OverflowError or ValueError traceback
(`auto --target-sqnr 1e308` overflowed `10 ** (dB / 10)`; `--shard-mb inf` overflowed `int()`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from robust_helpers import MLP, REPO

from inspector.cli.main import main as cli_main

H5 = MLP / "diabetes_mlp.h5"
LONG = "1" + "0" * 400
"""A number whose float is inf: `float(LONG)` overflows to infinity without raising."""


def _usage_error(capsys: pytest.CaptureFixture[str], argv: list[str], option: str) -> str:
    code = cli_main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    last = captured.err.strip().splitlines()[-1]
    assert option in last, last
    assert "Traceback" not in captured.err
    assert len(last) < 200, last
    return last


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--target-sqnr", "1e308"),
        ("--target-sqnr", "-1e308"),
        ("--target-sqnr", "inf"),
        ("--target-sqnr", "nan"),
        ("--target-sqnr", LONG),
        ("--target-bits", "inf"),
        ("--target-bits", "nan"),
        ("--target-bits", "-3"),
        ("--target-bits", "1e308"),
        ("--target-bytes", "-5"),
        ("--target-bytes", "0"),
        ("--target-bytes", LONG),
        ("--target-bytes", "1e3"),
        ("--target-size", LONG + "%"),
        ("--target-size", LONG),
        ("--target-size", "1e308"),
        ("--target-size", "nan%"),
        ("--target-size", "lots"),
    ],
)
def test_auto_goals(capsys: pytest.CaptureFixture[str], option: str, value: str) -> None:
    argv = ["auto", str(H5), "--weight-level", f"{option}={value}"]
    last = _usage_error(capsys, argv, option)
    assert value[:40] in last or "…" in last or value in last


@pytest.mark.parametrize("value", ["0", "-3", "1e12", LONG, "x"])
def test_sample_counts(capsys: pytest.CaptureFixture[str], value: str) -> None:
    _usage_error(
        capsys, ["auto", str(H5), "--target-bits", "4", "--probe-samples", value], "--probe-samples"
    )
    _usage_error(capsys, ["evaluate", str(H5), "--max-samples", value], "--max-samples")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e308", LONG, "0", "-1", "1e-9"])
def test_shard_mb(capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str) -> None:
    out = tmp_path / "out"
    argv = ["export", str(H5), "-o", str(out), "--format", "tfjs", "--shard-mb", value]
    _usage_error(capsys, argv, "--shard-mb")
    assert not out.exists()


@pytest.mark.parametrize(
    "value", ["inf", "nan", "1e308", LONG, LONG + "GB", "0", "0.5", "50%", "-5GB", "lots"]
)
def test_max_shard_size(capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str) -> None:
    out = tmp_path / "out"
    argv = ["export", str(H5), "-o", str(out), "--format", "safetensors", "--max-shard-size", value]
    _usage_error(capsys, argv, "--max-shard-size")
    assert not out.exists()


def test_sensible_numbers_still_work(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The bounds refuse nothing a user means: fractional MiB (1 KiB shards), a byte target
    above the float size (every tensor kept: weight SQNR is exact, which the summary line
    used to crash on)."""
    out = tmp_path / "t"
    assert (
        cli_main(["export", str(H5), "-o", str(out), "--format", "tfjs", "--shard-mb", "0.001"])
        == 0
    )
    assert len(list(out.glob("group1-shard*"))) > 1
    argv = ["export", str(H5), "-o", str(tmp_path / "s"), "--format", "safetensors"]
    assert cli_main([*argv, "--max-shard-size", "4kB"]) == 0
    assert cli_main(["auto", str(H5), "--weight-level", "--target-bytes", "10000000"]) == 0
    assert "exact" in capsys.readouterr().out
    assert cli_main(["auto", str(H5), "--weight-level", "--target-sqnr", "30"]) == 0


def test_exit_status_from_the_command_line(tmp_path: Path) -> None:
    """The installed entry point's status and stderr, not only `main()`'s return value."""
    cmd = [sys.executable, "-m", "inspector", "auto", str(H5), "--target-sqnr", "1e308"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 2
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .endswith("--target-sqnr: '1e308' is outside -100 … 400 dB")
    )
    assert "Traceback" not in run.stderr
