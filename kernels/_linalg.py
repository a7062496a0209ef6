"""Matrix products for backpropagation, on 2-D C-contiguous arrays of one dtype.

Small products run as explicit loops (a BLAS call costs more than the arithmetic);
large ones go to BLAS through ``np.dot``. Transposes are never copied: ``A.T`` is
passed to BLAS as a view, and the loops index the untransposed array.
"""

import numpy as np

from ._jit import NO_ACCUMULATE, kernel

#: Multiply-adds above which a BLAS call beats the loops. Measured on one thread:
#: BLAS wins from about 500 multiply-adds (8x8x8: 0.16 us against 0.4 us) and by
#: 5-20x at 16384; the loops win only for a few dozen (a 3x2x3 product: 0.07 us).
SMALL_PRODUCT = 256


@kernel
def gemm_nn(A, B, C, accumulate):
    """``C = A @ B`` (or ``C += A @ B``); A (n, k), B (k, m), C (n, m)."""
    n, k = A.shape
    m = B.shape[1]
    if n * k * m > SMALL_PRODUCT:
        if accumulate:
            C += np.dot(A, B)
        else:
            np.dot(A, B, C)
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
        if accumulate:
            C += np.dot(A, B.T)
        else:
            np.dot(A, B.T, C)
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
        if accumulate:
            C += np.dot(A.T, B)
        else:
            np.dot(A.T, B, C)
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


@kernel
def gemm_tn_flat(A, a0, B, b0, C, c0, n, p, q):
    """``C = A.T @ B`` with A (n, p), B (n, q), C (p, q), each at its offset."""
    if n * p * q > SMALL_PRODUCT:
        gemm_tn(A[a0 : a0 + n * p].reshape((n, p)), B[b0 : b0 + n * q].reshape((n, q)),
                C[c0 : c0 + p * q].reshape((p, q)), NO_ACCUMULATE)
        return
    zero = C.dtype.type(0.0)
    for i in range(p * q):
        C[c0 + i] = zero
    for r in range(n):
        for i in range(p):
            a = A[a0 + r * p + i]
            ci = c0 + i * q
            br = b0 + r * q
            for j in range(q):
                C[ci + j] += a * B[br + j]
