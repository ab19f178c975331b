"""Views bound to the state: selection → plots, clip drag → plan, glob filter, table edits."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.core.schemes import parse_scheme


def _kernel(state):
    return next(t.name for t in state.model if t.info.is_float and len(t.info.shape) >= 2)


def _select(qtbot, window, name):
    window.state.set_selection([name], name)
    qtbot.waitUntil(
        lambda: window.histogram.detail is not None and window.histogram.detail.name == name,
        timeout=20_000,
    )


def test_selecting_a_tensor_updates_histogram_and_curves(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    state = window.state
    names = [t.name for t in state.model if t.info.is_float and len(t.info.shape) >= 2]
    first, second = names[0], names[1]
    _select(qtbot, window, first)
    x1, y1 = window.histogram.hist_item.getData()
    assert window.histogram.detail.name == first
    assert y1.sum() == state.model[first].info.size
    assert first in window.histogram.info.text()
    values = state.model[first].load()
    assert x1.min() == pytest.approx(values.min()) and x1.max() == pytest.approx(values.max())
    curves_first = {c.name(): c.getData() for c in window.curves.overview.listDataItems()}
    assert any("uint8" in (name or "") for name in curves_first)

    _select(qtbot, window, second)
    _x2, y2 = window.histogram.hist_item.getData()
    assert y2.sum() == state.model[second].info.size
    lo, hi = window.curves.overview.viewRange()[0]
    vals2 = state.model[second].load()
    assert lo <= vals2.min() and hi >= vals2.max()
    curves_second = {c.name(): c.getData() for c in window.curves.overview.listDataItems()}
    key = next(k for k in curves_second if k and "uint8" in k)
    assert not np.array_equal(curves_first[key][0], curves_second[key][0])
    # the staircase of the chosen scheme holds exactly the stored values of the tensor
    _sx, sy = curves_second[key]
    assert len(np.unique(sy)) <= 256


def test_table_click_selects_and_sets_state(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    panel = window.tensors
    name = _kernel(window.state)
    index = panel.proxy.mapFromSource(panel.model.index_of(name))
    panel.view.selectionModel().select(
        index,
        panel.view.selectionModel().SelectionFlag.ClearAndSelect
        | panel.view.selectionModel().SelectionFlag.Rows,
    )
    assert window.state.selection == (name,)
    # state → view: a click on a worst tensor in the summary selects its row
    worst = window.summary.worst.item(0)
    window.summary.worst.itemClicked.emit(worst)
    wanted = worst.data(256)
    assert window.state.current == wanted
    rows = panel.view.selectionModel().selectedRows()
    assert [r.data(256 + 2) for r in rows] == [wanted]


def test_drag_clip_region_sets_clip_option(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    state = window.state
    name = next(t.name for t in state.model if t.info.size > 4000)
    _select(qtbot, window, name)
    view = window.histogram
    assert view.clip_region.isVisible()
    d = view.detail
    span = d.hi - d.lo
    with qtbot.waitSignal(state.plan_changed, timeout=5_000):
        view.clip_region.setRegion((d.lo + 0.1 * span, d.hi - 0.1 * span))
        view.clip_region.sigRegionChangeFinished.emit(view.clip_region)
    scheme = parse_scheme(state.spec_for(name))
    assert scheme.name == "uint8"
    assert scheme.clip.startswith("percentile:")
    p = float(scheme.clip.split(":")[1])
    values = np.sort(state.model[name].load().reshape(-1))
    inside = np.mean((values >= d.lo + 0.1 * span) & (values <= d.hi - 0.1 * span))
    assert p == pytest.approx(100 * (1 - (1 - inside) / 2), abs=0.6)
    # state → view: the new detail puts the region at the scheme's clip range
    qtbot.waitUntil(
        lambda: view.detail is not d and view.detail.spec == scheme.spec, timeout=10_000
    )
    lo, hi = view.clip_region.getRegion()
    assert lo > d.lo + 0.05 * span and hi < d.hi - 0.05 * span
    # and undo brings the unclipped scheme back
    state.undo()
    assert state.spec_for(name) == "uint8"


def test_glob_filter(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    panel = window.tensors
    all_names = panel.visible_tensor_names()
    assert len(all_names) == len(window.state.model)
    qtbot.keyClicks(panel.filter_edit, "*/kernel*")
    shown = panel.visible_tensor_names()
    assert shown and all("/kernel" in n for n in shown)
    assert len(shown) == sum("/kernel" in n for n in all_names)
    panel.filter_edit.setText("BIAS")
    assert all("bias" in n for n in panel.visible_tensor_names())
    panel.filter_edit.setText("nothing*matches")
    assert panel.visible_tensor_names() == []
    panel.filter_edit.clear()
    assert panel.visible_tensor_names() == all_names


def test_rules_and_scheme_editor(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    state = window.state
    editor = window.editor
    name = _kernel(state)
    state.set_selection([name], name)
    editor.preset.setCurrentText("int8")
    editor.clip.setCurrentText("percentile")
    editor.percentile.setValue(99.5)
    qtbot.waitUntil(lambda: editor.spec_edit.text() == "int8:clip=percentile:99.5", timeout=3000)
    editor.apply()
    assert state.spec_for(name) == "int8:clip=percentile:99.5"
    editor.glob_edit.setText("*bias*")
    editor.preset.setCurrentText("float16")
    qtbot.waitUntil(lambda: editor.spec_edit.text() == "float16", timeout=3000)
    editor.add_rule()
    assert state.plan.rules[-1].pattern == "*bias*"
    rules = window.rules.model
    assert rules.counts == [sum("bias" in t.name for t in state.model)]
    state.set_plan(state.plan.with_rule("typo*", "uint8"))
    assert rules.counts[-1] == 0
    assert "none" in rules.index(1, 2).data()
    assert rules.setData(rules.index(1, 0), "conv*")
    assert state.plan.rules[1].pattern == "conv*"
    assert not rules.setData(rules.index(1, 1), "uint9")
