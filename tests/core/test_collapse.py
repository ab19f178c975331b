"""Channel collapse (issue 16 item 6): channels a per-tensor grid leaves with ≤ 2 levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inspector.core.collapse import collapse_flagged, collapse_text, collapsed_channels
from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.formats.registry import get_target, open_model

DEPTHWISE = Path(__file__).resolve().parents[2] / "resources" / "digits_depthwise"


def test_narrow_channels_collapse_under_one_grid():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 8, 1)).astype(np.float32)
    w[:, :, 3:, :] *= 1e-3  # five channels span a thousandth of the widest one's range
    scale = (w.max() - w.min()) / 255
    q = np.round((w - w.min()) / scale)  # one 8-bit grid for the whole tensor
    assert collapsed_channels(w, q, -2) == (5, 8)
    assert collapsed_channels(w, w, -2) == (0, 8)  # nothing lost, nothing flagged
    assert collapsed_channels(w, q, None) == (0, 0)


def test_binary_channels_are_not_collapses():
    w = np.tile(np.array([0.0, 1.0], np.float32), (4, 3))  # each row already two-valued
    assert collapsed_channels(w, w.copy(), 0) == (0, 4)


def test_flag_threshold_and_text():
    assert collapse_flagged(41, 64) and not collapse_flagged(1, 192)
    assert collapse_text(41, 64) == "41 of 64 channels keep ≤ 2 levels"


def test_depthwise_demo_flags_its_kernels_and_int8_fixes_them():
    with open_model(DEPTHWISE / "digits_depthwise.h5") as model:
        target = get_target("tfjs")
        uint8 = run_preview(model, Plan(default="uint8"), target)
        int8 = run_preview(model, Plan(default="int8"), target)
    flagged = uint8.total["collapsed_tensors"]
    assert {"block2_dw/depthwise_kernel:0", "block4_dw/depthwise_kernel:0"} <= set(flagged)
    assert all("depthwise_kernel" in name for name in flagged)
    rows = {t.name: t for t in uint8.tensors}
    block2 = rows["block2_dw/depthwise_kernel:0"]
    assert block2.channels == 96 and block2.collapsed_channels > 48
    assert block2.sqnr_db > 30  # the SQNR alone looks fine: that is why the flag exists
    assert int8.total["collapsed_tensors"] == []


def test_codes_and_decoded_values_count_alike():
    """The preview counts on codes where one code is one value in a channel; the decoded
    values must give the same answer (per-tensor grid, per-channel int8, groups of int4)."""
    from inspector.core.quantize import quantize_tensor
    from inspector.core.schemes import parse_scheme

    with open_model(DEPTHWISE / "digits_depthwise.h5") as model:
        for spec in ("uint8", "int8", "int4", "kmeans2"):
            for tensor in model:
                if tensor.info.channel_axis is None or len(tensor.info.shape) < 2:
                    continue
                row = run_preview_one(tensor, spec)
                q = quantize_tensor(tensor, parse_scheme(spec))
                expected = collapsed_channels(q.original, q.decoded, tensor.info.channel_axis)
                assert (row.collapsed_channels, row.channels) == expected, (spec, tensor.name)


def run_preview_one(tensor, spec):
    from inspector.core.preview import preview_tensor
    from inspector.core.schemes import parse_scheme

    return preview_tensor(tensor, parse_scheme(spec))


def test_flagged_when_the_format_bakes_the_grid_into_floats():
    """Keras stores a uint8 plan as float32 values on the uint8 grid: still a collapse."""
    with open_model(DEPTHWISE / "digits_depthwise.h5") as model:
        keras = run_preview(model, Plan(default="uint8"), get_target("keras"))
        floats = run_preview(model, Plan(default="float16"), get_target("keras"))
    assert "block2_dw/depthwise_kernel:0" in keras.total["collapsed_tensors"]
    assert floats.total["collapsed_tensors"] == []
