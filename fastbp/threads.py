"""How many threads a compiled pass uses, and BLAS kept out of their way.

**The one setting** is Numba's thread count: ``NUMBA_NUM_THREADS`` (the most a
process may use; by default every core) and ``numba.set_num_threads(n)`` (per
calling thread, at most that). Every compiled pass (``fit``'s epochs, the
full-batch cost and gradient, ``predict``, ``cost``) reads it when called.

- A pass whose forward products hold at least :data:`PARALLEL_MIN_WORK`
  multiply-adds (per batch for an epoch) runs on that many threads (at most one
  per :data:`MIN_ROWS_PER_THREAD` rows)
  (:mod:`fastbp.kernels._parallel`), or on one (the serial kernels) when it is 1.
  The BLAS the kernels call (NumPy's where it bundles one, else SciPy's; see
  :mod:`fastbp.kernels._blas`) is held to one thread while it runs: the pass's
  own threads call it, and Numba's threads plus BLAS's never exceed the count.
  Its limit is restored after the pass (process-wide: NumPy products computed
  meanwhile by other threads get one thread too).
- A smaller pass runs on the calling thread alone and leaves BLAS as it is
  (large products in it may still use BLAS's threads): there, synchronising
  the threads costs more than they save.

Parallel passes run one at a time in a process (each already uses every thread
it is given); a second waits for the first. To train separate networks side by
side in threads, give each thread ``numba.set_num_threads(1)``.

Threads need a Numba threading layer that starts a parallel region in
microseconds (OpenMP, from the system's ``libgomp``, or TBB). With only the
``workqueue`` layer every pass runs serially.

**Bits.** For a given thread count the blocks are fixed (they depend only on
the rows and the count), so runs and processes agree bit for bit. Across thread
counts the matrix products see different block shapes, which BLAS may sum in a
different order: results then agree to rounding (tests: 1e-12 relative to the
gradient's norm in float64).
"""

import importlib
import os
import threading

import numba

#: Forward multiply-adds of one pass (one batch) from which it runs on threads,
#: if it also has :data:`MIN_ROWS_PER_THREAD` rows per thread. Measured on 2
#: cores against the serial pass with BLAS at 2 threads
#: (``asv_benchmarks/tools/threshold.py``): threaded epochs gained 12-28 % from
#: about 2e5 (32-64-64-1 at batch 32 and 64, 64-64-10 at batch 64 and 200,
#: 784-128-10 at batch 32) and lost 30-50 % below 1e5.
PARALLEL_MIN_WORK = 150_000

#: Rows per thread from which a pass runs on threads: with fewer, each block's
#: forward product degenerates to a few rows that each read the whole weight
#: matrix (784-128-10 at batch 4 ran at half the serial speed).
MIN_ROWS_PER_THREAD = 8

#: Blocks per thread for small batches: a thread works on two smaller blocks
#: rather than one. W2 (784-128-10) at batch 32 on 2 threads, 8-row blocks
#: against 16: 183 against 228 ms an epoch (float32), 339 against 408 ms
#: (float64); OpenBLAS runs the forward product faster in small pieces (32 rows
#: of it as four 8-row products: 62 against 76 us, float32, one thread).
BLOCKS_PER_THREAD = 2

#: Rows per thread from which a pass takes one block per thread instead: every
#: parameter block reads all of the pass's deltas and activations, so each extra
#: block is another trip through them. W2 on 2 threads, one block per thread
#: against two (medians of 5 alternating processes): batch 128 172 against 178 ms
#: (float32) and 339 against 346 ms (float64), batch 200 165 against 170 ms and
#: 326 against 332 ms; the Adam epoch at batch 128 200 against 206 ms and 380
#: against 389 ms. At 32 rows per thread the workloads disagreed (W2 at batch
#: 64 gained 10 %; the 32-64-64-1 regressor lost 4-10 %, fastest of 5 runs), so
#: they keep two.
#: Full batches gain most (one block per thread against two): 64-64-10 over
#: 100 000 rows 39 against 59 ms (float32), 32-64-64-1 over 100 000 rows 103
#: against 123 ms (float64).
ONE_BLOCK_ROWS = 64

