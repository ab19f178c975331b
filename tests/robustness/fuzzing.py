"""Mutation fuzzing of the readers, shared by the CI suite (test_fuzz.py, hypothesis) and the
long campaign (fuzz_long.py, random or atheris).

A *seed* is a real model of one format copied into a work folder: the demo models under
resources/, the third-party silero-vad safetensors, and a small ONNX graph holding the demo
MLP's weights. A *case* mutates one file of the seed (byte flips, truncation, splices, inserted
bytes, or a JSON field replaced by a hostile value in model.json / the safetensors header),
writes it, then opens the model and loads every tensor. The oracle: either a clean
`InspectorError` (a `FormatError` naming the file) or a model whose every tensor loads with its
declared shape; any other exception, or running past the deadline, is a finding.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import InspectorError
from inspector.formats.registry import open_model

__all__ = [
    "FORMATS",
    "HOSTILE_VALUES",
    "CaseTimeout",
    "ForkedRunner",
    "Mutation",
    "Seed",
    "apply",
    "check",
    "close_runners",
    "deadline",
    "make_seed",
    "run_case",
]

REPO = Path(__file__).resolve().parents[2]
RESOURCES = REPO / "resources"
SHARED = (REPO.parent / "shared" / "models").resolve()
FORMATS = ("tfjs", "keras-h5", "keras", "safetensors", "npz", "onnx")
HDF5_FORMATS = frozenset({"keras-h5", "keras"})
PROBE_ENV = "QUANT_INSPECTOR_H5_PROBE"
CASE_SECONDS = 10.0
# A forked HDF5 case with no answer after this long counts as hung and is replayed with the
# product's probe (whose own timeout is PROBE_SECONDS); normal cases take milliseconds.
HDF5_CASE_SECONDS = 1.0
PROBE_SECONDS = "1"

# Values a JSON field mutation writes: wrong types, negative, huge, overflowing, paths out.
HOSTILE_VALUES: tuple[Any, ...] = (
    None,
    True,
    -1,
    0,
    1,
    3,
    1.5,
    2**31,
    2**63,
    2**64 + 1,
    10**12,
    -(10**12),
    "",
    "x",
    "float32",
    "uint8",
    "string",
    "F32",
    "BF16",
    "../outside.bin",
    "/etc/passwd",
    [],
    [0],
    [10**6, 10**6],
    [-1, 4],
    [0, 2**64],
    {},
    {"dtype": "uint8", "min": 0, "scale": 1e308},
    [[[[[]]]]],
)


@dataclass(frozen=True)
class Seed:
    """A real model in `folder`: `entry` is what `open_model` gets, `targets` the files a
    mutation may touch (with their pristine bytes), `json_targets` those holding JSON."""

    fmt: str
    folder: Path
    entry: Path
    originals: dict[str, bytes] = field(repr=False)
    json_targets: tuple[str, ...]

    def restore(self) -> None:
        apply(self, [])


@dataclass(frozen=True)
class Mutation:
    """One edit of one target file. `kind` is flip | truncate | splice | insert | json."""

    target: int
    kind: str
    pos: int
    arg: int
    data: bytes = b""


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    dst.chmod(0o644)
    return dst


def make_seed(fmt: str, folder: Path) -> Seed | None:
    """Copy the real model of `fmt` into `folder` (created); None when it is unavailable."""
    folder.mkdir(parents=True, exist_ok=True)
    mlp = RESOURCES / "diabetes_mlp"
    if fmt == "tfjs":
        for f in (mlp / "tfjs").iterdir():
            _copy(f, folder / f.name)
        entry, targets, js = folder / "model.json", ["model.json", "group1-shard1of1.bin"], 1
    elif fmt == "keras-h5":
        entry, targets, js = _copy(mlp / "diabetes_mlp.h5", folder / "m.h5"), ["m.h5"], 0
    elif fmt == "keras":
        src = RESOURCES / "digits_convnet" / "digits_convnet.keras"
        entry, targets, js = _copy(src, folder / "m.keras"), ["m.keras"], 0
    elif fmt == "safetensors":
        src = SHARED / "safetensors-silero-vad-16k" / "silero_vad_16k.safetensors"
        if not src.is_file():
            return None
        entry, targets, js = _copy(src, folder / "m.safetensors"), ["m.safetensors"], 1
    elif fmt == "npz":
        entry, targets, js = _copy(mlp / "sample.npz", folder / "m.npz"), ["m.npz"], 0
    elif fmt == "onnx":
        entry = _mlp_onnx(folder / "m.onnx")
        if entry is None:
            return None
        targets, js = ["m.onnx"], 0
    else:
        raise ValueError(f"unknown format {fmt!r}")
    originals = {t: (folder / t).read_bytes() for t in targets}
    return Seed(fmt, folder, entry, originals, tuple(targets[:js]))


def _mlp_onnx(path: Path) -> Path | None:
    """The demo MLP's real weights (read from its .h5) as an ONNX Gemm chain, built with
    onnx.helper; None without the optional onnx package."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    with open_model(RESOURCES / "diabetes_mlp" / "diabetes_mlp.h5") as model:
        arrays = [np.array(t.load()) for t in model]
    inits, nodes, prev = [], [], "x"
    for i in range(0, len(arrays), 2):
        w, b = f"fc{i // 2}.weight", f"fc{i // 2}.bias"
        inits += [numpy_helper.from_array(arrays[i], w), numpy_helper.from_array(arrays[i + 1], b)]
        out = f"h{i // 2}"
        nodes.append(helper.make_node("Gemm", [prev, w, b], [out], name=f"fc{i // 2}"))
        prev = out
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, arrays[0].shape[0]])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [None, arrays[-1].shape[0]])],
        inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.save(proto, str(path))
    return path


