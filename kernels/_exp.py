"""``exp(x)`` and ``expm1(x)`` for ``x <= 0`` in the input's precision, branch-free
so loops vectorise.

``np.exp`` inside a Numba loop is a scalar libm call that blocks vectorisation. Here
``x = k ln2 + r`` with ``|r| <= ln2/2`` (Cody-Waite: ``ln2 = LN2_HI + LN2_LO`` with
``k * LN2_HI`` exact), ``exp(r) = 1 + r + r^2 Q(r)`` with ``Q`` minimax, and ``2^k`` is
made from exponent bits. Worst error seen against the exact value: 1.03 ulp (float64)
and 1.01 ulp (float32), i.e. at most 1 ulp from the correctly rounded result,
subnormal results included. ``-inf`` gives 0 and NaN gives NaN.

``expm1`` (for the tanh) takes the same reduction without the cancellation of
``exp(x) - 1``: ``2^k (exp(r) - 1) + (2^k - 1)`` with ``exp(r) - 1 = r + r^2 Q(r)``;
below ``_LO_M1`` the result rounds to -1, so ``2^k`` stays normal.
"""

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from ._jit import kernel


def _same_float(*args):
    return isinstance(args[0], types.Float) and all(a == args[0] for a in args)


def mul_add(a, b, c):
    """``a * b + c``, one fused multiply-add where the CPU has one."""
    return a * b + c


# The plain function above runs when the JIT is disabled; compiled code gets this.
# ``llvm.fmuladd`` is fused or not by the target alone, never by where LLVM
# inlines it, so every copy of a kernel rounds alike (see ``_jit.FASTMATH_FLAGS``).
@intrinsic
def _mul_add_ir(typingctx, a, b, c):
    if not _same_float(a, b, c):
        return None

    def codegen(context, builder, sig, args):
        ty = args[0].type
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ty, [ty, ty, ty]), f"llvm.fmuladd.{ty.intrinsic_name}"
        )
        return builder.call(fn, args)

    return a(a, b, c), codegen


@overload(mul_add)
def _mul_add_overload(a, b, c):
    return lambda a, b, c: _mul_add_ir(a, b, c)


@kernel
def _horner(r, c):
    """``c[0] + c[1] r + c[2] r^2 + ...``"""
    q = c[-1]
    for i in range(len(c) - 2, -1, -1):
        q = mul_add(q, r, c[i])
    return q


# float64. exp(-746) rounds to 0, and clamping there bounds k >= -1076.
_LO = -746.0
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # 32 significant bits
_LN2_LO = 1.90821492927058770002e-10
# k + _BIAS has k + 1023 + 55 in its low bits; shifted into the exponent field that is
# 2^(k + 55). For k >= -1076, p 2^(k + 55) is normal, so exact, and the final factor
# 2^-55 rounds a subnormal result once.
_BIAS = 2.0**52 + 1023 + 55
_DOWN = 2.0**-55
# Q(r) ~ (exp(r) - 1 - r) / r^2 on |r| <= 0.3467: relative error 3.6e-18 in exp.
_Q = (
    0.5000000000000011,
    0.16666666666666413,
    0.04166666666652987,
    0.008333333333494806,
    0.001388888894371612,
    0.00019841269506036934,
    2.48014930000291e-05,
    2.7557586666967453e-06,
    2.763028671544854e-07,
    2.500003050431581e-08,
)

# float32, the same scheme. exp(-105) rounds to 0, and k >= -151.
_LO_F = np.float32(-105.0)
_LOG2E_F = np.float32(_LOG2E)
_LN2_HI_F = np.float32(0.693359375)  # 9 significant bits
_LN2_LO_F = np.float32(-2.12194440e-4)
_BIAS_F = np.float32(2.0**23 + 127 + 26)
_DOWN_F = np.float32(2.0**-26)
_ONE_F = np.float32(1.0)
# Relative error 3.1e-9 in exp.
_Q_F = tuple(
    np.float32(c)
    for c in (
        0.49999993437420565,
        0.16666520477755603,
        0.04166838985858606,
        0.008368735561570872,
        0.0013814559910033284,
    )
)


