"""GGUF, llama.cpp's model file: reader (`read_gguf`), writer and export target (`writer`).

See `header.py` for the layout and its validation, `reader.py` for how tensors appear (row-major
shapes, blocks along the last axis), `writer.py` for what an export writes.
"""

from inspector.formats.gguf.reader import read_gguf

__all__ = ["read_gguf"]