def apply(seed: Seed, mutations: list[Mutation]) -> None:
    """Make the seed's files the originals with `mutations` applied in order; only files whose
    content changes since the last case are written."""
    names = list(seed.originals)
    current = dict(seed.originals)
    for m in mutations:
        name = names[m.target % len(names)]
        current[name] = _mutate(current[name], m, name in seed.json_targets, seed.fmt)
    for name, data in current.items():
        if _ON_DISK.get(seed.folder / name) != data:
            (seed.folder / name).write_bytes(data)
            _ON_DISK[seed.folder / name] = data


_ON_DISK: dict[Path, bytes] = {}


def _mutate(data: bytes, m: Mutation, is_json: bool, fmt: str) -> bytes:
    n = len(data)
    if m.kind == "json" and is_json:
        return _json_mutation(data, m, fmt)
    if n == 0:
        return m.data
    pos = m.pos % (n + 1)
    if m.kind == "flip":
        pos %= n
        return data[:pos] + bytes([data[pos] ^ (m.arg % 255 + 1)]) + data[pos + 1 :]
    if m.kind == "truncate":
        return data[:pos]
    if m.kind == "splice":
        src = m.arg % n
        length = 1 + (m.arg >> 8) % 64
        return data[:pos] + data[src : src + length] + data[pos + length :]
    if m.kind == "insert":
        return data[:pos] + m.data + data[pos:]
    return data


def _json_mutation(data: bytes, m: Mutation, fmt: str) -> bytes:
    """Replace one scalar/list/dict inside the JSON document (model.json, or the safetensors
    header keeping its length prefix consistent) by a hostile value."""
    if fmt == "safetensors":
        if len(data) < 8:
            return data
        (n,) = struct.unpack("<Q", data[:8])
        head, rest = data[8 : 8 + n], data[8 + n :]
    else:
        head, rest = data, b""
    try:
        doc = json.loads(head)
    except (ValueError, RecursionError):
        return data
    slots = list(_slots(doc))
    if not slots:
        return data
    container, key = slots[m.pos % len(slots)]
    container[key] = HOSTILE_VALUES[m.arg % len(HOSTILE_VALUES)]
    body = json.dumps(doc).encode()
    if fmt == "safetensors":
        return struct.pack("<Q", len(body)) + body + rest
    return body


def _slots(doc: Any) -> Iterator[tuple[Any, Any]]:
    """(container, key) of every value in a JSON document, depth first; the huge Keras
    topology is left out of model.json so mutations land on the manifest."""
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if key == "modelTopology":
                continue
            yield node, key
            if isinstance(value, dict | list):
                stack.append(value)


