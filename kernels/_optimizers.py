"""Compiled optimizer updates, one per rule of :data:`._tables.UPDATE_RULES`.

Each takes the flat parameters, the gradient of the batch's cost, the rule's
hyperparameters ``hyper`` (float64) and its state ``state`` (rows of the
parameters' shape and dtype), and steps the entries ``[lo, hi)`` of the
parameters in place: a parallel pass steps its blocks of parameters separately,
after :func:`begin_step` once per batch. ``l2`` adds ``l2 * params`` to the
gradient as the step reads it (0: the gradient as it is, exactly): a sparse
first layer's gradient is stored without its L2 term, so that only the rows
its batch touches are written. The NumPy twins live in :mod:`fastbp.optimizers`.
"""

import numpy as np

from ._jit import kernel
from ._tables import ADAM_RULE, MOMENTUM_RULE, NESTEROV_RULE, SGD_RULE


@kernel
def _sgd(params, grad, hyper, l2):
    """``hyper = [learning_rate]``: ``p -= lr g``."""
    lr = params.dtype.type(hyper[0])
    for i in range(params.size):
        params[i] -= lr * (grad[i] + l2 * params[i])


@kernel
def _momentum(params, grad, hyper, v, l2):
    """Classical momentum, ``hyper = [learning_rate, momentum]``, ``v`` the
    velocity: ``v = mu v - lr g``, ``p += v``."""
    lr, mu = params.dtype.type(hyper[0]), params.dtype.type(hyper[1])
    for i in range(params.size):
        v[i] = mu * v[i] - lr * (grad[i] + l2 * params[i])
        params[i] += v[i]


@kernel
def _nesterov(params, grad, hyper, v, l2):
    """Nesterov's momentum as scikit-learn steps it, ``hyper = [learning_rate,
    momentum]``: ``v = mu v - lr g``, ``p += mu v - lr g`` (the step looks ahead
    along the new velocity)."""
    lr, mu = params.dtype.type(hyper[0]), params.dtype.type(hyper[1])
    for i in range(params.size):
        step = lr * (grad[i] + l2 * params[i])
        v[i] = mu * v[i] - step
        params[i] += mu * v[i] - step


@kernel
def _adam(params, grad, hyper, m, v, l2):
    """Adam as ``torch.optim.Adam`` steps it (no weight decay), ``hyper = [lr, beta1,
    beta2, eps, t]`` with ``t`` the steps taken so far (this one included: see
    :func:`begin_step`), ``m``, ``v`` the first and second moments."""
    lr, beta1, beta2, eps, t = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    dt = params.dtype.type
    step_size = dt(lr / (1.0 - beta1**t))
    root_correction = dt(np.sqrt(1.0 - beta2**t))
    keep1, keep2, eps_ = dt(1.0 - beta1), dt(1.0 - beta2), dt(eps)
    b2 = dt(beta2)
    for i in range(params.size):
        g = grad[i] + l2 * params[i]
        m[i] += keep1 * (g - m[i])  # torch's lerp
        v[i] = b2 * v[i] + keep2 * g * g
        params[i] -= step_size * m[i] / (np.sqrt(v[i]) / root_correction + eps_)


@kernel
def begin_step(rule, hyper):
    """Count one more step (once per batch, before its updates): Adam's bias
    correction needs the step number."""
    if rule == ADAM_RULE:
        hyper[4] += 1.0


@kernel
def apply_update(rule, params, grad, hyper, state, lo, hi):
    """Step ``params[lo:hi]`` by rule ``rule`` from the gradient ``grad``."""
    apply_decayed_update(rule, params, grad, hyper, state, lo, hi, params.dtype.type(0.0))


@kernel
def apply_decayed_update(rule, params, grad, hyper, state, lo, hi, l2):
    """Step ``params[lo:hi]`` by rule ``rule`` from the gradient ``grad + l2 *
    params``. The rules loop over slices from 0: a loop from a runtime ``lo`` did
    not vectorise (Numba guards each index against being negative), which
    tripled Adam's step."""
    p, g = params[lo:hi], grad[lo:hi]
    if rule == SGD_RULE:
        _sgd(p, g, hyper, l2)
    elif rule == MOMENTUM_RULE:
        _momentum(p, g, hyper, state[0][lo:hi], l2)
    elif rule == ADAM_RULE:
        _adam(p, g, hyper, state[0][lo:hi], state[1][lo:hi], l2)
    elif rule == NESTEROV_RULE:
        _nesterov(p, g, hyper, state[0][lo:hi], l2)
    else:
        raise ValueError("unknown update rule code (see kernels/_tables.py UPDATE_RULES)")
