"""One place for the options every fastbp kernel is compiled with."""

import numpy as np
from numba import njit

from . import _cache

#: LLVM fast-math flags allowed in kernels: none. ``nnan`` and ``ninf`` would hide
#: the NaN and infinity that training must detect. The others (``reassoc``,
#: ``contract``, ``nsz``, ...) let LLVM round differently wherever it inlines a
#: helper, and Numba links an uninlined call to whichever copy of the helper a
#: process loaded first (its own, compiled now, or the caller's, read from the
#: cache): with them, a process that compiles and one that loads the cache
#: disagree in the last bits. Fused multiply-adds are written out where wanted
#: (``_exp.mul_add``).
FASTMATH_FLAGS = frozenset()

#: Whether the kernels are kept in the on-disk cache (:mod:`._cache`).
CACHE = _cache.ENABLED


def cache_folder():
    """The folder this copy's kernels are cached in (None without a cache)."""
    return _cache.FOLDER


JIT_OPTIONS = {
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
    # The runtime is switched on explicitly: a helper first compiled for an
    # entry_kernel would otherwise inherit its setting and could not allocate.
    return _cache.attach(njit(_nrt=True, **JIT_OPTIONS)(func))


def inlined_kernel(func):
    """Like :func:`kernel`, inlined into each caller in Numba's IR instead of
    compiled as a unit of its own. Numba optimises a unit alone and then again
    inside every caller it is linked into, so each level of helpers between an
    entry point and the loops costs another optimisation of everything below it:
    inlining the two big middle levels of the fused passes cut the first call's
    compile time by 13-15 %."""
    return _cache.attach(njit(_nrt=True, inline="always", **JIT_OPTIONS)(func))


def entry_kernel(func):
    """Like :func:`kernel`, for a function called only from Python that creates no
    array itself: compiled without Numba's reference-counting runtime.

    Its array arguments then arrive without a reference count, so neither the
    call (one allocation per array) nor the helpers it calls (an atomic
    increment and decrement per array per call) pay for counting: the seed
    network's pass, called from Python, went from about 1.9 to 1.0 us. Helpers
    keep the runtime and may still allocate; what they create they also free.
    """
    return _cache.attach(njit(_nrt=False, **JIT_OPTIONS)(func))


def parallel_kernel(func):
    """Like :func:`kernel`, with Numba's ``prange`` loops run on its thread pool
    (``numba.get_num_threads()`` threads of the calling thread)."""
    return _cache.attach(njit(_nrt=True, parallel=True, **JIT_OPTIONS)(func))


def specialisation(dispatcher, args):
    """The compiled function of ``dispatcher`` for exactly the types of ``args``
    (compiled, or loaded from the cache, now if needed).

    Calling it skips the dispatcher's per-call typing of every argument (about
    0.1 us per array). It checks no types itself, so a caller binds ``args`` once
    and calls it with nothing else. Without the compiler (``NUMBA_DISABLE_JIT``)
    it is the Python function.
    """
    compile_for = getattr(dispatcher, "compile", None)
    if compile_for is None:
        return dispatcher
    return compile_for(tuple(dispatcher.typeof_pyval(a) for a in args))
