"""The vectorisable exp and expm1 behind the sigmoid and the tanh: ulp-accurate on
x <= 0, tails included."""

import re

import numba
import numpy as np
import pytest
from conftest import fresh_ir
from scipy.special import expit

from fastbp import kernels

_activations = kernels._activations
exp_nonpositive_1d = kernels._exp.exp_nonpositive_1d

#: Extended precision is a true reference only where long double is wider than double.
EXTENDED = np.finfo(np.longdouble).nmant >= 63
#: Without the JIT the loops run as Python: a sparser grid keeps that run short.
GRID = 20_001 if numba.config.DISABLE_JIT else 2_000_001
SPARSE = 100 if numba.config.DISABLE_JIT else 1
needs_jit = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="inspects compiled code")


def _exp(x):
    out = np.full_like(x, -1.0)
    exp_nonpositive_1d(x, out)
    return out


def _ulps(a, b):
    """Distance in units in the last place between non-negative arrays of one dtype."""
    assert a.dtype == b.dtype
    it = np.int64 if a.dtype == np.float64 else np.int32
    return np.abs(a.view(it).astype(np.int64) - b.view(it).astype(np.int64))


def _correctly_rounded(x):
    """exp(x) rounded to x's dtype, from a wider type."""
    wide = np.longdouble if x.dtype == np.float64 else np.float64
    return np.exp(x.astype(wide)).astype(x.dtype)


def _grid(dtype, lo, n):
    x = np.linspace(lo, 0.0, n).astype(dtype)
    tiny = np.finfo(dtype).smallest_normal
    edge = np.log(tiny)  # where results turn subnormal
    near = edge + np.linspace(-1, 1, 2001) * 1e-3
    specials = [0, np.finfo(dtype).smallest_subnormal, 1e-30, tiny]
    return np.concatenate([x, near.astype(dtype), -np.array(specials, dtype)])


def test_exp_float64_against_np_exp():
    x = _grid(np.float64, -800.0, GRID)
    y = _exp(x)
    assert y.dtype == np.float64
    # 1 ulp here; 2 leaves room for np.exp's own error on other platforms.
    assert _ulps(y, np.exp(x)).max() <= 2


@pytest.mark.skipif(not EXTENDED, reason="long double is no wider than double")
def test_exp_float64_against_correct_rounding():
    x = _grid(np.float64, -800.0, GRID)
    assert _ulps(_exp(x), _correctly_rounded(x)).max() <= 1


def test_exp_float32_against_correct_rounding():
    x = _grid(np.float32, -110.0, GRID)
    # and float32 bit patterns in strides: [-1, 0] by 257, [-110, -10] by 97
    x = np.concatenate(
        [
            x,
            -np.arange(0, 0x3F800001, 257 * SPARSE, dtype=np.int32).view(np.float32),
            -np.arange(0x41200000, 0x42DC0000, 97 * SPARSE, dtype=np.int32).view(np.float32),
        ]
    )
    y = _exp(x)
    assert y.dtype == np.float32
    assert _ulps(y, _correctly_rounded(x)).max() <= 1


