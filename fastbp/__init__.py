"""fastbp: compiled backpropagation with a NumPy reference.

``fastbp.Network`` builds and trains fully connected networks on Numba kernels
(:mod:`fastbp.kernels`); :mod:`fastbp.reference` holds the same math in NumPy.
"""

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
from .gradcheck import gradient_check, numerical_gradient  # noqa: E402
from .io import load  # noqa: E402
from .kernels._cache import CacheWarning  # noqa: E402
from .network import Network  # noqa: E402
from .training import ConvergenceWarning  # noqa: E402

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