#: Spins of a waiting OpenMP thread (at a barrier, between parallel regions)
#: before it sleeps: libgomp's ``GOMP_SPINCOUNT``, 300 000 by default. A
#: threaded pass meets its threads twice per batch; with the default spin a
#: thread descheduled by other work beside it stalls every batch while its
#: partner spins away their shared core. Bounded, a waiting thread soon yields
#: the core and the idle speed is kept (``asv_benchmarks/tools/load.py``).
WAIT_SPINS = "10000"


def _bounded_waits():
    """Load Numba's threading layer with :data:`WAIT_SPINS`, unless the user
    set OpenMP's waiting (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``). libgomp
    reads the setting once, when it is loaded; the variable is removed again so
    that child processes and other libraries do not inherit it. Without effect
    where libgomp was loaded before fastbp."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    os.environ["GOMP_SPINCOUNT"] = WAIT_SPINS
    try:
        numba.get_num_threads()  # launches the threading layer: libgomp loads now
    finally:
        del os.environ["GOMP_SPINCOUNT"]


_bounded_waits()


def _cpu_quota(root="/sys/fs/cgroup"):
    """Whole CPUs the process's cgroup lets it use (cgroup v2 ``cpu.max``, v1
    ``cpu/cpu.cfs_quota_us`` over ``cpu.cfs_period_us``), at least 1; None
    without a quota. Containers often see every CPU of the host but get a share
    of them: threads beyond the share only wait for each other at every barrier."""
    def read(name):
        with open(os.path.join(root, name)) as f:
            return f.read().split()

    for quota_period in (lambda: read("cpu.max")[:2],
                         lambda: read("cpu/cpu.cfs_quota_us") + read("cpu/cpu.cfs_period_us")):
        try:
            quota, period = quota_period()
        except (OSError, ValueError):
            continue
        try:
            return max(1, int(quota) // int(period)) if int(quota) > 0 else None
        except (ValueError, ZeroDivisionError):  # "max": no quota
            return None
    return None


def _thread_cap():
    """The most threads a pass uses unless the user chose Numba's count: the
    cgroup quota where it is below it. Numba's default already counts only the
    CPUs the process may run on (``os.sched_getaffinity``)."""
    if "NUMBA_NUM_THREADS" in os.environ:
        return None
    quota = _cpu_quota()
    return quota if quota is not None and quota < numba.config.NUMBA_NUM_THREADS else None


#: See :func:`_thread_cap`; None: no cap.
THREAD_CAP = _thread_cap()


def _numba_controller():
    """A threadpoolctl controller of Numba's thread count, matched to the
    threading layer's loaded library, so that ``threadpool_limits`` (and what
    uses it: scikit-learn, joblib) limits fastbp's passes as it limits BLAS and
    OpenMP. Like Numba's own setting it applies to the calling thread."""
    from threadpoolctl import LibController

    layer = numba.threading_layer()
    pool = {"omp": "omppool", "tbb": "tbbpool"}.get(layer, "workqueue")

    class NumbaController(LibController):
        user_api = "numba"
        internal_api = "numba"
        filename_prefixes = (pool,)
        check_symbols = (f"PyInit_{pool}",)

        def get_num_threads(self):
            return numba.get_num_threads()

        def set_num_threads(self, num_threads):
            numba.set_num_threads(max(1, min(int(num_threads),
                                             numba.config.NUMBA_NUM_THREADS)))

        def get_version(self):
            return numba.__version__

        def set_additional_attributes(self):
            self.threading_layer = layer

    return NumbaController


def _register_with_threadpoolctl():
    try:
        import threadpoolctl

        numba.get_num_threads()  # the layer is launched before it is named
        threadpoolctl.register(_numba_controller())
    except (ImportError, AttributeError, ValueError):  # threadpoolctl without register
        pass


_register_with_threadpoolctl()

_team = threading.Lock()  # one parallel pass at a time
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None
_controller = None
_clear_controlling_thread = None
_layer_ok = None


