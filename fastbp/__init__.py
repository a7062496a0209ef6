"""fastbp: compiled backpropagation with a NumPy reference.

``fastbp.Network`` builds and trains fully connected networks on Numba kernels
(:mod:`fastbp.kernels`); :mod:`fastbp.reference` holds the same math in NumPy.
"""

__version__ = "0.1.0"

from . import kernels, reference
from .gradcheck import gradient_check, numerical_gradient
from .io import load
from .network import Network

__all__ = [
    "Network",
    "__version__",
    "gradient_check",
    "kernels",
    "load",
    "numerical_gradient",
    "reference",
]
