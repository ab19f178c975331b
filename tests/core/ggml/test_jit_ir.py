"""The encoders repeat C's float32 arithmetic only if no temporary is float64 (numba promotes
`int * float32` and Python float literals to float64, where C's `0.1f` stays float). numba's
type inference, run on every encoder kernel and every function it calls, must find float64
nowhere but in literal constants converted by `np.float32(...)`."""

from __future__ import annotations

import numpy as np
from numba.core import compiler, ir, typed_passes, types
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import cpu_target

from inspector.core.ggml import _quant_k, _quant_k6, _quant_small, quant


def _float64_uses(py_func, args) -> tuple[list[str], list[tuple]]:
    """(float64 problems, callees as (dispatcher, arg types)) of one function."""
    typing, target = cpu_target.typing_context, cpu_target.target_context
    # numba's compiler is not thread-safe: the background kernel load (core.jit) may be
    # compiling in another thread, so inference runs under the lock numba's own compiles take.
    with global_compiler_lock:
        typing.refresh()
        target.refresh()
        res = typed_passes.type_inference_stage(
            typing, target, compiler.run_frontend(py_func), args, None
        )
    where = py_func.__qualname__
    bad = [  # literals and module constants are float64 until np.float32(...) converts them
        f"{where}: {name}"
        for name, ty in res.typemap.items()
        if ty == types.float64
        and not name.startswith(("$const", "$load_global"))
        and "load_global" not in name
    ]
    callees = []
    for expr, sig in res.calltypes.items():
        if not isinstance(expr, ir.Expr) or sig is None:
            continue
        func_ty = res.typemap.get(expr.func.name) if expr.op == "call" else None
        if types.float64 in sig.args and func_ty != types.NumberClass(types.float32):
            bad.append(f"{where}: {expr} {sig}")
        if isinstance(func_ty, types.Dispatcher):
            callees.append((func_ty.dispatcher, sig.args))
    return bad, callees


def test_no_float64_in_the_encoders():
    x = np.random.default_rng(0).standard_normal((2, 256)).astype(np.float32)
    for name in sorted(quant.QUANTIZABLE - {"f32", "f16", "bf16"}):
        quant.quantize(x, name)
        quant.quantize(x, name, np.ones(256, np.float32))
    kernels = (_quant_k.q4_k_rows, _quant_k.q5_k_rows, _quant_k.q2_k_rows, _quant_k6.q3_k_rows)
    kernels += (_quant_k6.q6_k_rows, _quant_small.iq4_nl_rows, _quant_small.iq4_xs_rows)
    kernels += tuple(_quant_small.LEGACY_KERNELS.values())
    todo = [(k, sig) for k in kernels for sig in k.signatures]
    seen, problems = set(), []
    while todo:
        fn, args = todo.pop()
        # one check per function and argument types: literal values do not change the types
        key = (fn.py_func.__qualname__, fn.py_func.__module__, tuple(map(types.unliteral, args)))
        if key in seen:
            continue
        seen.add(key)
        bad, callees = _float64_uses(fn.py_func, args)
        problems += bad
        todo += callees
    assert not problems
    checked = {name for name, _, _ in seen}
    assert {
        "make_qkx2_quants",
        "make_qp_quants",
        "_iq4_scale",
        "nearest_int",
        "f16_bits",
    } <= checked
