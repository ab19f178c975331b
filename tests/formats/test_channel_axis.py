"""The layout's output-channel axis, which per-channel schemes use by default.

A depthwise kernel `(kh, kw, C, multiplier)` must get axis −2: with the last axis (the
multiplier, size 1) an int8 "per-channel" scheme would use one scale for the whole kernel.
"""

from pathlib import Path

import pytest

from inspector.formats import open_model

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    ROOT / "resources/digits_depthwise/digits_depthwise.h5",
    ROOT / "resources/digits_depthwise/tfjs/model.json",
    ROOT / "tests/engine/data/every_layer_k2.h5",
    ROOT / "tests/engine/data/every_layer_k3.keras",
]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_depthwise_kernels_use_channel_axis_minus_2(path):
    with open_model(path) as model:
        axes = {t.name: t.info.channel_axis for t in model}
        shapes = {t.name: t.info.shape for t in model}
    depthwise = [n for n in axes if "depthwise_kernel" in n or n == "dw/kernel"]
    assert depthwise
    assert all(axes[n] == -2 for n in depthwise)
    kernels = [n for n in axes if n.split("/")[-1].split(":")[0] == "kernel" and n not in depthwise]
    assert kernels and all(axes[n] == -1 for n in kernels)
    assert all(axes[n] is None for n in axes if len(shapes[n]) < 2)


def test_int8_on_depthwise_kernel_gets_one_scale_per_channel():
    from inspector.core.schemes import parse_scheme

    with open_model(FILES[0]) as model:
        t = next(t for t in model if "depthwise_kernel" in t.name)
        enc = parse_scheme("int8").encode(t.load(), channel_axis=t.info.channel_axis)
    assert len(enc.params["scales"]) == t.info.shape[2]
