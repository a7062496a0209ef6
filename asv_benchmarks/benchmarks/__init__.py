"""asv benchmarks for fastbp against its NumPy reference.

Every thread pool is pinned to one thread here, before NumPy or Numba is imported,
so that ``asv run --python=same`` (which ignores the matrix ``env`` of
asv.conf.json) compares the implementations core for core as well.
"""

import os

for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
