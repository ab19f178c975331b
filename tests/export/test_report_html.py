"""The HTML report (issue 16 item 9): one self-contained page, charts with axes and values,
per-channel ranges and histograms of the worst tensors, print CSS, one format throughout."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.formats.compare import annotate_total
from inspector.formats.registry import get_target, open_model
from inspector.report import _nice_ticks, write_report

DEPTHWISE = Path(__file__).resolve().parents[2] / "resources/digits_depthwise/digits_depthwise.h5"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "r.html"
    plan = Plan(default="uint8")
    with open_model(DEPTHWISE) as model:
        preview = run_preview(model, plan, get_target("tfjs"))
        preview = dataclasses.replace(
            preview, total=annotate_total(preview.total, model, plan, "tfjs")
        )
        written_elsewhere = SimpleNamespace(format="npz", files=[("x.npz", 1)])
        write_report(
            out,
            model,
            plan,
            preview,
            written_elsewhere,
            target="tfjs",
            evaluation={"Score": "accuracy 99.6 % → 10.2 %"},
            sensitivity={"block4_dw": 88.5, "block2_dw": 60.1, "stem": 1.2},
            sensitivity_unit="accuracy points lost",
        )
    return out.read_text(), preview


def _svgs(text: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg .*?</svg>", text, re.S)]


def test_self_contained_and_printable(page):
    text, _ = page
    assert "@media print" in text
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"?https?:", text)
    assert "<script" not in text
    external = re.findall(r"https?://[^\"' ]+", text)
    assert set(external) <= {"http://www.w3.org/2000/svg"}


def test_layer_chart_labels_every_bar_with_its_value(page):
    text, preview = page
    chart = _svgs(text)[0]
    labels = ["".join(t.itertext()) for t in chart.iter(f"{SVG}text")]
    labels += [t.tail for t in chart.iter(f"{SVG}title") if t.tail]
    layers = {t.layer for t in preview.tensors if t.skipped is None}
    assert layers <= set(labels)  # every layer named, not one in seven
    assert any("SQNR (dB)" in (lab or "") for lab in labels)  # axis title
    bars = list(chart.iter(f"{SVG}rect"))
    assert len(bars) == len(layers)
    assert sum(1 for b in bars if b.get("fill") == "#cc503e") >= 2  # collapsed layers in red


def test_sensitivity_evaluation_and_worst_tensor_details(page):
    text, _ = page
    assert "accuracy points lost" in text and "accuracy 99.6 % → 10.2 %" in text
    assert "block2_dw/depthwise_kernel:0" in text and "channels keep ≤ 2 levels" in text
    ranges = [
        s for s in _svgs(text) if any(t.text == "output channel" for t in s.iter(f"{SVG}text"))
    ]
    assert ranges
    red = [ln for s in ranges for ln in s.iter(f"{SVG}line") if ln.get("stroke") == "#cc503e"]
    assert len(red) > 48  # block2_dw alone has 83 of 96 channels under two grid steps
    assert any("log scale" in (t.text or "") for s in _svgs(text) for t in s.iter(f"{SVG}text"))


def test_one_format_per_report(page):
    text, _ = page
    assert "Written as npz" not in text and "x.npz" not in text
    assert "as <b>tfjs</b> stores them" in text


def test_ticks_cover_the_range():
    ticks = _nice_ticks(0.0, 44.9)
    assert ticks[0] <= 0 and ticks[-1] >= 44.9 and len(ticks) <= 8
