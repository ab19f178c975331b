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


_LAYERS = ("core", "formats", "engine", "report", "ui", "cli")
"""Inner to outer: a module may import its own layer and the layers before it (report is used
by the CLI and the window; cli imports ui only lazily, for the GUI command)."""


def _our_imports(path: Path) -> list[tuple[str, bool]]:
    """(imported `inspector.…` module, at module level) for every import of ours in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        else:
            continue
        for mod in mods:
            if mod.startswith("inspector."):
                found.append((mod, id(node) in top))
    return found


def _layer(module_parts: tuple[str, ...]) -> str:
    head = module_parts[0] if module_parts else ""
    return head.removesuffix(".py")


def test_every_layer_imports_only_inward():
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("").parts
        if rel[0] in ("__init__", "__main__"):
            continue
        own = _LAYERS.index(_layer(rel))
        for mod, at_top in _our_imports(path):
            target = mod.split(".")[1]
            if target not in _LAYERS:
                continue
            lazy_gui = rel[0] == "cli" and target == "ui" and not at_top
            if _LAYERS.index(target) > own and not lazy_gui:
                offenders.append(f"{'/'.join(rel)} imports {mod}")
    assert offenders == []


def test_no_module_imports_another_packages_private_module():
    """`a.b._c` is private to package `a.b`: only modules under `a.b` may import it."""
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = ("inspector", *path.relative_to(PKG).with_suffix("").parts)
        for mod, _ in _our_imports(path):
            parts = mod.split(".")
            private = [i for i, p in enumerate(parts) if p.startswith("_") and p != "__init__"]
            if not private:
                continue
            owner = parts[: private[0]]
            if tuple(rel[: len(owner)]) != tuple(owner):
                offenders.append(f"{'/'.join(rel)} imports {mod}")
    assert offenders == []


def test_cli_and_gui_list_the_same_formats():
    """Both come from the format registry: every format with a writer is an export choice of
    the CLI and in the export dialog; every readable format is in the open dialog's filter."""
    from inspector.cli.main import build_parser
    from inspector.formats.registry import export_choices, formats, open_filter

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    export = sub.choices["export"]
    fmt = next(a for a in export._actions if a.dest == "format")
    assert tuple(fmt.choices) == export_choices()
    assert set(export_choices()) == {s.name for s in formats() if s.writable}
    filt = open_filter()
    for spec in formats():
        for pattern in spec.open_patterns:
            assert pattern in filt, (spec.name, pattern)
