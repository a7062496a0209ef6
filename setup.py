"""Build step: compile the kernels into the package being built.

Everything else about the package is in ``pyproject.toml``. A wheel built here
(``pip install .`` builds one) carries the kernels compiled for this machine's
CPU, Python and Numba (``fastbp.precompile``); the first import copies them
into the on-disk cache. Where they do not match (another CPU or Numba), kernels
compile on first use as before. ``FASTBP_PREBUILD=0`` skips the step; editable
installs skip it (they cache on first use).
"""

import os
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

DTYPES = ("float32", "float64")
TIMEOUT_S = 1200


class build_py_and_kernels(build_py):  # noqa: N801  (setuptools command naming)
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False) or os.environ.get("FASTBP_PREBUILD") == "0":
            return
        lib = os.path.abspath(self.build_lib)
        env = {k: v for k, v in os.environ.items()
               if k not in ("FASTBP_NO_CACHE", "NUMBA_DISABLE_JIT")}
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [lib, env.get("PYTHONPATH")])),
                   NUMBA_CACHE_DIR=os.path.join(lib, "fastbp", "kernels", "_prebuilt"),
                   NUMBA_NUM_THREADS=str(max(2, os.cpu_count() or 1)))
        # one process per dtype, side by side (the cache takes concurrent writers)
        runs = [subprocess.Popen([sys.executable, "-m", "fastbp.precompile", "--dtype", dtype],
                                 cwd=lib, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for dtype in DTYPES]
        for dtype, run in zip(DTYPES, runs):
            try:
                output, _ = run.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                run.kill()
                output, _ = run.communicate()
            status = "done" if run.returncode == 0 else f"failed ({run.returncode}); " \
                "these kernels will compile on first use"
            print(f"fastbp: precompiling {dtype} kernels {status}\n{output.strip()}")


setup(cmdclass={"build_py": build_py_and_kernels})
