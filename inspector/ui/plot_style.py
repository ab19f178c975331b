"""Shared pyqtgraph look: light background, readable axis titles, one colour per curve."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont

__all__ = ["CURVE_COLORS", "apply_plot_style", "configure_pyqtgraph"]

CURVE_COLORS = {
    "16": QColor(31, 119, 180),
    "8": QColor(214, 39, 40),
    "4": QColor(44, 160, 44),
    "2": QColor(148, 103, 189),
    "float16": QColor(255, 127, 14),
    "bfloat16": QColor(140, 86, 75),
    "scheme": QColor(20, 20, 20),
    "original": QColor(120, 120, 120),
}
HIST_BRUSH = QColor(70, 130, 180, 170)
LEVEL_PEN = QColor(230, 120, 0, 130)
CLIP_BRUSH = QColor(255, 200, 0, 28)
CLIP_EDGE = QColor(220, 140, 0)
ZERO_PEN = QColor(60, 60, 60)


def configure_pyqtgraph() -> None:
    """Light theme, antialiased lines; called once before any plot is made."""
    pg.setConfigOptions(background="w", foreground=(40, 40, 40), antialias=True)


def apply_plot_style(plot: pg.PlotItem, bottom: str, left: str, title: str = "") -> None:
    """Axis titles with units, a faint grid and readable tick fonts."""
    font = QFont()
    font.setPointSize(9)
    for name, text in (("bottom", bottom), ("left", left)):
        axis = plot.getAxis(name)
        axis.setLabel(text, **{"font-size": "10pt"})
        # Weight values are ~1e-2…1: pyqtgraph would rescale them to "milli" ticks otherwise.
        if hasattr(axis, "setSIPrefixEnableRanges"):
            axis.setSIPrefixEnableRanges(((0.0, 0.0),))
        axis.enableAutoSIPrefix(False)
        axis.setTickFont(font)
    plot.showGrid(x=True, y=True, alpha=0.15)
    if title:
        plot.setTitle(title, size="10pt")
