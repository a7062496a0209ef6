"""Activations: the scalar math of each, and the one compiled dispatch over codes.

Loops take 1-D C-contiguous arrays of one dtype and write into ``out`` (which may
be the input itself); constants are made with ``x.dtype.type`` so that float32
stays float32 throughout. Each dispatch below has one loop per activation with
the code fixed inside it, so that every loop vectorises, and raises on a code no
row of :data:`._tables.ACTIVATIONS` has. Adding an activation: its row there,
its scalar functions and one branch per dispatch here.
"""

import numpy as np

from ._exp import exp_nonpositive, expm1_nonpositive
from ._jit import inlined_kernel, kernel
from ._tables import EXP, IDENTITY, RELU, SIGMOID, SOFTMAX, TANH

# -- scalar math ---------------------------------------------------------------------


@kernel
def sigmoid_scalar(x, one):
    """``1 / (1 + exp(-x))``, stable at any finite ``x``: exp of a non-positive number
    never overflows. ``1/(1+e)`` for x >= 0 and ``e/(1+e)`` below, as a select so
    that loops calling this vectorise."""
    e = exp_nonpositive(-abs(x))
    return (one if x >= 0 else e) / (one + e)


@kernel
def tanh_scalar(x, one):
    """``tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|))`` with the sign of ``x``:
    no cancellation near 0, no overflow, and unlike libm's tanh it vectorises."""
    e = expm1_nonpositive(-(abs(x) + abs(x)))
    return np.copysign(-e / (one + one + e), x)


@kernel
def relu_scalar(x, zero):
    """``max(x, 0)`` that lets NaN through, as ``np.maximum`` does."""
    return zero if x <= zero else x


@kernel
def prime_scalar(z, code, one):
    """``f'(z)`` for activation ``code`` from the pre-activation; ``one`` sets the dtype."""
    if code == SIGMOID:
        # s(z) * s(-z) = e / (1 + e)^2 with e = exp(-|z|): exact in both tails.
        e = exp_nonpositive(-abs(z))
        d = one + e
        return e / (d * d)
    if code == TANH:
        # sech(z)^2 = 4 e / (1 + e)^2 with e = exp(-2|z|): 1 - tanh(z)^2 cancels in
        # the tails (a 1e-4 relative error at |z| = 4 in float32)
        e = exp_nonpositive(-(abs(z) + abs(z)))
        d = one + e
        return (one + one + one + one) * e / (d * d)
    if code == RELU:
        return one if z > 0 else one - one
    return one


@kernel
def prime_from_output(a, code, one):
    """``f'(z)`` written in terms of the stored ``a = f(z)`` (exact for all four)."""
    if code == SIGMOID:
        return a * (one - a)
    if code == TANH:
        return one - a * a
    if code == RELU:
        return one if a > 0 else one - one
    return one


@kernel
def _unknown(code):
    raise ValueError("unknown activation code (see kernels/_tables.py ACTIVATIONS)")


# -- loops, one per activation -----------------------------------------------------------


@kernel
def sigmoid_1d(z, out):
    one = z.dtype.type(1.0)
    # In place the first loop does all: indexing one array, it needs no overlap
    # check, which fails for out is z and would run scalar code. Trip counts
    # rather than an if spare Numba's reference counting on each call.
    same = z.ctypes.data == out.ctypes.data
    for i in range(z.size if same else 0):
        z[i] = sigmoid_scalar(z[i], one)
    for i in range(0 if same else z.size):
        out[i] = sigmoid_scalar(z[i], one)


