"""One place for the options every fastbp kernel is compiled with."""

import os

import numpy as np
from numba import njit

#: LLVM fast-math flags allowed in kernels. ``nnan`` and ``ninf`` are deliberately
#: absent: NaN and infinity must propagate so that training can detect them.
FASTMATH_FLAGS = frozenset({"nsz", "contract", "reassoc"})

#: Set ``FASTBP_NO_CACHE=1`` to compile in memory only (no on-disk cache).
CACHE = os.environ.get("FASTBP_NO_CACHE", "").strip().lower() in ("", "0", "false", "no")

JIT_OPTIONS = {
    "cache": CACHE,
    "fastmath": set(FASTMATH_FLAGS),
    "nogil": True,  # lets separate networks train in parallel threads
    "error_model": "numpy",  # division by zero gives inf/nan, never an exception
}


# Arguments passed from one kernel to another as typed globals: Numba types a
# literal 0 or False as a constant and compiles the callee once more for it.
ZERO_OFFSET = np.int64(0)
NO_ACCUMULATE = np.bool_(False)


def kernel(func):
    """Compile ``func`` lazily with :data:`JIT_OPTIONS` (no eager signatures)."""
    return njit(**JIT_OPTIONS)(func)
