"""Checkpoint objects (dicts, lists, tensors) → tensors with dotted names.

`torch.save` takes any nesting: a bare state dict, `{"state_dict": sd, "epoch": 3}`,
`{"model": sd, "optimizer": opt.state_dict()}`, lists of tensors. Tensors get the dotted path of
keys and indices that reaches them; a state dict wrapped in one of `WRAPPERS` loses that prefix
(`{"model": {"fc.weight": …}}` gives `fc.weight`) when no name collides; everything under a
key naming an optimizer is optimizer state. A tensor reached twice — the same object, or the
same view of the same storage (tied weights saved as two detached tensors) — is listed once
and its other names are recorded as aliases. Containers reached twice are walked once, so a
pickle of shared references cannot make the walk exponential; depth and size are bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inspector.formats.torch.unpickler import TensorRef

__all__ = ["MAX_DEPTH", "MAX_NODES", "WRAPPERS", "Flat", "TooLarge", "flatten"]

WRAPPERS = ("state_dict", "model_state_dict", "model", "module", "net")
MAX_DEPTH = 64
MAX_NODES = 1 << 20
_MAX_EXTRAS = 1000


class TooLarge(ValueError):
    """The object nests deeper than `MAX_DEPTH` or holds more than `MAX_NODES` items."""


@dataclass
class Flat:
    """Tensors in pickle order as (name, tensor, is optimizer state); `aliases` maps a
    repeated name to the name listed; `extras` are the other leaves (epoch, lr, …) as text."""

    tensors: list[tuple[str, TensorRef, bool]] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    extras: dict[str, str] = field(default_factory=dict)


def _children(obj: Any) -> list[tuple[str, Any]] | None:
    if isinstance(obj, dict):
        return [(str(k), v) for k, v in obj.items()]
    if isinstance(obj, list | tuple):
        return [(str(i), v) for i, v in enumerate(obj)]
    return None


def _view_key(t: TensorRef) -> tuple[Any, ...]:
    return (t.storage.key, t.dtype, t.offset, t.shape, t.stride)


class _Walk:
    def __init__(self) -> None:
        self.flat = Flat()
        self.by_view: dict[tuple[Any, ...], str] = {}
        self.containers: dict[int, str] = {}
        self.nodes = 0

    def leaf(self, name: str, obj: Any, optimizer: bool) -> None:
        if isinstance(obj, TensorRef):
            first = self.by_view.get(_view_key(obj))
            if first is not None:
                self.flat.aliases[name or "tensor"] = first
                return
            self.by_view[_view_key(obj)] = name or "tensor"
            self.flat.tensors.append((name or "tensor", obj, optimizer))
        elif len(self.flat.extras) < _MAX_EXTRAS:
            self.flat.extras[name] = repr(obj)[:200]

    def run(self, root: Any) -> Flat:
        stack: list[tuple[str, Any, int, bool]] = [("", root, 0, False)]
        while stack:
            name, obj, depth, optimizer = stack.pop()
            kids = _children(obj)
            if kids is None:
                self.leaf(name, obj, optimizer)
                continue
            if depth >= MAX_DEPTH:
                raise TooLarge(
                    f"the checkpoint nests deeper than {MAX_DEPTH} levels at {name!r:.80}"
                )
            if id(obj) in self.containers:
                self.flat.aliases[name] = self.containers[id(obj)]
                continue
            self.containers[id(obj)] = name
            self.nodes += len(kids)
            if self.nodes > MAX_NODES:
                raise TooLarge(f"the checkpoint holds more than {MAX_NODES} objects")
            for key, value in reversed(kids):
                child = f"{name}.{key}" if name else key
                opt = optimizer or (depth == 0 and "optim" in key.lower())
                stack.append((child, value, depth + 1, opt))
        return self.flat


def _unwrap(flat: Flat, root: Any) -> None:
    if not isinstance(root, dict):
        return
    wrappers = [k for k in WRAPPERS if isinstance(root.get(k), dict)]
    if len(wrappers) != 1:
        return
    prefix = wrappers[0] + "."
    names = [n for n, _, _ in flat.tensors]
    renamed = [n.removeprefix(prefix) for n in names]
    if len(set(renamed)) != len(renamed) or any(not n for n in renamed):
        return
    flat.tensors = [(r, t, o) for r, (_, t, o) in zip(renamed, flat.tensors, strict=True)]
    flat.aliases = {a.removeprefix(prefix): b.removeprefix(prefix) for a, b in flat.aliases.items()}


def flatten(root: Any) -> Flat:
    """Every tensor of an unpickled checkpoint with its dotted name (see the module doc)."""
    flat = _Walk().run(root)
    _unwrap(flat, root)
    return flat
