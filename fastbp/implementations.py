"""The implementations that the equivalence tests and the asv suite both run.

``IMPLEMENTATIONS`` maps a display name to the module holding the kernel functions
(both modules export the same names with the same signatures); ``NETWORK_BACKENDS``
maps the same display names to the ``backend=`` of :class:`fastbp.Network`.
"""

import numpy as np

from . import kernels, reference

IMPLEMENTATIONS = {"numpy-reference": reference, "fastbp": kernels}
NETWORK_BACKENDS = {"numpy-reference": "numpy", "fastbp": "numba"}

#: Kernel name -> function ``(rng, n, m, k, dtype) -> positional args``.
#: ``n`` examples, ``m`` units in the layer, ``k`` units in the next layer.
KERNEL_INPUTS = {
    "sigmoid": lambda rng, n, m, k, dt: (_normal(rng, (n, m), dt, 4.0),),
    "sigmoid_prime": lambda rng, n, m, k, dt: (_normal(rng, (n, m), dt, 4.0),),
    "tanh": lambda rng, n, m, k, dt: (_normal(rng, (n, m), dt, 2.0),),
    "tanh_prime": lambda rng, n, m, k, dt: (_normal(rng, (n, m), dt, 2.0),),
    "relu": lambda rng, n, m, k, dt: (_normal(rng, (n, m), dt),),
    "relu_prime": lambda rng, n, m, k, dt: (_normal(rng, (n, m), dt),),
    "identity": lambda rng, n, m, k, dt: (_normal(rng, (n, m), dt),),
    "identity_prime": lambda rng, n, m, k, dt: (_normal(rng, (n, m), dt),),
    "output_delta": lambda rng, n, m, k, dt: (
        rng.random((n, m)).astype(dt),
        rng.random((n, m)).astype(dt),
        _normal(rng, (n, m), dt),
    ),
    "hidden_delta": lambda rng, n, m, k, dt: (
        _normal(rng, (n, k), dt),
        _normal(rng, (m, k), dt),
        _normal(rng, (n, m), dt),
    ),
    "weight_gradient": lambda rng, n, m, k, dt: (
        rng.random((n, m)).astype(dt),
        _normal(rng, (n, k), dt),
    ),
    "bias_gradient": lambda rng, n, m, k, dt: (_normal(rng, (n, m), dt),),
    "softmax": lambda rng, n, m, k, dt: (_normal(rng, (n, m), dt, 4.0),),
}


def _normal(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def kernel(implementation, name):
    """The function ``name`` of ``implementation`` (a key of ``IMPLEMENTATIONS``)."""
    return getattr(IMPLEMENTATIONS[implementation], name)


def kernel_inputs(name, n, m, k=None, dtype=np.float64, seed=0):
    """Random inputs for kernel ``name`` from a seeded ``numpy.random.Generator``."""
    rng = np.random.default_rng(seed)
    return KERNEL_INPUTS[name](rng, n, m, m if k is None else k, np.dtype(dtype))
