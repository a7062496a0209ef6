"""fastbp: compiled backpropagation with a NumPy reference.

``fastbp.Network`` builds and trains fully connected networks on Numba kernels
(:mod:`fastbp.kernels`); :mod:`fastbp.reference` holds the same math in NumPy.

Importing the package imports no Numba: the network, the kernels' compiled side
and the cache load on first use, so ``import fastbp.reference`` stays plain NumPy.
"""

import importlib

__version__ = "0.1.0"


def _find_kernels_in_the_source_tree():
    """Make ``fastbp.kernels`` importable from a source checkout.

    An install maps the top-level ``kernels/`` folder into the package; in the
    source tree it sits beside ``fastbp/``, where ``python -m fastbp``, pytest or
    a script run from the checkout's root find this package first.
    """
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    folder = os.path.join(os.path.dirname(here), "kernels")
    if os.path.isdir(os.path.join(here, "kernels")) or not os.path.isfile(
        os.path.join(folder, "_network.py")
    ):
        return  # an installed layout, or no checkout around: the import system finds it
    # this checkout's kernels, even where an editable install maps another checkout's
    spec = importlib.util.spec_from_file_location(
        f"{__name__}.kernels", os.path.join(folder, "__init__.py"),
        submodule_search_locations=[folder],
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise


_find_kernels_in_the_source_tree()

from . import kernels, reference  # noqa: E402
from .kernels import _environment  # noqa: E402

_environment.requested_blas()  # a misspelt FASTBP_BLAS fails here, not at the first fit

#: Public name -> the module that defines it, imported on first use.
_LAZY = {
    "CacheWarning": ".kernels._cache",
    "ConvergenceWarning": ".training",
    "Network": ".network",
    "gradient_check": ".gradcheck",
    "load": ".io",
    "numerical_gradient": ".gradcheck",
}

__all__ = [
    "CacheWarning",
    "ConvergenceWarning",
    "Network",
    "__version__",
    "gradient_check",
    "kernels",
    "load",
    "numerical_gradient",
    "reference",
]


#: The submodules, each imported when first named as ``fastbp.<name>``.
_SUBMODULES = ("dask", "datasets", "gradcheck", "implementations", "io", "network",
               "objective", "optimizers", "precompile", "sklearn", "threads", "training",
               "tutorial")


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
