"""A Linux user without a display or without Qt's X11 libraries gets one clear line."""

import sys

import pytest

import inspector.ui.display_check as dc
from inspector.cli import main

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def test_no_display_is_explained():
    msg = dc.display_problem({})
    assert "DISPLAY" in msg and "xvfb-run" in msg


def test_offscreen_and_wayland_need_nothing():
    assert dc.display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert dc.display_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None


def test_missing_xcb_libraries_name_the_packages(monkeypatch):
    monkeypatch.setattr(dc, "missing_xcb_libraries", lambda: ["libxcb-icccm.so.4"])
    msg = dc.display_problem({"DISPLAY": ":0"})
    assert "libxcb-icccm.so.4" in msg and "apt-get install" in msg and "libxcb-cursor0" in msg


def test_ldd_parsing_finds_real_plugin_state():
    missing = dc.missing_xcb_libraries()
    assert all(name.startswith("lib") for name in missing)


def test_gui_command_prints_the_hint_instead_of_aborting(monkeypatch, capsys):
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main([]) == 2
    assert "no display found" in capsys.readouterr().err
