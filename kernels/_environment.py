"""The environment variables the kernels read, checked once: no Numba here, so that
``import fastbp`` checks them without compiling or loading anything."""

import os


def requested_blas():
    """``FASTBP_BLAS``: ``"numpy"`` (the default: NumPy's bundled OpenBLAS where it
    has one) or ``"scipy"`` (Numba's route); ``ValueError`` for anything else."""
    wanted = os.environ.get("FASTBP_BLAS", "").strip().lower() or "numpy"
    if wanted not in ("numpy", "scipy"):
        raise ValueError(f"FASTBP_BLAS must be 'numpy' or 'scipy', not {wanted!r}")
    return wanted
