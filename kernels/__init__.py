"""fastbp.kernels: Numba-compiled backpropagation kernels.

Thin public functions validate and normalise their inputs (one C-contiguous
float32 or float64 array each, all of one dtype), allocate or check ``out``, then
call private jitted loops. The result has the inputs' dtype. Any C-ordered,
Fortran-ordered or strided input is accepted; ints and bools are cast to float64
(or to the dtype of the float inputs).

Each returns a new array, or ``out`` when given (see the Returns of
:func:`activation`; the named ones below return what it does).

Shapes: ``z``, ``y``, ``yhat`` (n, m); ``delta_next`` (n, k); ``W_next`` (m, k);
``a_prev`` (n, p); ``delta`` (n, q).
"""

import importlib
import os

import numpy as np

from ._tables import ACTIVATIONS, ELEMENTWISE, HEADS, LOSSES, UPDATE_RULES
from ._validation import as_arrays, check_out, choice


class _OnFirstUse:
    """A submodule imported when first used (it compiles with Numba, which a plain
    ``import fastbp`` or ``import fastbp.reference`` never loads). The import
    binds the real module in its place."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name, __name__), attr)


_activations, _linalg = _OnFirstUse("._activations"), _OnFirstUse("._linalg")

#: Names of :mod:`._jit`, read on first use.
_FROM_JIT = ("CACHE", "FASTMATH_FLAGS", "JIT_OPTIONS")


def __getattr__(name):
    if name in _FROM_JIT:
        return getattr(importlib.import_module("._jit", __name__), name)
    if name in _SUBMODULES:  # ``fastbp.kernels._heads`` and the like, on first use
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_SUBMODULES = {name[:-3] for name in os.listdir(os.path.dirname(__file__))
               if name.endswith(".py") and name != "__init__.py"}

__all__ = [
    "ACTIVATIONS",
    "ELEMENTWISE",
    "HEADS",
    "LOSSES",
    "UPDATE_RULES",
    "activation",
    "activation_prime",
    "bias_gradient",
    "hidden_delta",
    "identity",
    "identity_prime",
    "output_delta",
    "relu",
    "relu_prime",
    "sigmoid",
    "sigmoid_prime",
    "softmax",
    "tanh",
    "tanh_prime",
    "weight_gradient",
    "CACHE",
    "FASTMATH_FLAGS",
    "JIT_OPTIONS",
]

def _target(out, shape, dtype, *inputs):
    """Where a kernel writes: ``out`` itself when C-contiguous and not overlapping an
    input, else a fresh array (copied into ``out`` by :func:`_finish`)."""
    if out is None:
        return np.empty(shape, dtype)
    check_out(out, shape, dtype)
    if out.flags.c_contiguous and not any(np.may_share_memory(out, x) for x in inputs):
        return out
    return np.empty(shape, dtype)


def _finish(result, out):
    if out is not None and result is not out:
        out[...] = result
        return out
    return result


def _code(name):
    """The code of an element-wise activation (softmax is not one: see :func:`softmax`)."""
    return ACTIVATIONS[choice(name, "activation", ELEMENTWISE)].code


def activation(z, name="sigmoid", out=None):
    """``f(z)`` element-wise for the activation ``name``; same shape and dtype as ``z``.

    Returns
    -------
    ndarray shaped like ``z``, its dtype (``out`` when given)
    """
    code = _code(name)
    z = as_arrays(ndim=None, z=z)["z"]
    res = _target(out, z.shape, z.dtype)
    _activations.LOOPS[code](z.reshape(-1), res.reshape(-1))
    return _finish(res, out)


def softmax(z, out=None):
    """Row-wise ``exp(z) / exp(z).sum(axis=1)``, (n, m) -> (n, m), computed around
    each row's maximum: finite for any finite ``z``.

    Returns
    -------
    ndarray (n, m) of ``z``'s dtype (``out`` when given)
    """
    z = as_arrays(z=z)["z"]
    res = _target(out, z.shape, z.dtype)
    _activations.softmax_rows(z.reshape(-1), res.reshape(-1), z.shape[1])
    return _finish(res, out)


def activation_prime(z, name="sigmoid", out=None):
    """``f'(z)`` element-wise from the pre-activation ``z``.

    Returns
    -------
    ndarray shaped like ``z``, its dtype (``out`` when given)
    """
    code = _code(name)
    z = as_arrays(ndim=None, z=z)["z"]
    res = _target(out, z.shape, z.dtype)
    _activations.prime_1d(z.reshape(-1), res.reshape(-1), code)
    return _finish(res, out)


def sigmoid(z, out=None):
    """Numerically stable logistic ``1 / (1 + exp(-z))``: finite at any finite ``z``."""
    return activation(z, "sigmoid", out)


def sigmoid_prime(z, out=None):
    """``sigmoid(z) * (1 - sigmoid(z))``, computed as ``e / (1 + e)**2``, ``e = exp(-|z|)``."""
    return activation_prime(z, "sigmoid", out)


def tanh(z, out=None):
    """``tanh(z)``."""
    return activation(z, "tanh", out)


def tanh_prime(z, out=None):
    """``1 - tanh(z)**2 = sech(z)**2``, computed without cancellation in the tails."""
    return activation_prime(z, "tanh", out)


def relu(z, out=None):
    """``max(z, 0)``."""
    return activation(z, "relu", out)


def relu_prime(z, out=None):
    """``1`` where ``z > 0``, else ``0``."""
    return activation_prime(z, "relu", out)


def identity(z, out=None):
    """``z`` (a copy)."""
    return activation(z, "identity", out)


def identity_prime(z, out=None):
    """Ones shaped like ``z``."""
    return activation_prime(z, "identity", out)


def output_delta(y, yhat, z, out=None, activation="sigmoid"):
    """Output-layer delta of the half-SSE cost: ``-(y - yhat) * f'(z)``, (n, m).

    Returns
    -------
    ndarray (n, m) (``out`` when given)
    """
    code = _code(activation)
    a = as_arrays(y=y, yhat=yhat, z=z)
    y, yhat, z = a["y"], a["yhat"], a["z"]
    if not (y.shape == yhat.shape == z.shape):
        raise ValueError(
            f"y, yhat and z must have one shape; got {y.shape}, {yhat.shape}, {z.shape}"
        )
    res = _target(out, z.shape, z.dtype, y, yhat, z)
    flat = res.reshape(-1)
    _activations.residual_1d(y.reshape(-1), yhat.reshape(-1), flat)
    _activations.mul_prime_1d(flat, z.reshape(-1), code)
    return _finish(res, out)


def hidden_delta(delta_next, W_next, z, out=None, activation="sigmoid"):
    """Hidden-layer delta ``(delta_next @ W_next.T) * f'(z)``: (n, k), (m, k), (n, m) -> (n, m).

    Returns
    -------
    ndarray (n, m) (``out`` when given)
    """
    code = _code(activation)
    a = as_arrays(delta_next=delta_next, W_next=W_next, z=z)
    d, W, z = a["delta_next"], a["W_next"], a["z"]
    if d.shape[1] != W.shape[1] or z.shape != (d.shape[0], W.shape[0]):
        raise ValueError(
            "expected delta_next (n, k), W_next (m, k) and z (n, m); got "
            f"{d.shape}, {W.shape} and {z.shape}"
        )
    res = _target(out, z.shape, z.dtype, d, W, z)
    _linalg.gemm_nt(d, W, res, False)
    _activations.mul_prime_1d(res.reshape(-1), z.reshape(-1), code)
    return _finish(res, out)


def weight_gradient(a_prev, delta, out=None, accumulate=False):
    """``a_prev.T @ delta``: (n, p), (n, q) -> (p, q); added into ``out`` if ``accumulate``.

    The transpose is never materialised.

    Returns
    -------
    ndarray (p, q) (``out`` when given)
    """
    a = as_arrays(a_prev=a_prev, delta=delta)
    A, D = a["a_prev"], a["delta"]
    if A.shape[0] != D.shape[0]:
        raise ValueError(
            f"a_prev and delta must have the same number of rows; got {A.shape} and {D.shape}"
        )
    shape = (A.shape[1], D.shape[1])
    if accumulate and out is None:
        raise ValueError("accumulate=True needs an out= array to add into")
    res = _target(out, shape, A.dtype, A, D)
    if accumulate and res is not out:
        res[...] = out
    _linalg.gemm_tn(A, D, res, bool(accumulate))
    return _finish(res, out)


def bias_gradient(delta, out=None, accumulate=False):
    """``delta.sum(axis=0)``: (n, q) -> (q,); added into ``out`` if ``accumulate``.

    Returns
    -------
    ndarray (q,) (``out`` when given)
    """
    D = as_arrays(delta=delta)["delta"]
    if accumulate and out is None:
        raise ValueError("accumulate=True needs an out= array to add into")
    res = _target(out, (D.shape[1],), D.dtype, D)
    if accumulate and res is not out:
        res[...] = out
    _linalg.column_sums(D, res, bool(accumulate))
    return _finish(res, out)
