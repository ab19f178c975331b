"""PySide6 + pyqtgraph desktop interface. The only package that imports Qt."""

from inspector.ui._compat import protect_singletons

protect_singletons()

__all__: list[str] = []
