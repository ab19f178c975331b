"""Plans record the model transforms; old plan files still load; bad values are refused."""

from __future__ import annotations

import json

import pytest

from inspector.core.errors import PlanError
from inspector.core.plan import Plan
from inspector.core.transform_spec import Transforms


def test_plain_plans_stay_version_1_with_no_transforms_key():
    doc = Plan(default="uint8").to_json()
    assert doc["version"] == 1 and "transforms" not in doc


def test_transforms_round_trip_as_version_2():
    plan = Plan(default="uint8").with_transforms(
        Transforms(fold_bn=True, equalize=True, relu6="skip", bias_correction="data-free")
    )
    doc = json.loads(plan.dumps())
    assert doc["version"] == 2
    assert doc["transforms"] == {
        "fold_bn": True,
        "equalize": True,
        "relu6": "skip",
        "bias_correction": "data-free",
    }
    assert Plan.loads(plan.dumps()) == plan


def test_version_1_files_load_without_transforms():
    old = '{"version": 1, "default": "uint8", "rules": [], "overrides": {}}'
    assert Plan.loads(old).transforms == Transforms()


@pytest.mark.parametrize(
    "transforms",
    [
        {"equalize": "yes"},
        {"relu6": "clip"},
        {"bias_correction": "magic"},
        {"fold": True},
        ["equalize"],
    ],
)
def test_bad_transforms_are_plan_errors(transforms):
    doc = {"version": 2, "default": "uint8", "transforms": transforms}
    with pytest.raises(PlanError):
        Plan.from_json(doc)


def test_unknown_versions_are_refused():
    with pytest.raises(PlanError, match="version 3"):
        Plan.from_json({"version": 3})


def test_describe():
    assert Transforms().describe() == "none"
    assert Transforms(equalize=True, bias_correction="empirical").describe() == (
        "equalize, bias correction (empirical)"
    )
