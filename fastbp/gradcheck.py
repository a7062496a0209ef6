"""Numerical gradient checking by central differences."""

import numpy as np

from .kernels import _validation as v


def numerical_gradient(net, X, y, eps=1e-4):
    """Central-difference gradient of ``net.cost(X, y)`` w.r.t. the flat parameters.

    Returns
    -------
    ndarray (n_params,) of float64
    """
    eps = v.real_number(eps, "eps", low=0.0, low_open=True, high=1.0)
    objective = net.objective(X, y)
    p0 = net.get_params()
    grad = np.empty(p0.size, np.float64)
    p = p0.copy()
    try:
        for i in range(p.size):
            p[i] = p0[i] + eps
            net._params[...] = p  # p is validated: no check per step
            plus = objective.cost()
            p[i] = p0[i] - eps
            net._params[...] = p
            minus = objective.cost()
            grad[i] = (plus - minus) / (2 * eps)
            p[i] = p0[i]
    finally:
        net._params[...] = p0
    return grad


def gradient_check(net, X, y, eps=1e-4):
    """Relative error ``norm(g - g_num) / norm(g + g_num)`` of the analytic gradient.

    Around 1e-8 or below means the gradient is right (float64); float32 networks
    are checked in float32 and give larger values.

    Returns
    -------
    float
    """
    g_num = numerical_gradient(net, X, y, eps)
    _, g = net.objective(X, y).cost_and_gradient()
    g = g.astype(np.float64)
    denom = np.linalg.norm(g + g_num)
    if denom == 0.0:
        return 0.0
    return float(np.linalg.norm(g - g_num) / denom)
