"""`quant-inspector`: the GUI with no command, headless commands otherwise (DESIGN §6).

`main` parses the command line; each command lives in its own module (`main` for info/preview/
gui, `export`, `engine` for evaluate/sensitivity/auto) and imports what it needs lazily.
"""

from inspector.cli.main import main

__all__ = ["main"]
