"""Background work: exact gzip replaces the estimate, worker faults, a second open cancels."""

from __future__ import annotations

import pytest

from inspector.core import preview as core_preview
from inspector.core.preview import run_preview
from inspector.ui import dialogs
from inspector.ui.controllers import resolve_target


def test_exact_gzip_replaces_the_estimate(qtbot, window, demo_path, open_and_wait):
    window.preview.exact_gzip_below = 0
    with qtbot.waitSignal(window.state.model_changed, timeout=20_000):
        window.open_path(demo_path("digits_convnet"))
    qtbot.waitUntil(lambda: window.state.preview is not None, timeout=20_000)
    first = window.state.preview.total
    label = window.summary.values["gzip_ratio"]
    if not first["gzip_exact"]:
        assert "±" in window.summary.values["gzip_ratio"].text() or "exact" in label.text()
    qtbot.waitUntil(lambda: window.state.preview.total["gzip_exact"], timeout=20_000)
    state = window.state
    expected = run_preview(state.model, state.plan, resolve_target(state.target_name)).total
    assert expected["gzip_exact"]
    assert state.preview.total["gzip_bytes"] == expected["gzip_bytes"]
    assert label.text().endswith("(exact)") and "±" not in label.text()


def test_estimate_shows_its_band(qtbot, window, synthetic_model):
    window.preview.exact_gzip_below = 0
    window.preview.gzip_runner.submit = lambda fn: 0  # keep the estimate on screen
    window.state.set_model(synthetic_model({"a/kernel": (1024, 1024), "b/kernel": (512, 1024)}))
    qtbot.waitUntil(lambda: window.state.preview is not None, timeout=20_000)
    total = window.state.preview.total
    assert not total["gzip_exact"] and total["gzip_uncertainty"] > 0
    text = window.summary.values["gzip_ratio"].text()
    band = total["gzip_ratio"] * total["gzip_uncertainty"]
    assert f"± {band:.2f}" in text and "estimate" in text


def test_new_plan_cancels_exact_gzip(qtbot, window, synthetic_model):
    window.preview.exact_gzip_below = 0
    model = synthetic_model({f"l{i}/kernel": (1024, 1024) for i in range(6)})
    window.state.set_model(model, target="native")
    qtbot.waitUntil(lambda: window.preview.gzip_runner.busy, timeout=60_000)
    gen = window.preview.gzip_runner.generation
    window.state.set_plan(window.state.plan.with_rule("l0/*", "float16"))
    qtbot.waitUntil(lambda: window.preview.gzip_runner.generation > gen, timeout=20_000)
    qtbot.waitUntil(
        lambda: (
            window.state.preview_plan == window.state.plan
            and window.state.preview.total["gzip_exact"]
        ),
        timeout=120_000,
    )


def test_worker_exception_shows_error_and_window_stays_usable(
    qtbot, window, demo_path, open_and_wait, monkeypatch
):
    open_and_wait(window, demo_path("digits_convnet"))
    state = window.state
    victim = next(t.name for t in state.model if t.info.is_float and len(t.info.shape) > 1)
    real = core_preview.preview_tensor

    def broken(tensor, scheme, target=core_preview.NATIVE):
        if tensor.name == victim and scheme.spec == "affine4":
            raise RuntimeError("boom in the worker")
        return real(tensor, scheme, target)

    monkeypatch.setattr(core_preview, "preview_tensor", broken)
    shown = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, title, text: shown.append(text))
    state.override([victim], "affine4")
    qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
    assert "boom in the worker" in shown[0] and "RuntimeError" in shown[0]
    assert "failed" in window.status_label.text()
    with qtbot.waitSignal(state.preview_updated, timeout=20_000):
        state.undo()
    assert state.preview_plan == state.plan


@pytest.mark.timeout(120)
def test_second_open_cancels_running_preview(qtbot, window, synthetic_model, demo_path):
    big = synthetic_model({f"layer{i}/kernel": (1024, 1024) for i in range(10)})
    window.state.set_model(big, target="native")
    qtbot.waitUntil(lambda: len(window.state.tensor_previews) >= 1, timeout=60_000)
    first_gen = window.preview.runner.generation
    with qtbot.waitSignal(window.state.model_changed, timeout=20_000):
        window.open_path(demo_path("digits_convnet"))
    assert window.preview.runner.generation >= first_gen
    qtbot.waitUntil(lambda: window.state.preview is not None, timeout=60_000)
    state = window.state
    assert state.model.path == demo_path("digits_convnet")
    assert set(state.tensor_previews) == set(state.model.tensors)
    assert not any(name.startswith("layer") for name in state.tensor_previews)
    assert state.preview.total["parameters"] == state.model.parameter_count
