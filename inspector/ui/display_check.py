"""Tell a Linux user why the window cannot open, before Qt aborts with a wall of text.

Qt ≥ 6.5's xcb platform plugin needs X libraries that minimal Debian/Ubuntu systems lack, and
Qt's own message on failure is an abort. We look for the plugin's missing libraries with `ldd`
(no Qt import) and print one line naming the packages to install.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["XCB_PACKAGES", "display_problem", "missing_xcb_libraries"]

XCB_PACKAGES = (
    "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 "
    "libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0"
)


def _xcb_plugin() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(next(iter(spec.submodule_search_locations))) / "Qt/plugins/platforms/libqxcb.so"
    return plugin if plugin.exists() else None


def missing_xcb_libraries() -> list[str]:
    """Shared libraries the xcb plugin needs but the system lacks ([] when unknown)."""
    plugin = _xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(set(re.findall(r"^\s*(\S+) => not found", out.stdout, re.M)))


def display_problem(env: dict[str, str] | None = None) -> str | None:
    """A one-line explanation when the window cannot open here, else None."""
    env = dict(os.environ if env is None else env)
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return (
            "no display found (DISPLAY is not set): run on a desktop, under `xvfb-run -a`, or "
            "use the headless commands (quant-inspector info/preview/export --help)"
        )
    if env.get("WAYLAND_DISPLAY") and not platform:
        return None
    missing = missing_xcb_libraries()
    if missing:
        return (
            f"Qt's X11 plugin cannot load: missing {', '.join(missing)}. "
            f"Install: sudo apt-get install {XCB_PACKAGES}"
        )
    return None
