"""One place for the options every fastbp kernel is compiled with."""

import functools
import hashlib
import os
import shutil
import sys
import tempfile
import uuid

import numba
import numpy as np
from numba import njit
from numba.core import caching, config
from numba.misc.appdirs import AppDirs

from ._blas import BLAS

#: LLVM fast-math flags allowed in kernels: none. ``nnan`` and ``ninf`` would hide
#: the NaN and infinity that training must detect. The others (``reassoc``,
#: ``contract``, ``nsz``, ...) let LLVM round differently wherever it inlines a
#: helper, and Numba links an uninlined call to whichever copy of the helper a
#: process loaded first (its own, compiled now, or the caller's, read from the
#: cache): with them, a process that compiles and one that loads the cache
#: disagree in the last bits. Fused multiply-adds are written out where wanted
#: (``_exp.mul_add``).
FASTMATH_FLAGS = frozenset()

#: Set ``FASTBP_NO_CACHE=1`` to compile in memory only (no on-disk cache).
#: The cache folder is named after every kernel source file, this one included
#: (:func:`sources_key`): changing an option here starts a fresh cache.
CACHE = os.environ.get("FASTBP_NO_CACHE", "").strip().lower() in ("", "0", "false", "no")

#: Where the compiled kernels are cached: ``NUMBA_CACHE_DIR`` when set, else the
#: user's cache folder (``~/.cache/fastbp`` on Linux), never the package folder,
#: where files that ``pip uninstall`` does not know of would outlive the install
#: and shadow the next one.
CACHE_ROOT = AppDirs(appname="fastbp", appauthor=False).user_cache_dir

_KERNELS_DIR = os.path.dirname(os.path.abspath(__file__))

#: Kernels compiled when the package was built (``pip install .`` fills it; see
#: ``fastbp.precompile``), copied into the cache on first import.
PREBUILT_DIR = os.path.join(_KERNELS_DIR, "_prebuilt")


def _numba_caching(name):
    """``numba.core.caching.<name>``, under its public name where a numba version
    has one, else the private one."""
    return getattr(caching, name.lstrip("_"), None) or getattr(caching, name)


