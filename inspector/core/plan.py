"""A quantization plan: one default scheme, ordered glob rules, per-tensor overrides.

A plan is an immutable value: every edit returns a new plan, so undo is a stack of plans and
the GUI, the CLI and a saved JSON file all mean the same thing by it.
Resolution order: a per-tensor override beats every rule; among rules the LAST matching one wins
(so a user appends a more specific rule after a general one, as with the TF.js converter's
patterns); the default applies to the rest. Integer/bool tensors and optimizer state are kept,
and so are float tensors a reader marks as not weights (`TensorInfo.kept`) unless named exactly.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any

from inspector.core.errors import InspectorError, PlanError
from inspector.core.model import TensorInfo
from inspector.core.schemes import Scheme, parse_scheme
from inspector.core.transform_spec import Transforms

__all__ = [
    "KEEP",
    "MAX_PLAN_BYTES",
    "PLAN_VERSION",
    "PLAN_VERSIONS",
    "Plan",
    "Rule",
    "Transforms",
    "parse_rule",
]

PLAN_VERSION = 1
NO_TRANSFORMS = Transforms()
PLAN_VERSIONS = (1, 2)
"""A plan with model transforms is written as version 2, so a reader that knows only version 1
refuses it instead of exporting without the transforms; plans without them stay version 1."""
KEEP = "float32"
MAX_PLAN_BYTES = 64 << 20
"""Largest plan document read (bytes): overrides for ~500k tensors; parse memory ≈ 10× this."""


@dataclass(frozen=True)
class Rule:
    """`pattern` is an fnmatch glob on the tensor name (case-sensitive); `scheme` a spec."""

    pattern: str
    scheme: str

    def matches(self, info: TensorInfo) -> bool:
        return fnmatchcase(info.name, self.pattern)


def parse_rule(text: str) -> Rule:
    """Parse the CLI's `GLOB=SPEC`, where SPEC is `NAME[:key=value,…]` and may hold `=` itself.

    The glob ends at the first `=` after which a valid spec follows (a glob may hold `=` and
    `:` — `dense/kernel:0=int8:axis=0`). When no split gives a valid spec, the error is that of
    the first split whose scheme name is registered (a bad option), else of the first whose
    scheme name holds no `=`.
    """
    splits = [i for i, ch in enumerate(text) if ch == "="]
    candidates = [(text[:i].strip(), text[i + 1 :].strip()) for i in splits]
    candidates = [(glob, spec) for glob, spec in candidates if glob and spec]
    if not candidates:
        raise PlanError(f"rule {text!r} is not of the form GLOB=SCHEME")
    errors: list[tuple[str, InspectorError]] = []
    for glob, spec in candidates:
        try:
            return Rule(glob, parse_scheme(spec).spec)
        except InspectorError as exc:
            errors.append((spec, exc))
    named = [exc for spec, exc in errors if _names_scheme(spec)]
    plain = [exc for spec, exc in errors if "=" not in spec.partition(":")[0]]
    raise PlanError(f"rule {text!r}: {(named or plain or [errors[0][1]])[0]}")


def _names_scheme(spec: str) -> bool:
    """Whether `spec` starts with a registered scheme name (its options may still be wrong)."""
    name = spec.partition(":")[0].strip()
    try:
        parse_scheme(name)
    except InspectorError:
        return False
    return True


def _checked_spec(spec: str) -> str:
    """Canonical form of a spec; a PlanError naming the spec when it is not valid."""
    if isinstance(spec, str) and not spec.strip():
        raise PlanError(f"empty scheme spec {spec!r}: give a scheme such as uint8 or int4:group=32")
    try:
        return _canonical_spec(spec)
    except InspectorError as exc:  # its message starts with the spec itself
        raise PlanError(str(exc)) from exc


@functools.lru_cache(maxsize=1024)
def _canonical_spec(spec: str) -> str:
    """`parse_scheme(spec).spec`, memoized: a plan repeats a few specs over thousands of
    rules and overrides, and parsing each costs ~50 µs."""
    return parse_scheme(spec).spec


@dataclass(frozen=True)
class Plan:
    """Default scheme, ordered rules, overrides as (tensor name, spec) pairs, and the model
    transforms applied before quantizing."""

    default: str = KEEP
    rules: tuple[Rule, ...] = ()
    overrides: tuple[tuple[str, str], ...] = ()
    transforms: Transforms = NO_TRANSFORMS

    def spec_for(self, info: TensorInfo) -> str:
        """The spec the plan asks for this tensor, before the scheme decides it applies."""
        if info.optimizer:
            return KEEP
        for name, spec in reversed(self.overrides):
            if name == info.name:
                return spec
        for rule in reversed(self.rules):
            if rule.matches(info):
                return rule.scheme
        return self.default

    def explicit_spec(self, info: TensorInfo) -> str | None:
        """The spec of an override naming this tensor, or of the last rule whose pattern is
        exactly its name (no wildcard); None when only globs or the default apply."""
        for name, spec in reversed(self.overrides):
            if name == info.name:
                return spec
        for rule in reversed(self.rules):
            if rule.pattern == info.name:
                return rule.scheme
        return None

    def scheme_for(self, info: TensorInfo) -> Scheme:
        """The scheme this tensor gets; non-float tensors and optimizer state stay float32.

        A tensor that is not a weight (`info.kept`) stays float32 too, unless it may be
        quantized (`kept_overridable`) and the plan names it explicitly (`explicit_spec`): a
        glob or the default is never taken as a request to quantize a bias or a Resize scale.
        """
        if not info.is_float or info.optimizer:
            return parse_scheme(KEEP)
        if info.kept is not None:
            explicit = self.explicit_spec(info) if info.kept_overridable else None
            return parse_scheme(explicit or KEEP)
        return parse_scheme(self.spec_for(info))

    def resolve(self, infos: Iterable[TensorInfo]) -> dict[str, Scheme]:
        return {info.name: self.scheme_for(info) for info in infos}

    def rule_match_counts(self, infos: Iterable[TensorInfo]) -> list[int]:
        """How many tensors each rule's glob matches (a zero is worth a warning)."""
        infos = list(infos)
        return [sum(rule.matches(i) for i in infos) for rule in self.rules]

    def unmatched_rules(self, infos: Iterable[TensorInfo]) -> list[Rule]:
        counts = self.rule_match_counts(infos)
        return [rule for rule, n in zip(self.rules, counts, strict=True) if n == 0]

    def with_default(self, spec: str) -> Plan:
        return replace(self, default=_checked_spec(spec))

    def with_rule(self, pattern: str, spec: str, index: int | None = None) -> Plan:
        rules = list(self.rules)
        rule = Rule(pattern, _checked_spec(spec))
        rules.insert(len(rules) if index is None else index, rule)
        return replace(self, rules=tuple(rules))

    def without_rule(self, index: int) -> Plan:
        rules = list(self.rules)
        del rules[index]
        return replace(self, rules=tuple(rules))

    def with_rules(self, rules: Sequence[Rule]) -> Plan:
        return replace(self, rules=tuple(Rule(r.pattern, _checked_spec(r.scheme)) for r in rules))

    def with_overrides(self, names: Iterable[str], spec: str | None) -> Plan:
        """Set (or, with `spec=None`, remove) the override of each named tensor."""
        names = list(names)
        kept = tuple((n, s) for n, s in self.overrides if n not in set(names))
        if spec is None:
            return replace(self, overrides=kept)
        spec = _checked_spec(spec)
        return replace(self, overrides=kept + tuple((n, spec) for n in names))

    def with_transforms(self, transforms: Transforms) -> Plan:
        return replace(self, transforms=transforms)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "version": 2 if self.transforms.any else PLAN_VERSION,
            "default": self.default,
            "rules": [{"pattern": r.pattern, "scheme": r.scheme} for r in self.rules],
            "overrides": dict(self.overrides),
        }
        if self.transforms.any:
            doc["transforms"] = self.transforms.to_json()
        return doc

    @classmethod
    def from_json(cls, data: Any) -> Plan:
        """Validate a parsed plan document; every problem becomes a PlanError."""
        if not isinstance(data, dict):
            raise PlanError("a plan must be a JSON object")
        version = data.get("version", PLAN_VERSION)
        if version not in PLAN_VERSIONS or isinstance(version, bool):
            shown = f"{version!r:.40}" if isinstance(version, (int, float, str)) else "given"
            raise PlanError(
                f"plan version {shown} is not supported (expected one of {PLAN_VERSIONS})"
            )
        default = data.get("default", KEEP)
        rules = data.get("rules", [])
        overrides = data.get("overrides", {})
        if not isinstance(default, str):
            raise PlanError("plan 'default' must be a scheme string")
        if not isinstance(rules, list) or not all(_is_rule(r) for r in rules):
            raise PlanError("plan 'rules' must be a list of {'pattern': str, 'scheme': str}")
        if not isinstance(overrides, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in overrides.items()
        ):
            raise PlanError("plan 'overrides' must map tensor names to scheme strings")
        return cls(
            default=_checked_spec(default),
            rules=tuple(Rule(r["pattern"], _checked_spec(r["scheme"])) for r in rules),
            overrides=tuple((k, _checked_spec(v)) for k, v in overrides.items()),
            transforms=Transforms.from_json(data.get("transforms", {})),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def loads(cls, text: str | bytes) -> Plan:
        """Parse a plan document (UTF-8 bytes or text); every problem becomes one PlanError.
        Documents over `MAX_PLAN_BYTES` are refused before parsing (parse memory stays
        bounded); nesting is bounded by the JSON parser's own depth guard."""
        if isinstance(text, bytes):
            if len(text) > MAX_PLAN_BYTES:
                raise PlanError(f"plan is {len(text)} bytes, over the {MAX_PLAN_BYTES}-byte limit")
            try:
                text = text.decode("utf-8-sig")  # a byte-order mark (Windows editors) is fine
            except UnicodeDecodeError as exc:
                raise PlanError(
                    f"plan is not UTF-8 text (byte 0x{text[exc.start]:02x} at offset {exc.start})"
                ) from None
        if len(text) > MAX_PLAN_BYTES:
            raise PlanError(f"plan is {len(text)} characters, over the {MAX_PLAN_BYTES} limit")
        try:
            data = json.loads(text)
        except RecursionError:  # the parser's depth guard: ~1000 levels, before any harm
            raise PlanError("plan is nested too deeply to be a plan") from None
        except ValueError as exc:  # JSONDecodeError, or a number of over 4300 digits
            raise PlanError(f"plan is not valid JSON: {exc!s:.200}") from None
        try:
            return cls.from_json(data)
        except RecursionError:  # a repr of a value nested just below the parser's guard
            raise PlanError("plan is nested too deeply to be a plan") from None


def _is_rule(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("pattern"), str)
        and isinstance(obj.get("scheme"), str)
    )
