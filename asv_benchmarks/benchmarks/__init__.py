"""asv benchmarks for fastbp against its NumPy reference.

Every thread pool may use every core (set here, before NumPy or Numba is
imported, so that ``asv run --python=same``, which ignores the matrix ``env`` of
asv.conf.json, does the same), and :func:`.common.use_threads` pins them all to
one thread at import: each benchmark runs on one thread unless it has a
``threads`` parameter, whose setup pins every pool (BLAS, OpenMP, Numba,
PyTorch) to that count for fastbp and its opponents alike.
"""

import os

for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, str(os.cpu_count() or 1))
