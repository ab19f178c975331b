"""PySide6 + pyqtgraph desktop interface. The only package that imports Qt."""

__all__: list[str] = []
