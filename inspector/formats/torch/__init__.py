"""PyTorch checkpoints (`torch.save`'s zip format), read without torch and without unpickling
anything but an explicit allowlist: `read_torch` (see `reader.py`, `unpickler.py`)."""

from inspector.formats.torch.reader import read_torch

__all__ = ["read_torch"]
