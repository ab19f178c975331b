"""`quant-inspector warmup`: compile the fused kernels once into numba's on-disk cache.

A one-shot command never compiles (a compile takes 30-60 s of one core on a two-core machine
and would race the work it should speed up): without a cache it runs numpy alone. This command
does the compile ahead of time, with a progress line, then measures in a fresh process what
loading the cached kernels costs, the figure one-shot runs weigh against their work
(`inspector.core.jit.PAYS_FROM`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable

__all__ = ["COMMANDS", "load_cost"]

_LOAD_PROBE = (
    "import time; t = time.perf_counter(); from inspector.core import jit; "
    "k = jit.for_one_run(jit.PAYS_FROM); k.affine_encode; k.affine_sums; k.code_counts; "
    "print(k is not None, time.perf_counter() - t)"
)


def load_cost() -> tuple[bool, float]:
    """(kernels came from the cache, seconds to import numba and load the three kernels a
    uint8 preview uses), measured in a fresh interpreter as a one-shot run sees it."""
    import os

    import inspector

    root = os.path.dirname(os.path.dirname(os.path.abspath(inspector.__file__)))
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )
    res = subprocess.run(
        [sys.executable, "-c", _LOAD_PROBE], capture_output=True, text=True, env=env, check=False
    )
    words = res.stdout.split()
    if res.returncode != 0 or len(words) != 2:
        return False, float("nan")
    return words[0] == "True", float(words[1])


def _cmd_warmup(args: argparse.Namespace) -> int:
    from inspector.core import jit

    if jit.disabled():
        print("quant-inspector: QUANT_INSPECTOR_NO_JIT is set: nothing to compile", file=sys.stderr)
        return 0
    if not jit.available():
        print("quant-inspector: numba is not installed: the numpy paths are used", file=sys.stderr)
        return 0
    start = time.perf_counter()
    tty = sys.stderr.isatty()

    def progress(i: int, n: int, name: str) -> None:
        line = f"compiling kernel {i + 1}/{n}: {name}"
        print(
            f"\r{line:<60}" if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True
        )

    if jit.load_all(progress) is None:
        print("quant-inspector: error: numba could not compile the kernels", file=sys.stderr)
        return 2
    took = time.perf_counter() - start
    if tty:
        print(file=sys.stderr)
    print(f"kernels ready in {took:.1f} s, cached in {jit.cache_dir()}")
    if not args.no_measure:
        ok, cost = load_cost()
        if ok:
            print(f"loading them in a new process costs {cost:.2f} s (numba import included)")
        else:
            print("warning: a new process did not find the kernels in the cache", file=sys.stderr)
    return 0


def _parser_warmup(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "warmup", help="compile the fast kernels once into numba's cache (about a minute)"
    )
    p.add_argument("--no-measure", action="store_true", help="skip measuring the cache's load time")
    p.set_defaults(func=_cmd_warmup)


COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {"warmup": _parser_warmup}
