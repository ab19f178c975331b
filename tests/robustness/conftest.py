"""Fixtures of the robustness suite; helpers live in robust_helpers.py."""

from __future__ import annotations

import pickle

import pytest


@pytest.fixture
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every unpickling entry point fail loudly for the duration of a test."""

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("pickle was invoked on a user's file")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
