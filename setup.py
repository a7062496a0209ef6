"""Build step: compile the kernels into the package being built.

Everything else about the package is in ``pyproject.toml``. A wheel built here
(``pip install .`` builds one) carries the kernels compiled for this machine's
CPU, Python, Numba and NumPy (``fastbp.precompile``) -- the build environment's
Numba and NumPy: pip's isolated build takes the newest allowed, ``pip install
--no-build-isolation .`` the installed ones. The first import copies them into
the on-disk cache. Where they do not match, kernels compile on first use as
before. ``FASTBP_PREBUILD=0`` skips the step (do so for a wheel to publish);
editable installs skip it (they cache on first use).
"""

import os
import shutil
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
        prebuilt = os.path.join(lib, "fastbp", "kernels", "_prebuilt")
        shutil.rmtree(prebuilt, ignore_errors=True)  # an earlier build's, for other sources
        # Numba settings of the building shell (debug, opt level, locators) are not
        # part of the cache's key: none may reach the kernels every user loads.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "FASTBP_"))}
        # PYTHONPATH stays after the build's copy: pip's isolated build environment
        # is found through it
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [lib, env.get("PYTHONPATH")])),
                   PYTHONDONTWRITEBYTECODE="1", NUMBA_CACHE_DIR=prebuilt,
                   NUMBA_NUM_THREADS=str(max(2, os.cpu_count() or 1)))
        # One dtype after the other: Numba's cache has no lock, and two processes
        # saving one function at once can pair an index entry with the other's code.
        for dtype in DTYPES:
            try:
                run = subprocess.run([sys.executable, "-m", "fastbp.precompile", "--dtype", dtype],
                                     cwd=lib, env=env, capture_output=True, text=True,
                                     timeout=TIMEOUT_S)
                ok, output = run.returncode == 0, run.stdout + run.stderr
            except subprocess.TimeoutExpired:
                ok, output = False, f"timed out after {TIMEOUT_S} s"
            status = "done" if ok else "failed: these kernels will compile on first use"
            print(f"fastbp: precompiling {dtype} kernels {status}\n{output.strip()}")


setup(cmdclass={"build_py": build_py_and_kernels})
