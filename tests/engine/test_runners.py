"""The engine's runtime table: every entry names a real input kind and a loadable factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.engine import runners
from inspector.engine.errors import EvaluationUnavailable
from inspector.formats.registry import input_kinds, open_model

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def test_every_runtime_serves_a_registered_input_kind():
    kinds = set(input_kinds())
    for kind in runners.runner_kinds():
        assert kind in kinds, kind
        runners._load(runners._RUNNERS[kind])  # the factory imports and resolves


def test_layer_models_run_in_the_layer_executor_and_others_say_why():
    from inspector.engine.executor import Executor

    with open_model(RESOURCES / "digits_convnet" / "tfjs" / "model.json") as model:
        assert isinstance(runners.make_executor(model), Executor)


def test_a_file_without_a_graph_is_refused_with_a_reason(tmp_path):
    import numpy as np

    np.savez(tmp_path / "w.npz", kernel=np.ones((3, 3), np.float32))
    with open_model(tmp_path / "w.npz") as model, pytest.raises(EvaluationUnavailable):
        runners.make_executor(model)
