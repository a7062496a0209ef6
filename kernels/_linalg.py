"""Matrix products for backpropagation, on 2-D C-contiguous arrays of one dtype.

Small products run as explicit loops (a BLAS call costs more than the arithmetic);
large ones go to BLAS (:func:`gemm_scaled`). Transposes are never copied: ``A.T`` is
passed to BLAS as a view, and the loops index the untransposed array.
"""

import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from ._blas import emit_gemm, prepare_gemm
from ._jit import NO_ACCUMULATE, kernel

#: Multiply-adds above which a BLAS call beats the loops. Measured on one thread:
#: BLAS wins from about 500 multiply-adds (8x8x8: 0.16 us against 0.4 us) and by
#: 5-20x at 16384; the loops win only for a few dozen (a 3x2x3 product: 0.07 us).
SMALL_PRODUCT = 256


@kernel
def _blas_product(A, B, C, accumulate):
    """``C = A @ B`` (or ``+=``) in one BLAS call: ``A``, ``B`` C-ordered or
    transposed views. Numba's ``np.dot`` would compile its own checks for every
    layout and allocate a temporary to accumulate."""
    one = C.dtype.type(1.0)
    gemm_scaled(A, B, C, one, one if accumulate else one - one)


@kernel
def gemm_nn(A, B, C, accumulate):
    """``C = A @ B`` (or ``C += A @ B``); A (n, k), B (k, m), C (n, m)."""
    n, k = A.shape
    m = B.shape[1]
    if n * k * m > SMALL_PRODUCT:
        _blas_product(A, B, C, accumulate)
        return
    zero = C.dtype.type(0.0)
    for i in range(n):
        if not accumulate:
            for j in range(m):
                C[i, j] = zero
        for p in range(k):
            aip = A[i, p]
            for j in range(m):
                C[i, j] += aip * B[p, j]


@kernel
def gemm_nt(A, B, C, accumulate):
    """``C = A @ B.T`` (or ``+=``); A (n, k), B (m, k), C (n, m)."""
    n, k = A.shape
    m = B.shape[0]
    if n * k * m > SMALL_PRODUCT:
        _blas_product(A, B.T, C, accumulate)
        return
    for i in range(n):
        for j in range(m):
            s = C.dtype.type(0.0)
            for p in range(k):
                s += A[i, p] * B[j, p]
            if accumulate:
                C[i, j] += s
            else:
                C[i, j] = s


@kernel
def gemm_tn(A, B, C, accumulate):
    """``C = A.T @ B`` (or ``+=``); A (n, p), B (n, q), C (p, q)."""
    n, p = A.shape
    q = B.shape[1]
    if n * p * q > SMALL_PRODUCT:
        _blas_product(A.T, B, C, accumulate)
        return
    if not accumulate:
        C[:, :] = C.dtype.type(0.0)
    for r in range(n):
        for i in range(p):
            a = A[r, i]
            for j in range(q):
                C[i, j] += a * B[r, j]


@kernel
def column_sums(D, out, accumulate):
    """``out = D.sum(axis=0)`` (or ``+=``); D (n, m), out (m,)."""
    n, m = D.shape
    if not accumulate:
        out[:] = D.dtype.type(0.0)
    for r in range(n):
        for j in range(m):
            out[j] += D[r, j]


# Flat-offset variants for the fused network passes: operands are 1-D C arrays
# holding row-major matrices at an offset. Tiny networks spend most of their
# time creating array views, so the loop path indexes the flat buffers directly
# and only the BLAS path builds 2-D views.


@kernel
def gemm_nn_flat(A, a0, B, b0, C, c0, n, k, m):
    """``C = A @ B`` with A (n, k) at ``A[a0:]``, B (k, m) at ``B[b0:]``, C (n, m) at ``C[c0:]``."""
    if n * k * m > SMALL_PRODUCT:
        gemm_nn(A[a0 : a0 + n * k].reshape((n, k)), B[b0 : b0 + k * m].reshape((k, m)),
                C[c0 : c0 + n * m].reshape((n, m)), NO_ACCUMULATE)
        return
    zero = C.dtype.type(0.0)
    for i in range(n):
        ci = c0 + i * m
        for j in range(m):
            C[ci + j] = zero
        for p in range(k):
            aip = A[a0 + i * k + p]
            bp = b0 + p * m
            for j in range(m):
                C[ci + j] += aip * B[bp + j]


@kernel
def gemm_nt_flat(A, a0, B, b0, C, c0, n, k, m):
    """``C = A @ B.T`` with A (n, k), B (m, k), C (n, m), each at its offset."""
    if n * k * m > SMALL_PRODUCT:
        gemm_nt(A[a0 : a0 + n * k].reshape((n, k)), B[b0 : b0 + m * k].reshape((m, k)),
                C[c0 : c0 + n * m].reshape((n, m)), NO_ACCUMULATE)
        return
    for i in range(n):
        for j in range(m):
            s = C.dtype.type(0.0)
            for p in range(k):
                s += A[a0 + i * k + p] * B[b0 + j * k + p]
            C[c0 + i * m + j] = s


