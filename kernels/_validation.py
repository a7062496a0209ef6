"""Input checks run in Python before any jitted code.

Every public entry point funnels its arguments through these helpers, so a bad
argument raises ``TypeError``/``ValueError`` naming it, never a Numba error.
Arrays come out C-contiguous, aligned, writeable and of one float dtype (float32 or
float64), which keeps the number of kernel specialisations small.
"""

import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype, name="dtype"):
    """Return ``np.dtype(float32)`` or ``np.dtype(float64)``; reject anything else."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be numpy.float32 or numpy.float64; got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be numpy.float32 or numpy.float64; got {dt}")
    return dt


def _to_ndarray(x, name):
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array of real numbers; got {type(x).__name__}")
    if isinstance(x, np.ma.MaskedArray):
        # np.asarray would drop the mask and use the hidden values.
        raise TypeError(f"{name} must not be a masked array; fill or drop the masked values")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} could not be converted to a numeric array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers (float, int or bool); got dtype {arr.dtype}"
        )
    return arr


def _natural_dtype(dtype):
    """float32 stays float32, float16 widens to float32, everything else is float64."""
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return FLOAT_DTYPES[0]
    return FLOAT_DTYPES[1]


def as_array(x, name, *, dtype=None, ndim=2, finite=False):
    """``x`` as a non-empty, C-contiguous, aligned, writeable ``ndim``-D array of ``dtype``.

    ``ndim=None`` accepts any number of dimensions but zero. ``dtype=None`` keeps
    float32 and float64 and casts ints and bools to float64.
    ``finite=True`` rejects NaN and infinity (checked after the cast, so a float64
    value that overflows float32 is caught too).
    """
    arr = _to_ndarray(x, name)
    if ndim is None:
        if arr.ndim == 0:
            raise ValueError(f"{name} must be an array with at least one dimension; got a scalar")
    elif arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape}")
    target = _natural_dtype(arr.dtype) if dtype is None else np.dtype(dtype)
    flags = arr.flags
    if arr.dtype == target and flags.c_contiguous and flags.writeable and flags.aligned:
        out = arr  # the common case, and the cheap one: small kernels feel every microsecond
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.ascontiguousarray(arr, dtype=target)
        if not out.flags.writeable:
            out = out.copy()
    if finite and not all_finite(out):
        raise ValueError(f"{name} contains NaN or infinity (in {target})")
    return out


def is_sparse(x):
    """Whether ``x`` is a scipy.sparse matrix or array (scipy itself is not imported)."""
    return type(x).__module__.startswith("scipy.sparse")


def sparse_rows(x, name, dtype):
    """A scipy.sparse ``x`` (any format, matrix or array) as CSR with its stored
    values C-contiguous of ``dtype``, finite; never densified. Its index arrays
    are kept (int32 or int64), copied only when read-only."""
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array; got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (float, int or bool); got dtype "
                        f"{x.dtype}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must not be empty; got shape {x.shape}")
    csr = x.tocsr()
    if csr.dtype != dtype:
        csr = csr.astype(dtype)
    parts = (csr.data, csr.indices, csr.indptr)
    if not all(a.flags.c_contiguous and a.flags.writeable for a in parts):
        csr = csr.copy()
    if not all_finite(csr.data):
        raise ValueError(f"{name} contains NaN or infinity (in {np.dtype(dtype)})")
    return csr


def sample_weights(w, n, dtype, name="sample_weight", all_zero=False):
    """``w`` as the (n,) weights of ``n`` rows, C-contiguous of ``dtype``: real,
    finite, non-negative and not all 0 (unless ``all_zero``: a part of the rows);
    None stays None (every row weighs 1)."""
    if w is None:
        return None
    arr = _to_ndarray(w, name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array of one weight per row ({n}); "
                         f"got shape {arr.shape}")
    arr = as_array(arr, name, dtype=dtype, ndim=1, finite=True)
    if arr is w:  # the weights are read, and a caller's array is never written, but
        arr = arr.copy()  # a later change to it must not reach an objective made now
    if (arr < 0).any():
        raise ValueError(f"{name} must not be negative; got a minimum of {arr.min()}")
    if not all_zero and not arr.any():
        raise ValueError(f"{name} must not be all 0: no row would count")
    return arr


#: Elements per dot product in :func:`all_finite`: OpenBLAS runs a longer one on
#: its own threads (above 10 000), which then spin idle for a while and took a
#: core from the threaded pass that followed the validation.
DOT_CHUNK = 8192


def all_finite(a):
    """Whether ``a`` (contiguous) holds no NaN or infinity; never warns."""
    # a.a is finite only if every element is: one BLAS pass, no full-size mask, and
    # no floating-point warning (a dot product is not a ufunc); 0.5 us on a tiny
    # array against 1.3 for np.isfinite(a).all(). A huge but finite square can
    # overflow, so that case falls to the exact test.
    if a.size <= DOT_CHUNK:
        finite = math.isfinite(np.vdot(a, a))
    else:
        flat = a.ravel(order="K")
        finite = all(math.isfinite(np.vdot(part, part))
                     for part in (flat[i : i + DOT_CHUNK] for i in range(0, flat.size, DOT_CHUNK)))
    return finite or bool(np.isfinite(a).all())


def already_normal(values, ndim):
    """Whether :func:`as_arrays` would return every value unchanged: plain
    ndarrays of one float dtype, C-contiguous, aligned, writeable, non-empty, ``ndim``-D.
    A cheap test first, since small kernels feel every microsecond of checking."""
    dtype = None
    for x in values:
        if type(x) is not np.ndarray:
            return False
        flags = x.flags
        if not (flags.c_contiguous and flags.writeable and flags.aligned) or x.size == 0:
            return False
        if x.ndim == 0 or (ndim is not None and x.ndim != ndim):
            return False
        if dtype is None:
            dtype = x.dtype
            if dtype not in FLOAT_DTYPES:
                return False
        elif x.dtype != dtype:
            return False
    return True


def as_arrays(ndim=2, **named):
    """Normalise several kernel inputs to one common float dtype.

    Float inputs must already agree (float32 with float64 is an error: the caller
    decides the precision); ints and bools follow the floats, or become float64.
    """
    if already_normal(named.values(), ndim):
        return named
    arrays = {name: _to_ndarray(x, name) for name, x in named.items()}
    floats = {n: a.dtype for n, a in arrays.items() if a.dtype.kind == "f"}
    kinds = {_natural_dtype(dt) for dt in floats.values()}
    if len(kinds) > 1:
        listing = ", ".join(f"{n}: {dt}" for n, dt in floats.items())
        raise TypeError(f"inputs must share one float dtype; got {listing}")
    dtype = kinds.pop() if kinds else FLOAT_DTYPES[1]
    return {n: as_array(a, n, dtype=dtype, ndim=ndim) for n, a in arrays.items()}


def check_out(out, shape, dtype, name="out"):
    """Validate a caller's output buffer."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray; got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}; got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return out


def positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value}")
    return int(value)


def real_number(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """A finite real scalar in ``[low, high]`` (ends open where asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    # an unbounded end is open: a finite number never reaches it
    lo = "(" if low_open or low is None else "["
    hi = ")" if high_open or high is None else "]"
    bounds = f"{lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}"
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        raise ValueError(f"{name} must be a finite number in {bounds}; got {value}")
    return value


def choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}; got {value!r}")
    return value


def generator(seed, name="seed"):
    """A ``numpy.random.Generator`` from ``None``, a non-negative int or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"{name} must be None, a non-negative integer or a Generator; "
                            f"got {seed!r}")
        if seed < 0:
            raise ValueError(f"{name} must be non-negative; got {seed}")
    return np.random.default_rng(seed)