@pytest.mark.parametrize(
    ("dtype", "x", "expected"),
    [
        (np.float64, 0.0, 1.0),
        (np.float64, -0.0, 1.0),
        (np.float64, -5e-324, 1.0),
        (np.float64, -1e-300, 1.0),
        (np.float64, -708.3964185322641, 2.2250738585072626e-308),  # near the smallest normal
        (np.float64, -745.1332191019411, 5e-324),  # just rounds up to the smallest subnormal
        (np.float64, -745.1332191019412, 0.0),  # just rounds down to 0
        (np.float64, -746.0, 0.0),
        (np.float64, -1000.0, 0.0),
        (np.float64, -np.inf, 0.0),
        (np.float32, 0.0, 1.0),
        (np.float32, -0.0, 1.0),
        (np.float32, -1e-45, 1.0),
        (np.float32, -103.97207, 1e-45),
        (np.float32, -103.972084, 0.0),
        (np.float32, -105.0, 0.0),
        (np.float32, -1000.0, 0.0),
        (np.float32, -np.inf, 0.0),
    ],
)
def test_exp_special_values(dtype, x, expected):
    y = _exp(np.array([x], dtype))
    assert y.dtype == dtype
    assert y[0] == dtype(expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_nan(dtype):
    assert np.isnan(_exp(np.array([np.nan, -np.nan], dtype))).all()


#: Worst ulp distance from scipy's expit seen on the grid below (at most 2 from the exact).
SIGMOID_ULPS = {np.float64: 3, np.float32: 2}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_matches_expit(dtype):
    # expit in float64 then rounded: scipy's float32 expit flushes its subnormal tail.
    # Below -708 float64 expit flushes too, so the dense grid stops at 700.
    lim = 110.0 if dtype is np.float32 else 700.0
    tails = [-1000.0, -88.8, -40.0, 0.0, 40.0, 88.8, 1000.0]
    grid = np.linspace(-lim, lim, 7 * (GRID // 35))
    z = np.concatenate([grid, tails]).astype(dtype).reshape(-1, 7)
    s = kernels.sigmoid(z)
    assert s.dtype == dtype and s.shape == z.shape
    assert _ulps(s, expit(z.astype(np.float64)).astype(dtype)).max() <= SIGMOID_ULPS[dtype]
    out = np.empty_like(z)
    assert kernels.sigmoid(z, out=out) is out and np.array_equal(out, s)
    assert kernels.sigmoid_prime(z).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_in_place_matches(dtype):
    z = np.linspace(-60, 60, 10_001).astype(dtype)
    a = z.copy()
    _activations.activate_inplace(a, 1, kernels.ACTIVATIONS["sigmoid"].code)
    assert np.array_equal(a, kernels.sigmoid(z))


#: Worst ulp distance from the correctly rounded tanh seen on the grid below.
TANH_ULPS = {np.float64: 2, np.float32: 2}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_against_correct_rounding(dtype):
    wide = np.longdouble if dtype is np.float64 and EXTENDED else np.float64
    if dtype is np.float64 and not EXTENDED:
        pytest.skip("long double is no wider than double")
    tiny = np.logspace(-40, 1.5, GRID // 20)
    z = np.concatenate([np.linspace(-30, 30, GRID), tiny, -tiny]).astype(dtype)
    t = kernels.tanh(z)
    assert t.dtype == dtype
    assert _ulps_signed(t, np.tanh(z.astype(wide)).astype(dtype)).max() <= TANH_ULPS[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_special_values(dtype):
    z = np.array([0.0, -0.0, 1000.0, -1000.0, np.inf, -np.inf, np.nan], dtype)
    t = kernels.tanh(z)
    np.testing.assert_array_equal(t, np.tanh(z))
    np.testing.assert_array_equal(np.signbit(t), np.signbit(np.tanh(z)))


def _ulps_signed(a, b):
    """Ulp distance for arrays of either sign (compared on one monotone scale)."""
    it = np.int64 if a.dtype == np.float64 else np.int32
    def key(x):
        i = x.view(it).astype(np.int64)
        return np.where(i < 0, np.iinfo(it).min - i, i)
    return np.abs(key(a) - key(b))


@needs_jit
@pytest.mark.parametrize("loop", [_activations.sigmoid_1d, _activations.tanh_1d,
                                  exp_nonpositive_1d])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loops_vectorise(loop, dtype):
    z = np.zeros(8, dtype)
    ir = fresh_ir(loop, z, z.copy())
    assert re.search(rf"<\d+ x {'float' if dtype is np.float32 else 'double'}>", ir)
    for libm in ("@exp", "@llvm.exp", "@tanh"):  # no scalar libm call left
        assert libm not in ir


@needs_jit
@pytest.mark.parametrize("loop", [_activations.sigmoid_1d, _activations.tanh_1d,
                                  exp_nonpositive_1d])
def test_float32_never_widens(loop):
    z = np.zeros(8, np.float32)
    assert not re.search(r"\bdouble\b", fresh_ir(loop, z, z.copy()))


@needs_jit
@pytest.mark.parametrize("loop", [_activations.prime_1d, _activations.mul_prime_1d])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prime_loops_vectorise_for_a_code_known_at_run_time(loop, dtype):
    # The public kernels pass the activation's code at run time. One loop that
    # branched on it stayed scalar in float64 (5.6 against 0.9 ns an element):
    # each of sigmoid, tanh and relu needs a vectorised loop of its own.
    z = np.zeros(8, dtype)
    ir = fresh_ir(loop, z, z.copy(), np.int64(_activations.SIGMOID))
    loops = 4 if loop is _activations.prime_1d else 3  # prime_1d also fills identity's 1s
    assert len(re.findall(r"^vector\.body[\w.]*:", ir, re.M)) >= loops
