"""The sigmoid and its derivative are stable and exact in the tails, for both dtypes."""

import warnings

import numpy as np
import pytest
from conftest import DTYPES, TOLERANCES
from scipy.special import expit

from fastbp import kernels, reference

TAILS = [-1000.0, -88.8, -40.0, 0.0, 40.0, 88.8, 1000.0]


def _expected(z, dtype):
    """expit and its derivative s(z) s(-z), in float64, rounded to ``dtype``."""
    z64 = z.astype(np.float64)
    return expit(z64).astype(dtype), (expit(z64) * expit(-z64)).astype(dtype)


def _check(actual, expected, dtype):
    assert actual.dtype == dtype
    assert np.isfinite(actual).all()
    tiny = np.finfo(dtype).smallest_subnormal
    np.testing.assert_allclose(actual, expected, rtol=TOLERANCES[np.dtype(dtype)]["rtol"],
                               atol=4 * tiny)


@pytest.mark.parametrize("module", [kernels, reference], ids=["fastbp", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_tails(module, dtype):
    z = np.array([TAILS], dtype)
    s, ds = _expected(z, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check(module.sigmoid(z), s, dtype)
        _check(module.sigmoid_prime(z), ds, dtype)
    assert module.sigmoid(z)[0, 0] == 0 and module.sigmoid(z)[0, -1] == 1
    assert module.sigmoid(z)[0, 3] == dtype(0.5)
    assert module.sigmoid_prime(z)[0, 3] == dtype(0.25)


def _extended(z, dtype):
    """The sigmoid and its derivative in extended precision, rounded to ``dtype``
    (scipy's expit flushes to zero early in the subnormal range)."""
    zl = z.astype(np.longdouble)
    e = np.exp(-np.abs(zl))
    s = np.where(zl >= 0, 1 / (1 + e), e / (1 + e))
    return s.astype(dtype), (e / (1 + e) ** 2).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_dense_grid(dtype):
    lim = 110.0 if dtype is np.float32 else 760.0
    z = np.linspace(-lim, lim, 40001, dtype=dtype).reshape(1, -1)
    s, ds = _extended(z, dtype)
    _check(kernels.sigmoid(z), s, dtype)
    _check(kernels.sigmoid_prime(z), ds, dtype)


def test_the_naive_formula_fails_where_ours_does_not():
    # The tutorial's exp(-z) / (1 + exp(-z))**2 overflows below about -710.
    z = np.array([[-750.0]])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(-z) / (1 + np.exp(-z)) ** 2
    assert np.isnan(naive).all()
    assert kernels.sigmoid_prime(z)[0, 0] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_propagates(dtype):
    z = np.array([[np.nan, 1.0]], dtype)
    assert np.isnan(kernels.sigmoid(z)[0, 0]) and np.isfinite(kernels.sigmoid(z)[0, 1])
    assert np.isnan(kernels.sigmoid_prime(z)[0, 0])
