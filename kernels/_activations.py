"""Activations: the compiled math of each, and every loop over them derived from
one record per activation.

Loops take 1-D C-contiguous arrays of one dtype and write into ``out`` (which may
be the input itself); constants are made with ``x.dtype.type`` so that float32
stays float32 throughout. Each record below (:data:`ELEMENTWISE_KERNELS`,
:data:`ROWS`) is the compiled side of a row of :data:`._tables.ACTIVATIONS`; the
dispatches at the end are generated from them (:mod:`._generate`), one loop per
activation, each raising on a code no row has.
"""

from typing import NamedTuple

import numpy as np

from ._exp import exp_nonpositive, expm1_nonpositive
from ._generate import by_code, specialise
from ._jit import inlined_kernel, kernel
from ._tables import ACTIVATIONS, ELEMENTWISE, EXP, IDENTITY, RELU, SIGMOID, SOFTMAX, TANH

# -- scalar math: f(x, one), and f' from the pre-activation z or the output a -------------
# ``one`` is 1 in the arrays' dtype.


@kernel
def sigmoid_scalar(x, one):
    """``1 / (1 + exp(-x))``, stable at any finite ``x``: exp of a non-positive number
    never overflows. ``1/(1+e)`` for x >= 0 and ``e/(1+e)`` below, as a select so
    that loops calling this vectorise."""
    e = exp_nonpositive(-abs(x))
    return (one if x >= 0 else e) / (one + e)


@inlined_kernel
def sigmoid_prime(z, one):
    """s(z) * s(-z) = e / (1 + e)^2 with e = exp(-|z|): exact in both tails."""
    e = exp_nonpositive(-abs(z))
    d = one + e
    return e / (d * d)


@inlined_kernel
def sigmoid_prime_from_output(a, one):
    return a * (one - a)


@kernel
def tanh_scalar(x, one):
    """``tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|))`` with the sign of ``x``:
    no cancellation near 0, no overflow, and unlike libm's tanh it vectorises."""
    e = expm1_nonpositive(-(abs(x) + abs(x)))
    return np.copysign(-e / (one + one + e), x)


@inlined_kernel
def tanh_prime(z, one):
    """sech(z)^2 = 4 e / (1 + e)^2 with e = exp(-2|z|): 1 - tanh(z)^2 cancels in
    the tails (a 1e-4 relative error at |z| = 4 in float32)."""
    e = exp_nonpositive(-(abs(z) + abs(z)))
    d = one + e
    return (one + one + one + one) * e / (d * d)


@inlined_kernel
def tanh_prime_from_output(a, one):
    return one - a * a


@kernel
def relu_scalar(x, one):
    """``max(x, 0)`` that lets NaN through, as ``np.maximum`` does."""
    zero = one - one
    return zero if x <= zero else x


@inlined_kernel
def relu_prime(z, one):
    return one if z > 0 else one - one


@inlined_kernel
def identity_scalar(x, one):
    return x


@inlined_kernel
def identity_prime(z, one):
    return one


class Elementwise(NamedTuple):
    """The compiled math of an element-wise activation."""

    f: object  #: f(x, one)
    prime: object  #: f'(z) from the pre-activation, (z, one)
    prime_from_output: object  #: f'(z) from a = f(z), (a, one): exact for every row


#: Code -> the compiled math of every element-wise activation.
ELEMENTWISE_KERNELS = {
    SIGMOID: Elementwise(sigmoid_scalar, sigmoid_prime, sigmoid_prime_from_output),
    TANH: Elementwise(tanh_scalar, tanh_prime, tanh_prime_from_output),
    RELU: Elementwise(relu_scalar, relu_prime, relu_prime),
    IDENTITY: Elementwise(identity_scalar, identity_prime, identity_prime),
}


# -- loops over the rows ------------------------------------------------------------------


def _map_1d(z, out):
    """``out = f(z)``, flat (a template: see :func:`elementwise_rows`)."""
    one = z.dtype.type(1.0)
    # In place the first loop does all: indexing one array, it needs no overlap
    # check, which fails for out is z and would run scalar code. Trip counts
    # rather than an if spare Numba's reference counting on each call.
    same = z.ctypes.data == out.ctypes.data
    for i in range(z.size if same else 0):
        z[i] = f(z[i], one)  # noqa: F821 (a field of the record)
    for i in range(0 if same else z.size):
        out[i] = f(z[i], one)  # noqa: F821


def elementwise_loop(name, math):
    """The flat loop ``(z, out)`` of an element-wise activation, ``name_1d``."""
    return specialise(_map_1d, f"{name}_1d", math, kernel)


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
def exp_rows(z, out, m):
    """``exp(z)``, flat (libm's: any real argument; overflow gives inf, which the
    loss then reports)."""
    for i in range(z.size):
        out[i] = np.exp(z[i])


