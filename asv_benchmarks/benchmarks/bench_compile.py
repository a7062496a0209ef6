"""JIT compile cost: ``import fastbp`` plus the first W1 call, in a fresh process."""

import os
import subprocess
import sys
import tempfile

SCRIPT = """
import time
start = time.perf_counter()
import fastbp
from fastbp.datasets import seed_example
net = fastbp.Network([2, 3, 1], bias=False)
net.cost_and_gradients(*seed_example())
print(time.perf_counter() - start)
"""


def first_call_seconds(cache_dir, no_cache):
    """Seconds from ``import fastbp`` to the end of the first W1 call in a new
    interpreter (interpreter start-up excluded)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, FASTBP_NO_CACHE="1" if no_cache else "0")
    run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600, check=True)
    return float(run.stdout.split()[-1])


class CompileTime:
    unit = "seconds"
    timeout = 900

    def track_first_call_empty_cache(self):
        """Every kernel compiled in memory (FASTBP_NO_CACHE=1, empty cache dir)."""
        with tempfile.TemporaryDirectory() as cache_dir:
            return first_call_seconds(cache_dir, no_cache=True)

    def track_first_call_fresh_install(self):
        """An empty cache folder, in an install that compiled its kernels at build
        time (``pip install .``, as asv installs): the first import copies them in.
        Run from a source checkout without them, this compiles, as with no cache."""
        with tempfile.TemporaryDirectory() as cache_dir:
            return first_call_seconds(cache_dir, no_cache=False)

    def track_first_call_warm_cache(self):
        """Kernels loaded from Numba's on-disk cache, filled by a first run."""
        with tempfile.TemporaryDirectory() as cache_dir:
            first_call_seconds(cache_dir, no_cache=False)
            return first_call_seconds(cache_dir, no_cache=False)
