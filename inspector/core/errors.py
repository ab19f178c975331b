"""Errors the user sees. Each names the file, the tensor when known, and the reason."""

from __future__ import annotations

import os

__all__ = ["FormatError", "InspectorError", "PlanError", "SchemeError"]


class InspectorError(Exception):
    """Base of every error the tool reports to the user instead of a traceback."""


class FormatError(InspectorError):
    """A model file cannot be read or written as its format requires."""

    def __init__(
        self, path: str | os.PathLike[str], reason: str, tensor: str | None = None
    ) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        self.tensor = tensor
        where = f"{self.path}: tensor '{tensor}'" if tensor else self.path
        super().__init__(f"{where}: {reason}")


class SchemeError(InspectorError, ValueError):
    """A scheme spec is malformed or cannot apply to a tensor."""


class PlanError(InspectorError, ValueError):
    """A plan (JSON or rules) is malformed."""
