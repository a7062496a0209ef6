"""Compiled optimizer updates: one record per rule of :data:`._tables.UPDATE_RULES`,
from which the loops and the dispatch are generated.

A rule is its per-element ``step`` and a ``prepare`` that turns its float64
hyperparameters ``hyper`` (named in its table row) into the constants of one
batch's step, in the parameters' dtype. Its state (rows of the parameters'
shape and dtype, named in the row) is stepped with the parameters.

The generated update steps the entries ``[lo, hi)`` of the flat parameters in
place: a parallel pass steps its blocks of parameters separately, after
:func:`begin_step` once per batch. ``l2`` adds ``l2 * params`` to the gradient
as the step reads it (0: the gradient as it is, exactly): a sparse first
layer's gradient is stored without its L2 term, so that only the rows its
batch touches are written.
"""

from typing import NamedTuple

import numpy as np

from ._generate import by_code, specialise
from ._jit import ZERO_OFFSET, inlined_kernel, kernel
from ._tables import ADAM_RULE, MOMENTUM_RULE, NESTEROV_RULE, SGD_RULE, UPDATE_RULES

#: Adam's step count, a hyperparameter the compiled rule advances.
ADAM_STEPS = UPDATE_RULES["adam"].hyperparameters.index("steps")


class RuleKernel(NamedTuple):
    """A rule's compiled side."""

    #: ``(hyper, params)``: the batch's constants, a tuple in ``params``' dtype
    prepare: object
    #: ``(p, g, *state, constants)``: the stepped ``p`` and state entries
    step: object
    #: ``(hyper)``: once per batch before its steps (a step count advances)
    begin: object


@inlined_kernel
def no_begin(hyper):
    pass


@inlined_kernel
def learning_rate(hyper, params):
    return (params.dtype.type(hyper[0]),)


@inlined_kernel
def sgd_step(p, g, c):
    """``p -= lr g``."""
    (lr,) = c
    return p - lr * g


@inlined_kernel
def learning_rate_and_momentum(hyper, params):
    return params.dtype.type(hyper[0]), params.dtype.type(hyper[1])


@inlined_kernel
def momentum_step(p, g, v, c):
    """Classical momentum: ``v = mu v - lr g``, ``p += v``."""
    lr, mu = c
    v = mu * v - lr * g
    return p + v, v


@inlined_kernel
def nesterov_step(p, g, v, c):
    """Nesterov's momentum as scikit-learn steps it: ``v = mu v - lr g``,
    ``p += mu v - lr g`` (the step looks ahead along the new velocity)."""
    lr, mu = c
    step = lr * g
    v = mu * v - step
    return p + (mu * v - step), v


@inlined_kernel
def adam_begin(hyper):
    hyper[ADAM_STEPS] += 1.0


@inlined_kernel
def adam_prepare(hyper, params):
    """Adam as ``torch.optim.Adam`` steps it (no weight decay), ``t`` the steps
    taken so far, this one included."""
    lr, beta1, beta2, eps, t = hyper[0], hyper[1], hyper[2], hyper[3], hyper[ADAM_STEPS]
    dt = params.dtype.type
    return (dt(lr / (1.0 - beta1**t)), dt(np.sqrt(1.0 - beta2**t)), dt(1.0 - beta1),
            dt(1.0 - beta2), dt(beta2), dt(eps))


@inlined_kernel
def adam_step(p, g, m, v, c):
    """``m``, ``v``: the first and second moments."""
    step_size, root_correction, keep1, keep2, b2, eps = c
    m = m + keep1 * (g - m)  # torch's lerp
    v = b2 * v + keep2 * g * g
    return p - step_size * m / (np.sqrt(v) / root_correction + eps), m, v


# Templates of a rule's loop, by the number of state rows it keeps. The rules loop
# over slices from 0: a loop from a runtime ``lo`` did not vectorise (Numba guards
# each index against being negative), which tripled Adam's step.


def _update_stateless(params, grad, hyper, state, lo, hi, l2):
    c = prepare(hyper, params)  # noqa: F821 (the record's fields)
    p, g = params[lo:hi], grad[lo:hi]
    for i in range(p.size):
        p[i] = step(p[i], g[i] + l2 * p[i], c)  # noqa: F821


def _update_one_row(params, grad, hyper, state, lo, hi, l2):
    c = prepare(hyper, params)  # noqa: F821
    p, g, s = params[lo:hi], grad[lo:hi], state[0][lo:hi]
    for i in range(p.size):
        p[i], s[i] = step(p[i], g[i] + l2 * p[i], s[i], c)  # noqa: F821


def _update_two_rows(params, grad, hyper, state, lo, hi, l2):
    c = prepare(hyper, params)  # noqa: F821
    p, g, s, t = params[lo:hi], grad[lo:hi], state[0][lo:hi], state[1][lo:hi]
    for i in range(p.size):
        p[i], s[i], t[i] = step(p[i], g[i] + l2 * p[i], s[i], t[i], c)  # noqa: F821


LOOP_TEMPLATES = (_update_stateless, _update_one_row, _update_two_rows)


class Update(NamedTuple):
    update: object
    begin: object


def rule_update(name, rule):
    """The generated loop of the rule ``name`` (its row in ``UPDATE_RULES``)."""
    n_state = len(UPDATE_RULES[name].state)
    return Update(specialise(LOOP_TEMPLATES[n_state], f"{name}_update", rule, kernel),
                  rule.begin)


#: Rule code -> its compiled side.
RULE_KERNELS = {
    SGD_RULE: rule_update("sgd", RuleKernel(learning_rate, sgd_step, no_begin)),
    MOMENTUM_RULE: rule_update(
        "momentum", RuleKernel(learning_rate_and_momentum, momentum_step, no_begin)),
    ADAM_RULE: rule_update("adam", RuleKernel(adam_prepare, adam_step, adam_begin)),
    NESTEROV_RULE: rule_update(
        "nesterov", RuleKernel(learning_rate_and_momentum, nesterov_step, no_begin)),
}


@by_code(RULE_KERNELS, kernel, code="rule", label="update rule")
def begin_step(rule, hyper):
    """Count one more step (once per batch, before its updates)."""
    begin(hyper)  # noqa: F821


@by_code(RULE_KERNELS, kernel, code="rule", label="update rule")
def apply_decayed_update(rule, params, grad, hyper, state, lo, hi, l2):
    """Step ``params[lo:hi]`` by rule ``rule`` from the gradient ``grad + l2 *
    params``."""
    update(params, grad, hyper, state, lo, hi, l2)  # noqa: F821


@kernel
def apply_update(rule, params, grad, hyper, state, lo, hi):
    """Step ``params[lo:hi]`` by rule ``rule`` from the gradient ``grad``."""
    apply_decayed_update(rule, params, grad, hyper, state, lo, hi, params.dtype.type(0.0))


@kernel
def step_all(rule, params, grad, hyper, state):
    """One whole step of every parameter: the count, then the update."""
    begin_step(rule, hyper)
    apply_update(rule, params, grad, hyper, state, ZERO_OFFSET, params.size)
