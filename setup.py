"""Build step: compile the kernels into the package being built.

Everything else about the package is in ``pyproject.toml``. A wheel built here
(``pip install .`` builds one) carries the kernels compiled for this machine's
CPU, Python, Numba and NumPy (``fastbp.precompile``) -- the build environment's
Numba and NumPy: pip's isolated build takes the newest allowed, ``pip install
--no-build-isolation .`` the installed ones. The first import copies them into
the on-disk cache. Where they do not match, kernels compile on first use as
before. Numba's cache files are named for one CPython version, so such a wheel
is tagged for this Python and platform (``cp311-cp311-linux_x86_64``, say). The
kernels also serve only this CPU: Numba's cache index keys each one by the CPU's
name and features, so on another CPU they are simply not used and compile on
first use.
``FASTBP_PREBUILD=0`` skips the step (do so for a wheel to publish: it is then
``py3-none-any``); editable installs skip it (they cache on first use).

A wheel is built in a temporary folder of its own (removed when the build ends),
its metadata too, not in the checkout's ``build/`` and ``fastbp.egg-info/``: two
builds from one checkout at once, for two Pythons say, would otherwise ship each
other's files.
"""

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Distribution, setup
from setuptools.command.build import build
from setuptools.command.build_py import build_py
from setuptools.command.egg_info import egg_info

DTYPES = ("float32", "float64")
TIMEOUT_S = 1200


def prebuilds(dist):
    """Whether this build compiles the kernels into the package."""
    return os.environ.get("FASTBP_PREBUILD") != "0" and "editable_wheel" not in dist.commands


@functools.cache
def private_folder():
    """This build's own temporary folder, removed when the build's process ends."""
    folder = tempfile.mkdtemp(prefix="fastbp-build-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


class KernelsDistribution(Distribution):
    """A distribution whose wheel is tagged for this Python and platform when it
    carries the prebuilt kernels, as for a compiled extension."""

    def has_ext_modules(self):
        return prebuilds(self) or super().has_ext_modules()


class build_privately(build):  # noqa: N801  (setuptools command naming)
    """``build`` in :func:`private_folder` unless ``--build-base`` says where:
    everything built (``build_lib``, bdist_wheel's staging folder) lives under it."""

    def initialize_options(self):
        super().initialize_options()
        self.build_base = None

    def finalize_options(self):
        if self.build_base is None:
            self.build_base = os.path.join(private_folder(), "build")
        super().finalize_options()


class egg_info_privately(egg_info):  # noqa: N801  (setuptools command naming)
    """For a wheel, the metadata bdist_wheel copies from is written in
    :func:`private_folder` too. An sdist keeps the usual folder in the checkout:
    it packs the metadata from there."""

    def finalize_options(self):
        if self.egg_base is None and "bdist_wheel" in self.distribution.commands:
            self.egg_base = private_folder()
        super().finalize_options()


class build_py_and_kernels(build_py):  # noqa: N801  (setuptools command naming)
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False) or not prebuilds(self.distribution):
            return
        lib = os.path.abspath(self.build_lib)
        kernels = os.path.join(lib, "fastbp", "kernels")
        prebuilt = os.path.join(kernels, "_prebuilt")
        # Compiled in a folder of this build's own beside the package, then moved in
        # by one rename: the package never holds another process's or half a set.
        staging = tempfile.mkdtemp(prefix="_prebuilt-", dir=kernels)
        try:
            self._precompile(lib, staging)
            shutil.rmtree(prebuilt, ignore_errors=True)  # an earlier build's, for other sources
            os.rename(staging, prebuilt)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _precompile(lib, cache_dir):
        # Numba settings of the building shell (debug, opt level, locators) are not
        # part of the cache's key: none may reach the kernels every user loads.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "FASTBP_"))}
        # PYTHONPATH stays after the build's copy: pip's isolated build environment
        # is found through it
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [lib, env.get("PYTHONPATH")])),
                   PYTHONDONTWRITEBYTECODE="1", NUMBA_CACHE_DIR=cache_dir,
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


setup(distclass=KernelsDistribution,
      cmdclass={"build": build_privately, "egg_info": egg_info_privately,
                "build_py": build_py_and_kernels})