def min_parallel_rows(layer_sizes):
    """Rows from which a pass over a network of ``layer_sizes`` uses threads."""
    per_row = sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    return max(1, -(-PARALLEL_MIN_WORK // per_row))


def pass_blocks(n_threads, n_rows):
    """Blocks a threaded pass over ``n_rows`` rows (per batch) is split into."""
    per_thread = 1 if n_rows >= ONE_BLOCK_ROWS * n_threads else BLOCKS_PER_THREAD
    return n_threads * per_thread


def pass_threads(n_rows):
    """Threads a large pass over ``n_rows`` rows uses now: Numba's count for the
    calling thread, at most one per :data:`MIN_ROWS_PER_THREAD` rows; 1 without
    a fast threading layer."""
    n = min(numba.get_num_threads(), n_rows // MIN_ROWS_PER_THREAD, THREAD_CAP or n_rows)
    return n if n > 1 and _fast_layer() else 1


def _fast_layer():
    global _layer_ok
    if _layer_ok is None:
        layer = str(numba.config.THREADING_LAYER).lower()
        ok = False
        if layer != "workqueue":
            for pool in ("omppool", "tbbpool"):
                try:
                    importlib.import_module(f"numba.np.ufunc.{pool}")
                except ImportError:
                    continue
                ok = True
                break
        _layer_ok = ok
    return _layer_ok


class large_pass:
    """Context of a large pass: BLAS held to one thread, and with ``parallel``
    the process's parallel-pass lock held."""

    def __init__(self, parallel):
        self.parallel = parallel

    def __enter__(self):
        if self.parallel:
            _team.acquire()
        _blas_single_enter()
        return self

    def __exit__(self, *exc):
        _blas_single_exit()
        if self.parallel:
            _team.release()


def _blas_single_enter():
    global _blas_users, _blas_limiter, _controller
    with _blas_lock:
        if _blas_users == 0:
            if _controller is None:
                _controller = _kernels_blas()
            if any(c.get_num_threads() != 1 for c in _controller.lib_controllers):
                _any_thread_may_set_limits()
                _blas_limiter = _controller.limit(limits=1)
                _any_thread_may_set_limits()
        _blas_users += 1


def _any_thread_may_set_limits():
    """threadpoolctl lets only one Python thread, the first to set them, change
    a pthreads OpenBLAS's limits, and silently ignores others until it is
    released: a pass entered on one thread and left on another (or
    after a user's own ``threadpool_limits`` elsewhere) would leave NumPy's BLAS
    at one thread. Released around each change of ours."""
    global _clear_controlling_thread
    if _clear_controlling_thread is None:
        from threadpoolctl import OpenBLASController

        _clear_controlling_thread = getattr(OpenBLASController, "clear_controlling_thread",
                                            lambda force: None)
    _clear_controlling_thread(force=True)


def _kernels_blas():
    """A threadpoolctl controller of the BLAS the kernels call
    (:mod:`fastbp.kernels._blas`): NumPy's bundled OpenBLAS, or SciPy's (Numba's
    route, ``scipy.linalg.cython_blas``); every BLAS loaded if neither is found."""
    import os

    from threadpoolctl import ThreadpoolController

    from .kernels import _blas

    if _blas.LIBRARY:
        def ours(path):
            return os.path.normcase(os.path.realpath(path)) == os.path.normcase(_blas.LIBRARY)
    else:
        import scipy
        import scipy.linalg.cython_blas  # noqa: F401  loads the BLAS the kernels call

        root = os.path.dirname(os.path.dirname(os.path.abspath(scipy.__file__)))

        def ours(path):
            return os.path.relpath(path, root).split(os.sep)[0] in ("scipy", "scipy.libs")

    blas = ThreadpoolController().select(user_api="blas")
    paths = [c.filepath for c in blas.lib_controllers if ours(c.filepath)]
    return blas.select(filepath=paths) if paths else blas


def _blas_single_exit():
    global _blas_users, _blas_limiter
    with _blas_lock:
        _blas_users -= 1
        if _blas_users == 0 and _blas_limiter is not None:
            _any_thread_may_set_limits()
            _blas_limiter.restore_original_limits()
            _any_thread_may_set_limits()
            _blas_limiter = None