@kernel
def exp_nonpositive_f64(x):
    x = _LO if x < _LO else x  # -inf -> _LO; NaN stays NaN
    k = np.rint(x * _LOG2E)
    r = mul_add(k, -_LN2_LO, mul_add(k, -_LN2_HI, x))
    p = 1.0 + mul_add(r * r, _horner(r, _Q), r)
    up = np.int64(np.float64(k + _BIAS).view(np.int64) << 52).view(np.float64)
    return p * up * _DOWN


@kernel
def exp_nonpositive_f32(x):
    x = _LO_F if x < _LO_F else x
    k = np.rint(x * _LOG2E_F)
    r = mul_add(k, -_LN2_LO_F, mul_add(k, -_LN2_HI_F, x))
    p = _ONE_F + mul_add(r * r, _horner(r, _Q_F), r)
    up = np.int32(np.float32(k + _BIAS_F).view(np.int32) << 23).view(np.float32)
    return p * up * _DOWN_F


# expm1(x) rounds to -1 below these: exp(-40) < 2^-53 / 2 and exp(-18) < 2^-24 / 2.
_LO_M1 = -40.0
_LO_M1_F = np.float32(-18.0)
# k + _POW2 holds k + 1023 in its low bits: shifted into the exponent field, 2^k.
# (No float-to-int cast: a NaN k would be undefined there, and warn without the JIT.)
_POW2 = 2.0**52 + 1023
_POW2_F = np.float32(2.0**23 + 127)


@kernel
def expm1_nonpositive_f64(x):
    x = _LO_M1 if x < _LO_M1 else x
    k = np.rint(x * _LOG2E)
    r = mul_add(k, -_LN2_LO, mul_add(k, -_LN2_HI, x))
    s = mul_add(r * r, _horner(r, _Q), r)
    two_k = np.int64(np.float64(k + _POW2).view(np.int64) << 52).view(np.float64)
    return mul_add(two_k, s, two_k - 1.0)


@kernel
def expm1_nonpositive_f32(x):
    x = _LO_M1_F if x < _LO_M1_F else x
    k = np.rint(x * _LOG2E_F)
    r = mul_add(k, -_LN2_LO_F, mul_add(k, -_LN2_HI_F, x))
    s = mul_add(r * r, _horner(r, _Q_F), r)
    two_k = np.int32(np.float32(k + _POW2_F).view(np.int32) << 23).view(np.float32)
    return mul_add(two_k, s, two_k - _ONE_F)


def _in_input_precision(f32, f64, doc):
    """A function of one float that calls ``f32`` or ``f64`` by its argument's
    precision, in Python and in compiled code."""

    def dispatch(x):
        if isinstance(x, np.float32):
            return f32(x)
        return f64(np.float64(x))

    dispatch.__doc__ = doc

    @overload(dispatch)
    def _dispatch(x):
        if x == types.float32:
            return lambda x: f32(x)
        if x == types.float64:
            return lambda x: f64(x)
        return None

    return dispatch


exp_nonpositive = _in_input_precision(
    exp_nonpositive_f32, exp_nonpositive_f64,
    "``exp(x)`` for ``x <= 0`` in the precision of ``x`` (float32 or float64).")
expm1_nonpositive = _in_input_precision(
    expm1_nonpositive_f32, expm1_nonpositive_f64,
    "``expm1(x)`` for ``x <= 0`` in the precision of ``x`` (float32 or float64).")


@kernel
def exp_nonpositive_1d(x, out):
    """``out = exp(x)`` element-wise for flat ``x <= 0``."""
    for i in range(x.size):
        out[i] = exp_nonpositive(x[i])