@kernel
def tanh_1d(z, out):
    one = z.dtype.type(1.0)
    for i in range(z.size):
        out[i] = tanh_scalar(z[i], one)


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
def softmax_rows(z, out, m):
    """Row-wise ``exp(z - max) / sum(exp(z - max))`` over rows of ``m`` entries of
    the flat ``z``: exp only sees non-positive numbers, so nothing overflows."""
    one = z.dtype.type(1.0)
    for r in range(z.size // m):
        top = z[r * m]
        for j in range(r * m + 1, (r + 1) * m):
            top = max(top, z[j])
        total = 0.0
        for j in range(r * m, (r + 1) * m):  # libm's exp: a call, not the inlined polynomial
            out[j] = np.exp(z[j] - top)
            total += out[j]
        inv = one / out.dtype.type(total)
        for j in range(r * m, (r + 1) * m):
            out[j] *= inv


@kernel
def exp_1d(z, out):
    """``exp(z)``, flat (libm's: any real argument; overflow gives inf, which the
    loss then reports)."""
    for i in range(z.size):
        out[i] = np.exp(z[i])


# -- the dispatch ------------------------------------------------------------------------


#: The loop of each code, for calls from Python (one compiled loop per call).
LOOPS = {SIGMOID: sigmoid_1d, TANH: tanh_1d, RELU: relu_1d, IDENTITY: identity_1d}


@kernel
def activate_inplace(a, m, code):
    """``a = f(a)`` for the flat ``a`` of rows of ``m`` entries."""
    if code == SIGMOID:
        sigmoid_1d(a, a)
    elif code == TANH:
        tanh_1d(a, a)
    elif code == RELU:
        relu_1d(a, a)
    elif code == SOFTMAX:
        softmax_rows(a, a, m)
    elif code == EXP:
        exp_1d(a, a)
    elif code != IDENTITY:
        _unknown(code)


@inlined_kernel
def add_bias_and_activate(Z, bias, code):
    """``Z = f(Z + bias)`` in place on the (n, m) block ``Z``, in one pass rather than
    one to add and one to activate; ``IDENTITY`` only adds the bias. Element-wise
    activations only."""
    n, m = Z.shape
    one = Z.dtype.type(1.0)
    zero = one - one
    if code == SIGMOID:
        for i in range(n):
            for j in range(m):
                Z[i, j] = sigmoid_scalar(Z[i, j] + bias[j], one)
    elif code == TANH:
        for i in range(n):
            for j in range(m):
                Z[i, j] = tanh_scalar(Z[i, j] + bias[j], one)
    elif code == RELU:
        for i in range(n):
            for j in range(m):
                Z[i, j] = relu_scalar(Z[i, j] + bias[j], zero)
    elif code == IDENTITY:
        for i in range(n):
            for j in range(m):
                Z[i, j] += bias[j]
    else:
        _unknown(code)


@kernel
def backprop_through(d, s, code):
    """``d = s * f'(z)`` with ``d`` holding ``a = f(z)`` on entry: a delta replaces
    the activations whose only remaining use is their own derivative."""
    one = d.dtype.type(1.0)
    if code == SIGMOID:
        for i in range(d.size):
            d[i] = s[i] * prime_from_output(d[i], SIGMOID, one)
    elif code == TANH:
        for i in range(d.size):
            d[i] = s[i] * prime_from_output(d[i], TANH, one)
    elif code == RELU:
        for i in range(d.size):
            d[i] = s[i] * prime_from_output(d[i], RELU, one)
    elif code == IDENTITY:
        for i in range(d.size):
            d[i] = s[i]
    else:
        _unknown(code)


@kernel
def times_prime_of_output(s, a, code):
    """``s *= f'(z)`` given ``a = f(z)``, flat: the delta of a layer whose
    activations must be kept (a parallel pass needs them after every delta)."""
    one = s.dtype.type(1.0)
    if code == SIGMOID:
        for i in range(s.size):
            s[i] *= prime_from_output(a[i], SIGMOID, one)
    elif code == TANH:
        for i in range(s.size):
            s[i] *= prime_from_output(a[i], TANH, one)
    elif code == RELU:
        for i in range(s.size):
            s[i] *= prime_from_output(a[i], RELU, one)
    elif code != IDENTITY:
        _unknown(code)


@kernel
def prime_1d(z, out, code):
    """``out = f'(z)``, flat, element-wise activations."""
    # one loop per activation, each with its code fixed: with the runtime code
    # inside the loop, LLVM kept the float64 loops scalar (5.6 against 0.9 ns an
    # element for the sigmoid's)
    one = z.dtype.type(1.0)
    if code == SIGMOID:
        for i in range(z.size):
            out[i] = prime_scalar(z[i], SIGMOID, one)
    elif code == TANH:
        for i in range(z.size):
            out[i] = prime_scalar(z[i], TANH, one)
    elif code == RELU:
        for i in range(z.size):
            out[i] = prime_scalar(z[i], RELU, one)
    elif code == IDENTITY:
        for i in range(z.size):
            out[i] = one
    else:
        _unknown(code)


@kernel
def mul_prime_1d(x, z, code):
    """``x *= f'(z)``, flat, element-wise activations (one loop per activation,
    as in :func:`prime_1d`)."""
    one = x.dtype.type(1.0)
    if code == SIGMOID:
        for i in range(x.size):
            x[i] *= prime_scalar(z[i], SIGMOID, one)
    elif code == TANH:
        for i in range(x.size):
            x[i] *= prime_scalar(z[i], TANH, one)
    elif code == RELU:
        for i in range(x.size):
            x[i] *= prime_scalar(z[i], RELU, one)
    elif code != IDENTITY:
        _unknown(code)


@kernel
def residual_1d(y, yhat, out):
    """``out = yhat - y``, i.e. ``-(y - yhat)``, flat."""
    for i in range(out.size):
        out[i] = yhat[i] - y[i]
