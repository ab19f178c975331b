"""Cancellation of long core work (streamed gzip, previews) requested by the caller."""

from __future__ import annotations

from .errors import InspectorError

__all__ = ["Cancelled"]


class Cancelled(InspectorError):
    """The caller's `cancelled()` callback returned True; the work stopped, nothing was kept."""