class Rows(NamedTuple):
    """How an activation is applied: ``rows(z, out, m)`` over the flat rows of
    ``m`` entries (an element-wise one ignores ``m``)."""

    rows: object


def _ignore_width(z, out, m):
    """Template: an element-wise loop taking the row width it does not need."""
    loop(z, out)  # noqa: F821


class _Loop(NamedTuple):
    loop: object


def rows_of(name, loop):
    return specialise(_ignore_width, f"{name}_rows", _Loop(loop), inlined_kernel)


#: Code -> the loop of every activation, element-wise or not (the output-only ones
#: here; each element-wise one's by :func:`derive_loops`).
ROWS = {SOFTMAX: Rows(softmax_rows), EXP: Rows(exp_rows)}

#: The loop of each element-wise code, for calls from Python (one compiled loop per call).
LOOPS = {}


def derive_loops(name, code):
    """The loops of the element-wise activation ``name`` (``code``), from its record
    in :data:`ELEMENTWISE_KERNELS`: ``name_1d`` into :data:`LOOPS`, its rows loop
    into :data:`ROWS`. Returns ``name_1d``."""
    loop = elementwise_loop(name, ELEMENTWISE_KERNELS[code])
    LOOPS[code] = loop
    ROWS[code] = Rows(rows_of(name, loop))
    return loop


# every element-wise row's loops, as module names (sigmoid_1d, ...) too
globals().update({f"{name}_1d": derive_loops(name, ACTIVATIONS[name].code)
                  for name in ELEMENTWISE})


# -- the dispatch, generated from the records -----------------------------------------------


@by_code(ROWS, kernel, label="activation")
def activate_inplace(a, m, code):
    """``a = f(a)`` for the flat ``a`` of rows of ``m`` entries."""
    rows(a, a, m)  # noqa: F821


@by_code(ELEMENTWISE_KERNELS, inlined_kernel, label="activation")
def add_bias_and_activate(Z, bias, code):
    """``Z = f(Z + bias)`` in place on the (n, m) block ``Z``, in one pass rather than
    one to add and one to activate. Element-wise activations only."""
    n, m = Z.shape
    one = Z.dtype.type(1.0)
    for i in range(n):
        for j in range(m):
            Z[i, j] = f(Z[i, j] + bias[j], one)  # noqa: F821


@by_code(ELEMENTWISE_KERNELS, kernel, label="activation")
def backprop_through(d, s, code):
    """``d = s * f'(z)`` with ``d`` holding ``a = f(z)`` on entry: a delta replaces
    the activations whose only remaining use is their own derivative."""
    one = d.dtype.type(1.0)
    for i in range(d.size):
        d[i] = s[i] * prime_from_output(d[i], one)  # noqa: F821


@by_code(ELEMENTWISE_KERNELS, kernel, label="activation")
def times_prime_of_output(s, a, code):
    """``s *= f'(z)`` given ``a = f(z)``, flat: the delta of a layer whose
    activations must be kept (a parallel pass needs them after every delta)."""
    one = s.dtype.type(1.0)
    for i in range(s.size):
        s[i] *= prime_from_output(a[i], one)  # noqa: F821


@by_code(ELEMENTWISE_KERNELS, kernel, label="activation")
def prime_1d(z, out, code):
    """``out = f'(z)``, flat, element-wise activations."""
    # one loop per activation, each with its code fixed: with the runtime code
    # inside the loop, LLVM kept the float64 loops scalar
    one = z.dtype.type(1.0)
    for i in range(z.size):
        out[i] = prime(z[i], one)  # noqa: F821


@by_code(ELEMENTWISE_KERNELS, kernel, label="activation")
def mul_prime_1d(x, z, code):
    """``x *= f'(z)``, flat, element-wise activations."""
    one = x.dtype.type(1.0)
    for i in range(x.size):
        x[i] *= prime(z[i], one)  # noqa: F821


@by_code(ELEMENTWISE_KERNELS, kernel, label="activation")
def prime_from_output_of(a, code, one):
    """``f'(z)`` from ``a = f(z)`` for the element-wise activation ``code``, one
    entry (a code read per entry: for loops whose cost lies elsewhere)."""
    return prime_from_output(a, one)  # noqa: F821


@kernel
def residual_1d(y, yhat, out):
    """``out = yhat - y``, i.e. ``-(y - yhat)``, flat."""
    for i in range(out.size):
        out[i] = yhat[i] - y[i]
