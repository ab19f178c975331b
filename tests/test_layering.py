"""DESIGN §7 rule 1: arrows point inward. core/formats/engine and the headless CLI import no Qt,
and h5py is imported only by formats/."""

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "inspector"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_qt_outside_ui_source():
    offenders = [
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if "ui" not in p.relative_to(PKG).parts
        and _imports(p) & {"PySide6", "pyqtgraph", "shiboken6", "PyQt5", "PyQt6"}
    ]
    assert offenders == []


def test_h5py_only_in_formats():
    offenders = [
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if "h5py" in _imports(p) and p.relative_to(PKG).parts[0] != "formats"
    ]
    assert offenders == []


def test_headless_commands_load_no_qt(tmp_path):
    """Run info and preview on a real model in a fresh interpreter and list loaded modules."""
    demo = PKG.parent / "resources" / "digits_convnet" / "digits_convnet.h5"
    code = (
        "import sys, io, contextlib\n"
        "import inspector.core.preview, inspector.core.curves\n"
        "import inspector.formats, inspector.engine\n"
        "from inspector.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['info', {str(demo)!r}]) == 0\n"
        f"    assert main(['preview', {str(demo)!r}, '--scheme', 'uint8', '--json']) == 0\n"
        "qt = ('PySide6', 'pyqtgraph', 'shiboken6')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in qt]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
