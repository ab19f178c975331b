"""One module per file format; `open_model(path)` sniffs the content and picks the reader.

Readers live in `inspector/formats/<format>.py` (writers, when added, in `<format>_write.py`).
Each validates everything a header declares and raises `FormatError` naming the file, the tensor
and the reason. Opening reads headers only; `Tensor.load()` reads a tensor's bytes on demand.
"""

from inspector.formats.registry import FORMATS, open_model, sniff_format

__all__ = ["FORMATS", "open_model", "sniff_format"]
