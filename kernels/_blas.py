"""The BLAS that the kernels' large products call: NumPy's own, where it ships one.

NumPy's wheels bundle an OpenBLAS (``scipy_openblas64_``) that ``@`` calls. Numba
calls SciPy's instead (through ``scipy.linalg.cython_blas``), a separate copy that
may be another version: SciPy 1.17's OpenBLAS 0.3.30 ran the 32 x 784 x 128 float32
product in 106 us where NumPy 2.4's 0.3.31 took 82 us (one thread). Binding NumPy's
gives the kernels the products a user's own ``@`` gets. Where NumPy has no such
library (NumPy 1.x, an Accelerate or MKL build), the kernels keep Numba's route.

``FASTBP_BLAS=scipy`` forces Numba's route. :data:`BLAS` names the one bound; it
is part of the kernel cache's name, as compiled code calls one or the other.
"""

import ctypes
import glob
import os

import numpy as np
from llvmlite import binding, ir
from numba.core import cgutils, types
from numba.np import linalg as numba_linalg

from ._environment import requested_blas

_CBLAS_ROW_MAJOR, _CBLAS_NO_TRANS, _CBLAS_TRANS = 101, 111, 112

#: BLAS's letter for each dtype.
_KINDS = {types.float32: "s", types.float64: "d"}

#: Names the compiled kernels call NumPy's ``cblas_?gemm`` (64-bit integers) by.
_SYMBOLS = {t: f"fastbp_numpy_cblas_{kind}gemm" for t, kind in _KINDS.items()}


def _numpy_openblas():
    """Path of NumPy's bundled ``scipy_openblas64_``, after registering its
    ``cblas_sgemm``/``cblas_dgemm`` under :data:`_SYMBOLS`; None where NumPy has
    none (or it cannot be loaded)."""
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    here = os.path.dirname(os.path.abspath(np.__file__))
    patterns = [os.path.join(here, os.pardir, "numpy.libs", "*scipy_openblas64_*"),
                os.path.join(here, ".dylibs", "*scipy_openblas64_*")]
    for path in sorted(p for pattern in patterns for p in glob.glob(pattern)):
        try:
            # only the copy NumPy loaded (POSIX can insist on that), never a second one
            lib = ctypes.CDLL(path, mode=ctypes.DEFAULT_MODE | getattr(os, "RTLD_NOLOAD", 0))
            functions = {t: getattr(lib, f"scipy_cblas_{kind}gemm64_")
                         for t, kind in _KINDS.items()}
        except (OSError, AttributeError):
            continue
        for dtype, function in functions.items():
            binding.add_symbol(_SYMBOLS[dtype], ctypes.cast(function, ctypes.c_void_p).value)
        return os.path.realpath(path)
    return None


_WANTED = requested_blas()

#: Shared library of the BLAS bound (None: SciPy's, through Numba).
LIBRARY = _numpy_openblas() if _WANTED == "numpy" else None

#: ``"numpy"`` (NumPy's bundled OpenBLAS) or ``"scipy"`` (Numba's route).
BLAS = "numpy" if LIBRARY else "scipy"


def prepare_gemm():
    """Called when typing a product: loads Numba's BLAS where it is the one used."""
    if BLAS == "scipy":
        numba_linalg.ensure_blas()


def emit_gemm(context, builder, dtype, trans_a, trans_b, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc):
    """Emit ``C = alpha * op(A) @ op(B) + beta * C`` on row-major matrices: C (m, n),
    op(A) (m, k), op(B) (k, n), row strides ``lda``, ``ldb``, ``ldc``.
    ``trans_a``/``trans_b``: i1 values; ``m`` ... ``ldc``: intp values; ``alpha``,
    ``beta``: values of ``dtype``; ``a``, ``b``, ``c``: data pointers."""
    intp = numba_linalg.intp_t
    if BLAS == "numpy":
        i32 = ir.IntType(32)
        real = context.get_value_type(dtype)
        ptr = real.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, intp, intp, intp, real, ptr,
                                               intp, ptr, intp, real, ptr, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOLS[dtype])

        def trans(flag):
            return builder.select(flag, ir.Constant(i32, _CBLAS_TRANS),
                                  ir.Constant(i32, _CBLAS_NO_TRANS))

        builder.call(fn, (ir.Constant(i32, _CBLAS_ROW_MAJOR), trans(trans_a), trans(trans_b),
                          m, n, k, alpha, builder.bitcast(a, ptr), lda, builder.bitcast(b, ptr),
                          ldb, beta, builder.bitcast(c, ptr), ldc))
        return

    # Numba's helper takes Fortran's column-major view, where a row-major matrix
    # is its transpose: C' = op(B)' op(A)', with the scalars passed by pointer
    char, void_p = numba_linalg.ll_char, numba_linalg.ll_void_p

    def trans(flag):
        return builder.select(flag, ir.Constant(char, ord("t")), ir.Constant(char, ord("n")))

    def pointer(value):
        return builder.bitcast(cgutils.alloca_once_value(builder, value), void_p)

    fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp, void_p, void_p,
                                            intp, void_p, intp, void_p, void_p, intp])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
    kind = ir.Constant(char, ord(_KINDS[dtype]))
    res = builder.call(fn, (kind, trans(trans_b), trans(trans_a), n, m, k, pointer(alpha),
                            builder.bitcast(b, void_p), ldb, builder.bitcast(a, void_p), lda,
                            pointer(beta), builder.bitcast(c, void_p), ldc))
    numba_linalg.check_blas_return(context, builder, res)