class CaseTimeout(Exception):
    """A case ran past its deadline: a hang."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise `CaseTimeout` in the main thread when the block runs longer than `seconds`."""

    def fire(_sig: int, _frame: object) -> None:
        raise CaseTimeout(f"ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_case(entry: Path, seconds: float = CASE_SECONDS) -> str:
    """Open `entry` and load every tensor: "ok" or "error" (a clean InspectorError). Anything
    else propagates: another exception type, `CaseTimeout`, or an AssertionError on a tensor
    whose loaded shape differs from its header's or an error not naming the file."""
    with deadline(seconds):
        try:
            with open_model(entry) as model:
                for tensor in model:
                    arr = tensor.load()
                    assert arr.shape == tensor.info.shape, (tensor.name, arr.shape)
        except InspectorError as exc:
            path = getattr(exc, "path", None)
            assert path is None or str(entry.parent) in path or path in str(entry), exc
            return "error"
    return "ok"


class Finding(AssertionError):
    """A case whose outcome breaks the oracle (raised in the parent for a forked case)."""


class ForkedRunner:
    """Runs HDF5 cases in a long-lived forked worker, as the product isolates libhdf5.

    libhdf5 can crash or hang inside C code on damaged files, which no in-process check can
    survive; the product walks HDF5 metadata in a child process first (formats/keras/h5probe.py),
    which costs an interpreter start per file. To run thousands of cases, the worker opens
    each case's files with that probe off; when it crashes or hangs, the case is replayed in a
    fresh fork with the probe on, where it must end as a clean error, and a new worker starts.
    """

    def __init__(self, entry: Path, seconds: float = CASE_SECONDS) -> None:
        self.entry, self.seconds = entry, seconds
        self.pid: int | None = None
        self.requests = self.replies = -1

    def _start(self) -> None:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: answers one case per request byte, never returns
            os.close(req_w)
            os.close(rep_r)
            os.environ[PROBE_ENV] = "0"
            _serve(self.entry, self.seconds, req_r, rep_w)
        os.close(req_r)
        os.close(rep_w)
        self.pid, self.requests, self.replies = pid, req_w, rep_r

    def close(self) -> None:
        if self.pid is not None:
            os.close(self.requests)
            os.close(self.replies)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None

    def run(self) -> str:
        """The oracle for the files as they are now: "ok" or "error", else `Finding`."""
        if self.pid is None:
            self._start()
        os.write(self.requests, b"?")
        ready, _, _ = select.select([self.replies], [], [], self.seconds)
        reply = os.read(self.replies, 65536) if ready else b""
        if reply[:1] in (b"o", b"e"):
            return "ok" if reply[:1] == b"o" else "error"
        if reply[:1] == b"f":
            raise Finding(reply[1:].decode(errors="replace"))
        self.close()  # crashed (EOF) or hung (no reply): the product's probe must catch it
        what = "hung" if not ready else "crashed"
        replay, message = _forked(self.entry, self.seconds + 10.0, probe=True)
        if replay in ("ok", "error"):
            return replay
        raise Finding(f"libhdf5 {what} in-process and the probe did not stop it: {replay} "
                      f"{message}")  # fmt: skip


def _serve(entry: Path, seconds: float, requests: int, replies: int) -> None:
    code = 0
    try:
        while os.read(requests, 1):
            try:
                out = b"o" if run_case(entry, seconds) == "ok" else b"e"
            except BaseException as exc:
                out = f"f{type(exc).__name__}: {exc}"[:60000].encode(errors="replace")
            os.write(replies, out)
    finally:
        os._exit(code)


_RUNNERS: dict[Path, ForkedRunner] = {}


def check(seed: Seed, seconds: float = CASE_SECONDS) -> str:
    """The oracle for the seed's current (mutated) files; HDF5 formats run in a forked worker
    (one per seed, kept until `close_runners`)."""
    if seed.fmt not in HDF5_FORMATS:
        return run_case(seed.entry, seconds)
    runner = _RUNNERS.get(seed.entry)
    if runner is None:
        runner = _RUNNERS[seed.entry] = ForkedRunner(seed.entry, min(seconds, HDF5_CASE_SECONDS))
    return runner.run()


def close_runners() -> None:
    """Stop every forked worker `check` started."""
    while _RUNNERS:
        _RUNNERS.popitem()[1].close()


def _forked(entry: Path, seconds: float, probe: bool) -> tuple[str, str]:
    """("ok" | "error" | "finding" | "crashed (SIG…)" | "hung", message) of one case run in a
    fresh fork with the product's HDF5 probe on or off."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 2
        try:
            os.close(r)
            os.environ[PROBE_ENV] = "1" if probe else "0"
            os.environ["QUANT_INSPECTOR_H5_PROBE_TIMEOUT"] = PROBE_SECONDS
            code = 0 if run_case(entry, seconds) == "ok" else 1
        except BaseException as exc:
            os.write(w, f"{type(exc).__name__}: {exc}"[:4000].encode(errors="replace"))
        finally:
            os._exit(code)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], seconds)
        message = os.read(r, 4096).decode(errors="replace") if ready else ""
        if not ready:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(r)
    if not ready:
        return "hung", message
    if os.WIFSIGNALED(status):
        return f"crashed ({signal.Signals(os.WTERMSIG(status)).name})", message
    return {0: "ok", 1: "error"}.get(os.WEXITSTATUS(status), "finding"), message
