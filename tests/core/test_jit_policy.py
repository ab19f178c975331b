"""The one-shot JIT policy (issue 17): a process that computes once either loads the compiled
kernels from numba's cache before it starts, or runs numpy alone; it never compiles or loads
in the background beside the work. Each case runs in a fresh interpreter (the choice is made
once per process)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.core import jit

ROOT = Path(__file__).resolve().parents[2]
REPORT = """
import json, sys, threading
from inspector.core import jit
kernels = jit.for_one_run(int(sys.argv[1]))
again = jit.get()
print(json.dumps({
    "kernels": kernels is not None,
    "same": again is kernels,
    "numba": "numba" in sys.modules,
    "threads": [t.name for t in threading.enumerate() if t.name == "numba-kernels"],
}))
"""


def one_run(elements: int, **env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if k != "QUANT_INSPECTOR_NO_JIT"}
    full |= {"PYTHONPATH": str(ROOT), **env}
    res = subprocess.run(
        [sys.executable, "-c", REPORT, str(elements)],
        capture_output=True,
        text=True,
        env=full,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_small_work_runs_numpy_alone_without_importing_numba():
    got = one_run(jit.PAYS_FROM - 1)
    assert got == {"kernels": False, "same": True, "numba": False, "threads": []}


def test_cold_cache_runs_numpy_alone(tmp_path):
    got = one_run(10 * jit.PAYS_FROM, NUMBA_CACHE_DIR=str(tmp_path))
    assert got == {"kernels": False, "same": True, "numba": False, "threads": []}
    assert not any(tmp_path.rglob("*.nbi")), "nothing may compile during the run"


def test_warm_cache_loads_before_the_work_and_not_in_the_background():
    if jit.wait(300) is None:
        pytest.skip("numba not available")
    for name in jit.kernel_names():  # the test session's cache is complete
        getattr(jit.wait(), name)
    assert jit.cached()
    got = one_run(10 * jit.PAYS_FROM)
    assert got == {"kernels": True, "same": True, "numba": True, "threads": []}


@pytest.mark.parametrize("user_dir", [False, True])
def test_cache_dir_is_where_numba_puts_the_kernels(tmp_path, user_dir):
    """`cached()` looks where numba's own locator writes, under the index names it uses."""
    pytest.importorskip("numba")
    probe = (
        "import json; from numba.core.caching import FunctionCache; from inspector.core import jit;"
        "fc = FunctionCache(jit._affine_sums);"
        "print(json.dumps([fc._impl.locator.get_cache_path(), fc._cache_file._index_name,"
        " str(jit.cache_dir())]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    if user_dir:
        env["NUMBA_CACHE_DIR"] = str(tmp_path)
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    numba_dir, index, ours = json.loads(res.stdout)
    assert numba_dir == ours
    line = jit._affine_sums.__code__.co_firstlineno
    assert index == f"jit._affine_sums-{line}.py{sys.version_info[0]}{sys.version_info[1]}.nbi"


def test_cli_says_when_uncached_kernels_would_have_paid(tmp_path):
    """A model big enough for the kernels, run without them because nothing is cached: one
    note on stderr names `quant-inspector warmup`; the JSON on stdout is unaffected."""
    pytest.importorskip("numba")
    model = ROOT / "resources" / "digits_convnet" / "tfjs" / "model.json"
    code = (
        "import sys; from inspector.core import jit; jit.PAYS_FROM = int(sys.argv[1]);"
        "from inspector.cli import main; status = main(sys.argv[2:]);"
        "print('numba' in sys.modules, file=sys.stderr); sys.exit(status)"
    )
    env = {k: v for k, v in os.environ.items() if k != "QUANT_INSPECTOR_NO_JIT"}
    env |= {"PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(tmp_path)}
    outs = {}
    for pays_from in (1, 10**12):
        argv = [str(pays_from), "preview", str(model), "--scheme", "uint8", "--json"]
        res = subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env
        )
        assert res.returncode == 0, res.stderr
        json.loads(res.stdout)
        outs[pays_from] = res.stderr.strip().splitlines()
    assert outs[1][-1] == "False" and outs[10**12][-1] == "False"
    notes = [line for line in outs[1] if "quant-inspector warmup" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ")
    assert not any("warmup" in line for line in outs[10**12])