@functools.cache
def _file_digest(path, mtime_ns, size):
    """sha256 of a file's bytes (memoised per modification time and size)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _content_digest(path):
    stat = os.stat(path)
    return _file_digest(path, stat.st_mtime_ns, stat.st_size)


def sources_key(folder=_KERNELS_DIR):
    """One name for this exact set of kernel sources (the ``.py`` files of
    ``folder``), Numba, NumPy and the BLAS bound (:mod:`._blas`): a change to any
    kernel file (a callee's too: compiled callers embed it) starts a fresh cache
    folder, and copies of the same sources (venvs, installs, the build that
    filled :data:`PREBUILT_DIR`) share one."""
    digest = hashlib.sha256()
    try:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(".py") and not name.startswith(".") and os.path.isfile(path):
                digest.update(f"{name}:{_content_digest(path)};".encode())
    except OSError:  # sources that cannot be listed or read: a folder of this copy's own
        digest.update(os.path.abspath(folder).encode())
    numpy_version = ".".join(np.__version__.split(".")[:2])
    versions = f"numba{numba.__version__}-numpy{numpy_version}-{BLAS}blas"
    return f"kernels-{digest.hexdigest()[:24]}-{versions}"


SOURCES_KEY = sources_key()


def _writable(folder):
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def _choose_cache_folder():
    """``NUMBA_CACHE_DIR`` or :data:`CACHE_ROOT`, else (a read-only home) a folder
    of this user's in the temporary directory; None if neither can be written.
    Never the package folder, where Numba's own fallback would write."""
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    for root in (config.CACHE_DIR or CACHE_ROOT,
                 os.path.join(tempfile.gettempdir(), f"fastbp-cache-{user}")):
        if _writable(root):
            return os.path.join(root, SOURCES_KEY)
    return None


_CACHE_FOLDER = _choose_cache_folder() if CACHE else None
if _CACHE_FOLDER is None:
    CACHE = False  # nowhere to write: compile in memory


def cache_folder():
    """The folder this copy's kernels are cached in (None without a cache)."""
    return _CACHE_FOLDER


class _KernelCacheLocator(_numba_caching("_SourceFileBackedLocatorMixin"),
                          _numba_caching("_CacheLocator")):
    """Numba cache locator for this folder's kernels: :func:`cache_folder`, with
    entries stamped by their source file's content (not its modification time,
    which an install does not keep)."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = cache_folder()

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return _content_digest(self._py_file)

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != _KERNELS_DIR:
            return None  # not a kernel of ours: Numba's own choice
        return super().from_function(py_func, py_file)


_LOCATORS = _numba_caching("_CacheImpl")._locator_classes
if _KernelCacheLocator.__qualname__ not in {c.__qualname__ for c in _LOCATORS}:
    _LOCATORS.insert(0, _KernelCacheLocator)


def prebuilt_folder():
    """The build-time kernels for exactly these sources: this copy's, else an
    installed copy's on ``sys.path`` (a source checkout run beside its own
    install, as ``pip install . && python -m fastbp`` in the checkout does)."""
    roots = [os.path.dirname(PREBUILT_DIR)]
    roots += [os.path.join(p or os.curdir, "fastbp", "kernels") for p in sys.path
              if isinstance(p, str)]
    for root in roots:
        folder = os.path.join(root, "_prebuilt", SOURCES_KEY)
        if os.path.isdir(folder):
            return folder
    return None


def copy_prebuilt(source, target):
    """Make ``source`` (compiled kernels) the cache folder ``target``, if that
    does not exist or is empty: copied beside it, then renamed into place in one
    step, so a process never sees half a copy and a cache filled meanwhile by
    another process is never overwritten. Where nothing can be written, kernels
    compile as usual."""
    if os.path.isdir(target) and os.listdir(target):
        return  # a cache already (or the build filling the prebuilt folder itself)
    staging = f"{target}.copy-{uuid.uuid4().hex}"
    try:
        os.makedirs(staging)
        for name in os.listdir(source):
            if name.endswith((".nbi", ".nbc")):
                shutil.copyfile(os.path.join(source, name), os.path.join(staging, name))
        os.rename(staging, target)  # fails if another process filled target first
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


if CACHE:
    _source = prebuilt_folder()
    if _source is not None:
        copy_prebuilt(_source, cache_folder())

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
    # The runtime is switched on explicitly: a helper first compiled for an
    # entry_kernel would otherwise inherit its setting and could not allocate.
    return njit(_nrt=True, **JIT_OPTIONS)(func)


def inlined_kernel(func):
    """Like :func:`kernel`, inlined into each caller in Numba's IR instead of
    compiled as a unit of its own. Numba optimises a unit alone and then again
    inside every caller it is linked into, so each level of helpers between an
    entry point and the loops costs another optimisation of everything below it:
    inlining the two big middle levels of the fused passes cut the first call's
    compile time by 13-15 %."""
    return njit(_nrt=True, inline="always", **JIT_OPTIONS)(func)


def entry_kernel(func):
    """Like :func:`kernel`, for a function called only from Python that creates no
    array itself: compiled without Numba's reference-counting runtime.

    Its array arguments then arrive without a reference count, so neither the
    call (one allocation per array) nor the helpers it calls (an atomic
    increment and decrement per array per call) pay for counting: the seed
    network's pass, called from Python, went from about 1.9 to 1.0 us. Helpers
    keep the runtime and may still allocate; what they create they also free.
    """
    return njit(_nrt=False, **JIT_OPTIONS)(func)


def parallel_kernel(func):
    """Like :func:`kernel`, with Numba's ``prange`` loops run on its thread pool
    (``numba.get_num_threads()`` threads of the calling thread)."""
    return njit(_nrt=True, parallel=True, **JIT_OPTIONS)(func)


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
