"""Output heads: the data cost of a batch and ``delta[L] = dJ/dz[L]``, per head code
of :data:`._tables.HEADS` (a loss with the output activations it is defined for).

A head sees the output activations ``a`` and pre-activations ``z`` (flat,
``n`` rows of ``m``) and the targets ``y``; it returns the data cost times
``data_scale`` and, when asked, overwrites ``a`` by ``data_scale * dJ/dz``.
Means are over ``n_mean`` rows: a parallel pass hands each head a block of the
batch's rows, and the blocks' costs add up to the batch's.

Sample weights: ``w`` holds one weight per row (empty: every row weighs 1). A
row's cost and delta are multiplied by its weight and means are over the
weights' sum (the caller's ``n_mean``), so a weight of ``k`` counts a row ``k``
times and a weight of 0 drops it. Multiplying by a weight of 1 is exact: the
unweighted pass gives the same bits either way.
Each head's compiled side is one record of :data:`HEAD_KERNELS`, from which the
dispatch :func:`cost_and_delta` is generated. A loss on its canonical link
(delta ``a - y``) needs only its cost per entry (:func:`canonical_head`).
"""

from typing import NamedTuple

import numpy as np

from ._activations import prime_from_output_of
from ._generate import by_code, specialise
from ._jit import inlined_kernel, kernel
from ._tables import HALF_SSE, MSE, POISSON, SIGMOID_CROSS_ENTROPY, SOFTMAX_CROSS_ENTROPY


@kernel
def _row_weight(w, r):
    """The weight of row ``r`` (1 without weights)."""
    return w[r] if w.size > 0 else 1.0


@inlined_kernel
def _squared_error(a, z, y, w, n, m, code, n_mean, data_scale, with_delta, head):
    """Half the summed squared error (mse: the mean over rows of the full squared
    error); delta ``(a - y) f'(z)`` scaled alike. One record serves both heads,
    so one copy of the loop."""
    mean = head == MSE
    one = a.dtype.type(1.0)
    scale = data_scale * (2.0 / n_mean if mean else 1.0)
    cost = 0.0
    for row in range(n):
        wr = _row_weight(w, row)
        s = scale * wr
        for i in range(row * m, (row + 1) * m):
            r = a[i] - y[i]
            cost += wr * (r * r)
            if with_delta:
                a[i] = r * s * prime_from_output_of(a[i], code, one)
    return cost * (data_scale / n_mean if mean else 0.5 * data_scale)


@kernel
def _softplus_cost(a, z, y):
    """The binary cross-entropy of ``a = sigmoid(z)``: ``softplus(z) - y z``, finite
    at any finite ``z``."""
    return max(z, 0.0) + np.log1p(np.exp(-abs(z))) - y * z


@kernel
def _poisson_cost(a, z, y):
    """Half the Poisson deviance of ``a = exp(z)``: ``a - y z + y log y - y``
    (``y log y = 0`` at ``y = 0``), with ``z`` for ``log a``."""
    y_log_y = y * np.log(y) if y > 0 else 0.0
    return a - y * z + y_log_y - y


def _canonical(a, z, y, w, n, m, code, n_mean, data_scale, with_delta, head):
    """A head whose output activation is its loss's canonical link (sigmoid with
    the binary cross-entropy, exp with the Poisson deviance): the mean over rows
    of ``entry_cost(a, z, y)`` summed over the row's outputs, and delta ``a - y``
    (a template over :class:`_EntryCost`: see :func:`canonical_head`)."""
    scale = data_scale / n_mean
    cost = 0.0
    for row in range(n):
        wr = _row_weight(w, row)
        s = scale * wr
        for i in range(row * m, (row + 1) * m):
            cost += wr * entry_cost(a[i], z[i], y[i])  # noqa: F821
            if with_delta:
                a[i] = (a[i] - y[i]) * s
    return cost * scale


@inlined_kernel
def _softmax_cross_entropy(a, z, y, w, n, m, code, n_mean, data_scale, with_delta, head):
    """Mean over rows of ``-sum_j y_j log softmax(z)_j = sum_j y_j (lse(z) - z_j)``,
    the log-sum-exp taken around the row's maximum (finite at any finite ``z``);
    delta ``softmax(z) - y``."""
    scale = data_scale / n_mean
    cost = 0.0
    for r in range(n):
        # log-sum-exp = top - log(a_k) at the row's maximum z_k: there exp(z_k - top)
        # = 1, so the forward pass's softmax holds a_k = 1 / sum(exp(z - top))
        k = r * m
        for j in range(r * m + 1, (r + 1) * m):
            if z[j] > z[k]:
                k = j
        lse = z[k] - np.log(float(a[k]))
        wr = _row_weight(w, r)
        for j in range(r * m, (r + 1) * m):
            cost += wr * (y[j] * (lse - z[j]))
    if with_delta:
        for r in range(n):
            s = scale * _row_weight(w, r)
            for i in range(r * m, (r + 1) * m):
                a[i] = (a[i] - y[i]) * s
    return cost * scale


class HeadKernel(NamedTuple):
    """The compiled side of a head: ``cost(a, z, y, w, n, m, code, n_mean,
    data_scale, with_delta, head)`` returns the scaled data cost (float64) and, with
    ``with_delta``, writes the scaled ``dJ/dz[L]`` over ``a``; ``code`` is the
    output activation."""

    cost: object


class _EntryCost(NamedTuple):
    entry_cost: object


def canonical_head(name, entry_cost):
    """The head of a loss on its canonical link from its compiled cost per
    entry, ``entry_cost(a, z, y)``: delta ``a - y``."""
    return HeadKernel(specialise(_canonical, f"{name}_head", _EntryCost(entry_cost),
                                 inlined_kernel))


#: Head code -> its compiled side.
HEAD_KERNELS = {
    HALF_SSE: HeadKernel(_squared_error),
    MSE: HeadKernel(_squared_error),
    SIGMOID_CROSS_ENTROPY: canonical_head("sigmoid_cross_entropy", _softplus_cost),
    SOFTMAX_CROSS_ENTROPY: HeadKernel(_softmax_cross_entropy),
    POISSON: canonical_head("poisson", _poisson_cost),
}


@by_code(HEAD_KERNELS, kernel, code="head", label="output head")
def cost_and_delta(a, z, y, w, head, code, n, n_mean, data_scale, with_delta):
    """The scaled data cost of head ``head`` (float64) on ``n`` rows weighted by
    ``w`` (empty: unweighted), means taken over ``n_mean`` rows (the weights'
    sum); with ``with_delta`` the scaled ``dJ/dz[L]`` replaces ``a``. ``code``:
    the output activation."""
    m = y.size // max(n, 1)
    return cost(a, z, y, w, n, m, code, n_mean, data_scale, with_delta, head)  # noqa: F821
