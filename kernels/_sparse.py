"""The fused passes of :mod:`._network` for a sparse input: ``X`` in CSR form
(``data``, ``indices``, ``indptr``), never densified.

Only the first layer differs. Its product ``X @ W[0]`` adds, for each stored
entry ``X[r, j]``, that entry times row ``j`` of ``W[0]`` (so its cost follows
the stored entries, not the features); its weight gradient ``X.T @ delta[0] +
l2 W[0]`` scatters each entry's ``X[r, j] * delta[0][r]`` into row ``j``. Every
later layer, the head, the backward pass and the updates are the dense passes'
own helpers. The passes visit the rows ``rows[start:start + n]`` of ``X``: a
batch's, or a chunk's, gathering nothing but their targets. They run on the
calling thread.
"""

import numpy as np

from ._jit import NO_ACCUMULATE, ZERO_OFFSET, entry_kernel, kernel
from ._linalg import column_sums
from ._network import (
    _activation_offset,
    _b_off,
    _size,
    _w_off,
    add_batch_loss,
    backward,
    forward_from,
    output_delta,
    weight_sum,
)
from ._optimizers import apply_decayed_update, apply_update, begin_step

# Flags passed as typed globals: a literal True/False compiles the callee again.
WHOLE, IN_PLACE = np.bool_(True), np.bool_(False)


@kernel
def sparse_product(data, indices, indptr, rows, start, n, params, w0, n_out, work):
    """``work[:n * n_out] = X[rows[start:start + n]] @ W``, ``W`` (n_in, n_out) at
    ``params[w0:]``."""
    zero = work.dtype.type(0.0)
    for r in range(n):
        src = rows[start + r]
        out = work[r * n_out : (r + 1) * n_out]
        for j in range(n_out):
            out[j] = zero
        for k in range(indptr[src], indptr[src + 1]):
            v = data[k]
            w = w0 + indices[k] * n_out
            row = params[w : w + n_out]
            for j in range(n_out):
                out[j] += v * row[j]


@kernel
def sparse_weight_gradient(data, indices, indptr, rows, start, n, D, params, w0, grad, n_in,
                           n_out, l2, whole):
    """``grad[w0:] = X[rows[start:start + n]].T @ D + l2 W`` for the (n, n_out) flat
    delta ``D`` and ``W`` (n_in, n_out) at ``params[w0:]``; unless ``whole``, only
    ``X.T @ D`` added to a block that holds zeros (the rows no entry touches
    stay 0, and the update adds the L2 term: see :func:`_clear_touched`)."""
    size = n_in * n_out
    G, W = grad[w0 : w0 + size], params[w0 : w0 + size]
    if whole and l2 != 0.0:
        for i in range(size):
            G[i] = l2 * W[i]
    elif whole:
        zero = grad.dtype.type(0.0)
        for i in range(size):
            G[i] = zero
    for r in range(n):
        src = rows[start + r]
        d = D[r * n_out : (r + 1) * n_out]
        for k in range(indptr[src], indptr[src + 1]):
            v = data[k]
            g = grad[w0 + indices[k] * n_out : w0 + (indices[k] + 1) * n_out]
            for j in range(n_out):
                g[j] += v * d[j]


