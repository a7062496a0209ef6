"""Shared test settings: the one table of tolerances, and input layouts."""

import re

import numba
import numpy as np
import pytest

from fastbp import kernels

#: Tolerances per dtype, stated once. An element passes when
#: ``|actual - expected| <= atol * max|expected| + rtol * |expected|``:
#: ``atol`` is relative to the array's scale, so sums with cancellation
#: (matrix products, gradients) are judged against the size of their terms.
TOLERANCES = {
    np.dtype(np.float32): {"rtol": 2e-5, "atol": 2e-6},
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-13},
}

DTYPES = [np.float32, np.float64]


def assert_close(actual, expected, dtype=None):
    """Assert ``actual`` equals ``expected`` within the tolerance of ``dtype``
    (default: ``actual``'s dtype) and has that dtype."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    dtype = np.dtype(dtype or actual.dtype)
    assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    tol = TOLERANCES[dtype]
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


def layouts(a):
    """The same values as C-ordered, Fortran-ordered and strided (non-contiguous) arrays."""
    a = np.ascontiguousarray(a)
    big = np.zeros((2 * a.shape[0], 3 * a.shape[1]), a.dtype)
    strided = big[::2, ::3]
    strided[...] = a
    return {"C": a, "F": np.asfortranarray(a), "strided": strided}


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def fresh_ir(func, *args, literal=None, own_body=False):
    """Optimised LLVM IR of kernel ``func`` for ``args``, compiled afresh: code loaded
    from the on-disk cache cannot be inspected.

    ``literal``: an int passed as a last argument written into the source, so that
    Numba compiles ``func`` for that value alone (one branch of an activation code).
    ``own_body``: only ``func``'s own function bodies, not its callees'.
    """
    options = {**kernels.JIT_OPTIONS, "cache": False}
    namespace = {"fresh": numba.njit(**options)(func.py_func)}
    names = ", ".join(f"a{i}" for i in range(len(args)))
    extra = "" if literal is None else f", {int(literal)}"
    exec(f"def call({names}):\n    return fresh({names}{extra})", namespace)
    call = numba.njit(**options)(namespace["call"])
    call(*args)
    (ir,) = call.inspect_llvm().values()
    if not own_body:
        return ir
    name = func.py_func.__name__
    bodies = re.findall(r"^define [^\n]*" + name + r"[^\n]*\{\n(.*?)^\}", ir, re.S | re.M)
    if not bodies:
        # LLVM inlined func into the wrapper (numba 0.60 does for a small branch):
        # the wrapper's own body, which does nothing else, is then func's.
        bodies = re.findall(r"^define [^\n]*@_ZN13_3cdynamic_3e4call[^\n]*\{\n(.*?)^\}", ir,
                            re.S | re.M)
    assert bodies, f"no body of {name} in the IR"
    return "\n".join(bodies)


#: Every kind of network the tables allow, as ``(hidden activation, output
#: activation, loss)``: each output head with each element-wise hidden activation.
NETWORK_KINDS = [(hidden, h.outputs[0] if h.outputs else hidden, h.loss)
                 for h in kernels.HEADS for hidden in kernels.ELEMENTWISE]


def _rule_cases():
    from fastbp.optimizers import OPTIMIZERS

    built_in = [("sgd", {}), ("sgd", {"momentum": 0.9}),
                ("sgd", {"momentum": 0.9, "nesterov": True}), ("adam", {})]
    return built_in + [(method, {}) for method in OPTIMIZERS if method not in ("sgd", "gd", "adam")]


#: A mini-batch ``fit`` of every update rule of the table, as ``(method, options)``
#: (an optimizer added with a rule of its own runs with its defaults).
RULE_CASES = _rule_cases()


def random_targets(rng, n, m, output_activation, loss):
    """Targets (n, m) float64 of the kind the output head takes: any real in [0, 1)
    for most, rows of probabilities (soft, or one-hot on even seeds) for softmax."""
    if kernels._tables.head(output_activation, loss).targets != "distribution":
        return rng.random((n, m))
    if rng.integers(2):
        return np.eye(m)[rng.integers(0, m, n)]
    p = rng.random((n, m)) + 0.01
    return p / p.sum(axis=1, keepdims=True)
