"""Matrix products for backpropagation, on 2-D C-contiguous arrays of one dtype.

Small products run as explicit loops (a BLAS call costs more than the arithmetic);
large ones go to BLAS through ``np.dot``. Transposes are never copied: ``A.T`` is
passed to BLAS as a view, and the loops index the untransposed array.
"""

import numpy as np

from ._jit import kernel

#: Multiply-adds below which the loops beat a BLAS call.
SMALL_PRODUCT = 16384


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
