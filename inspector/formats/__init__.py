"""One subpackage per file format behind one registry; `open_model(path)` sniffs the content
and picks the reader.

Each format package (`tfjs/`, `keras/`, `safetensors/`, `npz/`, `onnx/`, …) declares a
`FormatSpec` in its `__init__.py` and holds its reader, writer and target modules; `registry.py`
turns the specs into every list the CLI and GUI show. Readers validate everything a header
declares and raise `FormatError` naming the file, the tensor and the reason. Opening reads
headers only; `Tensor.load()` reads a tensor's bytes on demand. Opening imports no scheme family:
`registry.get_target` does (and registers the GGUF imatrix reader with llama's family).
"""

from inspector.formats.registry import input_kinds, open_model, sniff_format

__all__ = ["input_kinds", "open_model", "sniff_format"]
