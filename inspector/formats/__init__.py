"""One module per file format; `open_model(path)` sniffs and picks the reader."""
