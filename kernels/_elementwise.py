"""Element-wise kernels on flat, contiguous float32/float64 arrays.

Every function takes 1-D C-contiguous inputs of one dtype and writes into ``out``
(which may be the input itself); constants are made with ``x.dtype.type`` so that
float32 stays float32 throughout.
"""

import numpy as np

from ._exp import exp_nonpositive, expm1_nonpositive
from ._jit import kernel

# Activation codes shared by the fused network kernels and the Python API.
SIGMOID, TANH, RELU, IDENTITY = 0, 1, 2, 3


@kernel
def sigmoid_scalar(x, one):
    """``1 / (1 + exp(-x))``, stable at any finite ``x``: exp of a non-positive number
    never overflows. ``1/(1+e)`` for x >= 0 and ``e/(1+e)`` below, as a select so
    that loops calling this vectorise."""
    e = exp_nonpositive(-abs(x))
    return (one if x >= 0 else e) / (one + e)


@kernel
def sigmoid_1d(z, out):
    one = z.dtype.type(1.0)
    # In place (activate_inplace) the first loop does all: indexing one array, it
    # needs no overlap check, which fails for out is z and would run scalar code.
    # Trip counts rather than an if spare Numba's reference counting on each call.
    same = z.ctypes.data == out.ctypes.data
    for i in range(z.size if same else 0):
        z[i] = sigmoid_scalar(z[i], one)
    for i in range(0 if same else z.size):
        out[i] = sigmoid_scalar(z[i], one)


@kernel
def tanh_scalar(x, one):
    """``tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|))`` with the sign of ``x``:
    no cancellation near 0, no overflow, and unlike libm's tanh it vectorises."""
    e = expm1_nonpositive(-(abs(x) + abs(x)))
    return np.copysign(-e / (one + one + e), x)


@kernel
def tanh_1d(z, out):
    one = z.dtype.type(1.0)
    for i in range(z.size):
        out[i] = tanh_scalar(z[i], one)


@kernel
def relu_scalar(x, zero):
    """``max(x, 0)`` that lets NaN through, as ``np.maximum`` does."""
    return zero if x <= zero else x


@kernel
def relu_1d(z, out):
    zero = z.dtype.type(0.0)
    for i in range(z.size):
        out[i] = relu_scalar(z[i], zero)


@kernel
def identity_1d(z, out):
    for i in range(z.size):
        out[i] = z[i]


@kernel
def activate_inplace(a, code):
    """Apply activation ``code`` to the flat array ``a`` in place."""
    if code == SIGMOID:
        sigmoid_1d(a, a)
    elif code == TANH:
        tanh_1d(a, a)
    elif code == RELU:
        relu_1d(a, a)


@kernel
def prime_scalar(z, code, one):
    """``f'(z)`` for activation ``code`` from the pre-activation; ``one`` sets the dtype."""
    if code == SIGMOID:
        # s(z) * s(-z) = e / (1 + e)^2 with e = exp(-|z|): exact in both tails.
        e = exp_nonpositive(-abs(z))
        d = one + e
        return e / (d * d)
    if code == TANH:
        t = tanh_scalar(z, one)
        return one - t * t
    if code == RELU:
        return one if z > 0 else one - one
    return one


@kernel
def prime_1d(z, out, code):
    """``out = f'(z)``, flat."""
    one = z.dtype.type(1.0)
    for i in range(z.size):
        out[i] = prime_scalar(z[i], code, one)


@kernel
def mul_prime_1d(x, z, code):
    """``x *= f'(z)``, flat."""
    one = x.dtype.type(1.0)
    for i in range(x.size):
        x[i] *= prime_scalar(z[i], code, one)


@kernel
def residual_1d(y, yhat, out):
    """``out = yhat - y``, i.e. ``-(y - yhat)``, flat."""
    for i in range(out.size):
        out[i] = yhat[i] - y[i]
