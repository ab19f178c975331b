import json

import pytest

from inspector.core.errors import PlanError
from inspector.core.model import TensorInfo
from inspector.core.plan import Plan, Rule, parse_rule

INFOS = [
    TensorInfo("conv1/kernel", (3, 3, 1, 8), "float32", "conv1"),
    TensorInfo("conv1/bias", (8,), "float32", "conv1"),
    TensorInfo("dense/kernel", (128, 10), "float32", "dense"),
    TensorInfo("dense/bias", (10,), "float32", "dense"),
    TensorInfo("step", (), "int32", ""),
    TensorInfo("optimizer_weights/adam/m", (128, 10), "float32", "adam", optimizer=True),
]


def specs(plan):
    return {name: s.spec for name, s in plan.resolve(INFOS).items()}


def test_default_applies_to_float_tensors_only():
    got = specs(Plan(default="uint8"))
    assert got["conv1/kernel"] == got["dense/bias"] == "uint8"
    assert got["step"] == "float32"
    assert got["optimizer_weights/adam/m"] == "float32"


def test_later_rule_wins_and_override_beats_rules():
    plan = Plan().with_rule("*/kernel", "uint8").with_rule("conv*", "float16")
    assert specs(plan)["conv1/kernel"] == "float16"
    assert specs(plan)["dense/kernel"] == "uint8"
    assert specs(plan)["dense/bias"] == "float32"
    plan = plan.with_overrides(["conv1/kernel"], "int8")
    assert specs(plan)["conv1/kernel"] == "int8"
    assert specs(plan.with_overrides(["conv1/kernel"], None))["conv1/kernel"] == "float16"


def test_rule_match_counts_report_unmatched():
    plan = Plan().with_rule("*/kernel", "uint8").with_rule("lstm*", "uint8")
    assert plan.rule_match_counts(INFOS) == [2, 0]
    assert [r.pattern for r in plan.unmatched_rules(INFOS)] == ["lstm*"]


def test_json_round_trip_is_identity():
    plan = (
        Plan(default="uint16")
        .with_rule("conv*/kernel", "int8:axis=3")
        .with_rule("dense/*", "affine4:clip=percentile:99.9")
        .with_overrides(["dense/bias"], "float16")
    )
    again = Plan.loads(plan.dumps())
    assert again == plan
    assert json.loads(plan.dumps())["overrides"] == {"dense/bias": "float16"}


def test_edits_return_new_plans():
    plan = Plan()
    edited = plan.with_rule("a*", "uint8")
    assert plan.rules == () and edited.rules == (Rule("a*", "uint8"),)
    assert edited.without_rule(0) == plan


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "{",
        '{"default": 3}',
        '{"rules": [{"pattern": "x"}]}',
        '{"overrides": {"a": 1}}',
        '{"default": "uint9"}',
        '{"default": "nosuch"}',
        '{"version": 99}',
    ],
)
def test_bad_plans_raise_plan_error(text):
    with pytest.raises(PlanError):
        Plan.loads(text)


def test_parse_rule():
    assert parse_rule("conv*/kernel=uint8") == Rule("conv*/kernel", "uint8")
    with pytest.raises(PlanError):
        parse_rule("no-equals-sign")
    with pytest.raises(PlanError):
        parse_rule("x=bogus")