@kernel
def sum_of_squares(W):
    """``sum(W**2)`` in float64 as eight interleaved partial sums, added in a fixed
    order: without fast-math LLVM keeps one running sum scalar (a chain of
    dependent adds), which over a first layer of millions of weights cost more
    than the batch's update."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n8 = W.size - W.size % 8
    for i in range(0, n8, 8):
        s0 += float(W[i]) * float(W[i])
        s1 += float(W[i + 1]) * float(W[i + 1])
        s2 += float(W[i + 2]) * float(W[i + 2])
        s3 += float(W[i + 3]) * float(W[i + 3])
        s4 += float(W[i + 4]) * float(W[i + 4])
        s5 += float(W[i + 5]) * float(W[i + 5])
        s6 += float(W[i + 6]) * float(W[i + 6])
        s7 += float(W[i + 7]) * float(W[i + 7])
    for i in range(n8, W.size):
        s0 += float(W[i]) * float(W[i])
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@kernel
def _clear_touched(indices, indptr, rows, start, n, grad, w0, n_out):
    """Zero the rows of the first layer's gradient that the rows'
    ``rows[start:start + n]`` entries touched: the block holds zeros again."""
    zero = grad.dtype.type(0.0)
    for r in range(n):
        src = rows[start + r]
        for k in range(indptr[src], indptr[src + 1]):
            g = grad[w0 + indices[k] * n_out : w0 + (indices[k] + 1) * n_out]
            for j in range(n_out):
                g[j] = zero


@kernel
def _sparse_forward(params, layout, data, indices, indptr, rows, start, n, work):
    sparse_product(data, indices, indptr, rows, start, n, params, _w_off(layout, ZERO_OFFSET),
                   _size(layout, 1), work)
    return forward_from(params, layout, n, work)


@kernel
def _sparse_cost_and_gradient(params, layout, data, indices, indptr, rows, start, y, rw, n,
                              n_mean, work, grad, l2, data_scale, whole):
    """``(data cost, L2 term)`` of the rows and the gradient into ``grad`` (unless
    ``whole``: the first layer's as :func:`sparse_weight_gradient` leaves it)."""
    out_off = _sparse_forward(params, layout, data, indices, indptr, rows, start, n, work)
    cost = output_delta(params, layout, y, rw, n, n_mean, work, out_off, data_scale)
    no_step = params.dtype.type(0.0)
    # every layer above the first as the dense pass; delta[0] then holds a[0]'s place
    l2_cost = backward(params, layout, work, n, work, grad, l2, no_step, np.int64(1))
    n_in, n_out = _size(layout, 0), _size(layout, 1)
    w0 = _w_off(layout, ZERO_OFFSET)
    if l2 != 0.0:
        l2_cost += sum_of_squares(params[w0 : w0 + n_in * n_out])
    d_off = _activation_offset(layout, ZERO_OFFSET, n)
    D = work[d_off : d_off + n * n_out]
    sparse_weight_gradient(data, indices, indptr, rows, start, n, D, params, w0, grad, n_in,
                           n_out, l2, whole)
    b = _b_off(layout, ZERO_OFFSET)
    if b >= 0:
        column_sums(D.reshape((n, n_out)), grad[b : b + n_out], NO_ACCUMULATE)
    return cost, 0.5 * l2 * l2_cost


@entry_kernel
def sparse_forward_pass(params, layout, data, indices, indptr, rows, work):
    """Forward pass for the rows ``rows`` of the CSR ``X``; returns the offset of
    ``yhat`` in ``work``."""
    return _sparse_forward(params, layout, data, indices, indptr, rows, ZERO_OFFSET, rows.size,
                           work)


@entry_kernel
def sparse_cost_and_gradient(params, layout, data, indices, indptr, rows, y, w, work, grad, l2,
                             data_scale):
    """:func:`._network.cost_and_gradient` for the rows ``rows`` of the CSR ``X``
    (``y`` (n, nL) and the weights ``w`` (n,) or empty: those rows')."""
    n = rows.size
    data_cost, l2_cost = _sparse_cost_and_gradient(params, layout, data, indices, indptr, rows,
                                                   ZERO_OFFSET, y.reshape(y.size), w, n,
                                                   weight_sum(w, n), work, grad, l2,
                                                   data_scale, WHOLE)
    return data_cost + l2_cost


@entry_kernel
def sparse_cost_only(params, layout, data, indices, indptr, rows, y, w, work):
    """The data cost of :func:`sparse_cost_and_gradient` without the backward pass."""
    n = rows.size
    out_off = _sparse_forward(params, layout, data, indices, indptr, rows, ZERO_OFFSET, n, work)
    return output_delta(params, layout, y.reshape(y.size), w, n, weight_sum(w, n), work,
                        out_off, 1.0)


@entry_kernel
def sparse_minibatch_epoch(params, layout, data, indices, indptr, y, w, order, batch_size, rule,
                           hyper, state, l2, per_example, work, grad, y_batch, w_batch, loss):
    """:func:`._network.minibatch_epoch` over the rows in ``order`` of the CSR ``X``;
    each batch's targets (and weights) gathered into ``y_batch`` (``w_batch``),
    its gradient stepped by update rule ``rule`` (plain SGD too).

    The first layer's block of ``grad`` must hold zeros, and holds zeros again on
    return: each batch writes the rows its entries touch, the update adds the L2
    term as it reads them, and they are cleared after it. A batch then costs
    one pass over the first layer's weights (the update's) besides its entries.
    """
    n = weight_sum(w, indptr.size - 1)
    n_out = y.shape[1]
    w0, size = _w_off(layout, ZERO_OFFSET), _size(layout, 0) * _size(layout, 1)
    decay = params.dtype.type(l2)
    for start in range(0, order.size, batch_size):
        m = min(batch_size, order.size - start)
        for r in range(m):
            src = order[start + r]
            y_row, y_dst = y[src], y_batch[r * n_out : (r + 1) * n_out]
            for j in range(n_out):
                y_dst[j] = y_row[j]
            if w.size > 0:
                w_batch[r] = w[src]
        wb = w_batch[: m if w.size > 0 else 0]
        weight = weight_sum(wb, m)
        data_cost, l2_cost = _sparse_cost_and_gradient(
            params, layout, data, indices, indptr, order, start, y_batch[: m * n_out], wb, m,
            weight, work, grad, l2, 1.0 / weight if per_example else 1.0, IN_PLACE)
        loss = add_batch_loss(loss, data_cost, l2_cost, weight, n, per_example)
        begin_step(rule, hyper)
        apply_decayed_update(rule, params, grad, hyper, state, w0, w0 + size, decay)
        apply_update(rule, params, grad, hyper, state, w0 + size, params.size)
        _clear_touched(indices, indptr, order, start, m, grad, w0, _size(layout, 1))
    return loss