# -- C = alpha * A @ B + beta * C in one BLAS call --------------------------------------


def gemm_scaled(A, B, C, alpha, beta):
    """``C = alpha * (A @ B) + beta * C``: A (n, k), B (k, m) C- or Fortran-ordered
    (a transposed view), C (n, m) C-ordered, one float dtype. An SGD step written
    into the weights by the product itself, with no gradient buffer to fill and
    read back. As in BLAS, ``beta == 0`` never reads ``C``. Without the JIT, plain
    NumPy."""
    if beta == 0:
        C[...] = alpha * (A @ B)
    else:
        C *= beta
        C += alpha * (A @ B)


@intrinsic
def _gemm_scaled_ir(typingctx, A, B, C, alpha, beta):
    arrays = (A, B, C)
    if not (all(isinstance(t, types.Array) and t.ndim == 2 for t in arrays)
            and A.dtype == B.dtype == C.dtype and A.dtype in (types.float32, types.float64)
            and A.layout in "CF" and B.layout in "CF" and C.layout == "C"
            and isinstance(alpha, types.Float) and isinstance(beta, types.Float)):
        return None
    prepare_gemm()

    def codegen(context, builder, sig, args):
        dtype = sig.args[0].dtype
        a, b, c = (context.make_array(t)(context, builder, v)
                   for t, v in zip(sig.args[:3], args[:3]))
        (m, k), (_, n), _ = (cgutils.unpack_tuple(builder, x.shape, 2) for x in (a, b, c))
        # a Fortran-ordered operand is the transpose of a row-major matrix
        trans_a, trans_b = (cgutils.true_bit if t.layout == "F" else cgutils.false_bit
                            for t in sig.args[:2])
        lda = k if sig.args[0].layout == "C" else m
        ldb = n if sig.args[1].layout == "C" else k
        alpha, beta = (context.cast(builder, v, t, dtype) for v, t in zip(args[3:], sig.args[3:]))
        emit_gemm(context, builder, dtype, trans_a, trans_b, m, n, k,
                  alpha, a.data, lda, b.data, ldb, beta, c.data, n)
        return context.get_dummy_value()

    return types.none(A, B, C, alpha, beta), codegen


@overload(gemm_scaled)
def _gemm_scaled_overload(A, B, C, alpha, beta):
    return lambda A, B, C, alpha, beta: _gemm_scaled_ir(A, B, C, alpha, beta)


# -- C = alpha * op(A) @ op(B) + beta * C on flat buffers, with leading dimensions ---------


def gemm_strided(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    """``C = alpha * op(A) @ op(B) + beta * C`` on row-major matrices that start at
    ``A[0]``, ``B[0]``, ``C[0]`` (1-D C arrays, sliced to the offset by the caller)
    with row strides ``lda``, ``ldb``, ``ldc``: C (m, n), op(A) (m, k), op(B) (k, n);
    ``op(X) = X.T`` when its ``trans`` is true. A block of columns (a slice of a
    row-major matrix) is one call, with no copy. Without the JIT, plain NumPy."""
    def matrix(X, rows, cols, ld):
        return np.lib.stride_tricks.as_strided(X, (rows, cols), (ld * X.itemsize, X.itemsize))

    opA = matrix(A, k, m, lda).T if trans_a else matrix(A, m, k, lda)
    opB = matrix(B, n, k, ldb).T if trans_b else matrix(B, k, n, ldb)
    Cm = matrix(C, m, n, ldc)
    if beta == 0:
        Cm[...] = alpha * (opA @ opB)
    else:
        Cm *= beta
        Cm += alpha * (opA @ opB)


@intrinsic
def _gemm_strided_ir(typingctx, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    arrays = (A, B, C)
    if not (all(isinstance(t, types.Array) and t.ndim == 1 and t.layout == "C" for t in arrays)
            and A.dtype == B.dtype == C.dtype and A.dtype in (types.float32, types.float64)
            and all(isinstance(t, types.Integer) for t in (m, n, k, lda, ldb, ldc))
            and all(isinstance(t, types.Boolean) for t in (trans_a, trans_b))
            and isinstance(alpha, types.Float) and isinstance(beta, types.Float)):
        return None
    prepare_gemm()

    def codegen(context, builder, sig, args):
        dtype = sig.args[6].dtype
        ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc = args
        m, n, k, lda, ldb, ldc = (context.cast(builder, args[i], sig.args[i], types.intp)
                                  for i in (2, 3, 4, 7, 9, 12))
        alpha, beta = (context.cast(builder, v, sig.args[i], dtype)
                       for v, i in ((alpha, 5), (beta, 10)))
        a, b, c = (context.make_array(sig.args[i])(context, builder, v).data
                   for v, i in ((a, 6), (b, 8), (c, 11)))
        emit_gemm(context, builder, dtype, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return context.get_dummy_value()

    return types.none(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc), codegen


@overload(gemm_strided)
def _gemm_strided_overload(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    def impl(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        if m > 0 and n > 0:  # BLAS rejects empty blocks' leading dimensions
            _gemm_strided_ir(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
    return impl
