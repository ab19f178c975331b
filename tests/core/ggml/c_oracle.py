"""ctypes access to llama.cpp's libggml-base (dev time only: CI has no llama.cpp).

`GGML_LIB` names the library; by default the build of /work/shared/TOOLING.md. The functions
called are the ones llama-quantize calls: `ggml_quantize_chunk` (which dispatches to
`quantize_q4_K` etc. with or without an importance matrix) and the type traits' `to_float`.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache
from pathlib import Path

import numpy as np

DEFAULT = "/work/tools/llbuild/bin/libggml-base.so"

_DEQUANT = {
    "q4_0": "dequantize_row_q4_0",
    "q4_1": "dequantize_row_q4_1",
    "q5_0": "dequantize_row_q5_0",
    "q5_1": "dequantize_row_q5_1",
    "q8_0": "dequantize_row_q8_0",
    "q1_0": "dequantize_row_q1_0",
    "q2_0": "dequantize_row_q2_0",
    "mxfp4": "dequantize_row_mxfp4",
    "nvfp4": "dequantize_row_nvfp4",
    "q2_k": "dequantize_row_q2_K",
    "q3_k": "dequantize_row_q3_K",
    "q4_k": "dequantize_row_q4_K",
    "q5_k": "dequantize_row_q5_K",
    "q6_k": "dequantize_row_q6_K",
    "q8_k": "dequantize_row_q8_K",
    "tq1_0": "dequantize_row_tq1_0",
    "tq2_0": "dequantize_row_tq2_0",
    "iq2_xxs": "dequantize_row_iq2_xxs",
    "iq2_xs": "dequantize_row_iq2_xs",
    "iq2_s": "dequantize_row_iq2_s",
    "iq3_xxs": "dequantize_row_iq3_xxs",
    "iq3_s": "dequantize_row_iq3_s",
    "iq1_s": "dequantize_row_iq1_s",
    "iq1_m": "dequantize_row_iq1_m",
    "iq4_nl": "dequantize_row_iq4_nl",
    "iq4_xs": "dequantize_row_iq4_xs",
}


@cache
def lib() -> ctypes.CDLL | None:
    path = os.environ.get("GGML_LIB", DEFAULT)
    if not Path(path).exists():
        return None
    handle = ctypes.CDLL(path)
    handle.ggml_quantize_chunk.restype = ctypes.c_size_t
    handle.ggml_quantize_chunk.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_void_p,
    ]
    return handle


def quantize(x: np.ndarray, type_id: int, row_bytes: int, imatrix: np.ndarray | None = None):
    """llama.cpp's bytes for float32 rows `x` (rows, ne0)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros((x.shape[0], row_bytes), dtype=np.uint8)
    im = None
    if imatrix is not None:
        imatrix = np.ascontiguousarray(imatrix, dtype=np.float32)
        im = imatrix.ctypes.data
    lib().ggml_quantize_chunk(
        type_id, x.ctypes.data, out.ctypes.data, 0, x.shape[0], x.shape[1], im
    )
    return out


def dequantize(raw: np.ndarray, name: str, n_values: int) -> np.ndarray:
    fn = getattr(lib(), _DEQUANT[name])
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    out = np.empty(n_values, dtype=np.float32)
    fn(raw.ctypes.data, out.ctypes.data, n_values)
    return out
