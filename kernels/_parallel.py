"""The fused passes of :mod:`._network` on every thread: the same math, each batch
split into blocks that threads work on at once.

A pass runs in two parallel steps per batch, with no locks and no shared sums:

1. **Rows.** Block ``t`` of the batch's rows runs the forward pass, the output
   head and every layer's delta for its rows only (each row is independent).
   Its share of the cost goes to ``partial[t]``.
2. **Parameters.** Block ``t`` of each layer's weight rows (its inputs ``i0..i1``)
   and of its biases gets its gradient summed over *all* the batch's rows in one
   product, then its update. Each parameter is written by one block only, so no
   per-thread gradient copies are summed.

The blocks depend only on the number of rows and on ``n_blocks``, never on which
thread runs them, and the partial costs are added in block order: the same
inputs and block count give the same bits in every run. Every sum over the
batch's rows is one product or loop over all of them, as in the serial passes.

Workspace (:func:`._network.workspace_size`): the serial layout (activations, the output
pre-activation) followed by one delta block per hidden layer, because a hidden
layer's activations are still needed after all the deltas are made. The output
layer's delta replaces its activations, as in the serial pass.
"""

import numpy as np
from numba import prange

from ._activations import times_prime_of_output
from ._heads import cost_and_delta
from ._jit import kernel, parallel_kernel
from ._linalg import gemm_nt_flat
from ._network import (
    _act,
    _activation_offset,
    _b_off,
    _sections,
    _size,
    _w_off,
    add_batch_loss,
    forward_rows,
    gather_rows,
    weight_rows_step,
    weight_sum,
)
from ._optimizers import apply_update, begin_step
from ._tables import SGD_RULE

#: ``rule`` of a pass that computes the gradient and steps nothing.
NO_UPDATE = np.int64(-1)
# Flags passed as typed globals: a literal True/False compiles the callee again.
BACKWARD, FORWARD_ONLY = np.bool_(True), np.bool_(False)


@kernel
def _block(n, t, n_blocks):
    """``[lo, hi)`` of block ``t`` when ``n`` items are split into ``n_blocks``
    blocks as even as possible (the first ``n % n_blocks`` one larger). A caller
    in a ``prange`` passes its index as int64 (Numba types it unsigned there, and
    would compile each callee once more for it)."""
    q, r = n // n_blocks, n % n_blocks
    lo = t * q + min(t, r)
    return lo, lo + q + (1 if t < r else 0)


@kernel
def _delta_off(layout, l, n):
    """Offset of layer ``l``'s delta (the output layer's replaces its activations)."""
    n_layers = layout[0]
    if l == n_layers - 1:
        return _activation_offset(layout, l, n)
    z_out, scratch = _sections(layout, n)
    return scratch + _activation_offset(layout, l, n)


@kernel
def _forward_rows(params, layout, x, n, lo, hi, work):
    """Forward pass of rows ``[lo, hi)`` of an ``n``-row pass over the flat
    row-major input ``x``, into their rows of the workspace: the serial pass's
    own row-block helper."""
    forward_rows(params, layout, x, n, lo, hi, work)


@kernel
def _rows_step(params, layout, x, y, w, n, n_mean, lo, hi, work, data_scale, backward):
    """Step 1 for rows ``[lo, hi)``: forward pass, their share of the scaled data
    cost (returned) and, with ``backward``, every layer's delta for these rows
    (weighted by ``w``, the pass's weights or empty; means over ``n_mean``)."""
    _forward_rows(params, layout, x, n, lo, hi, work)
    n_layers = layout[0]
    rows, m = hi - lo, _size(layout, n_layers)
    out = _activation_offset(layout, n_layers - 1, n) + lo * m
    z = _sections(layout, n)[0] + lo * m
    cost = cost_and_delta(work[out : out + rows * m], work[z : z + rows * m],
                          y[lo * m : hi * m], w[lo : hi] if w.size > 0 else w[:0], layout[1],
                          _act(layout, n_layers - 1), rows, n_mean, data_scale, backward)
    if backward:
        for l in range(n_layers - 1, 0, -1):
            n_in, n_out = _size(layout, l), _size(layout, l + 1)
            d = _delta_off(layout, l - 1, n) + lo * n_in
            gemm_nt_flat(work, _delta_off(layout, l, n) + lo * n_out, params, _w_off(layout, l),
                         work, d, rows, n_out, n_in)
            a = _activation_offset(layout, l - 1, n) + lo * n_in
            times_prime_of_output(work[d : d + rows * n_in], work[a : a + rows * n_in],
                                  _act(layout, l - 1))
    return cost


@kernel
def _params_step(params, layout, x, n, t, n_blocks, work, grad, l2, lr, rule, hyper, state):
    """Step 2 for block ``t``: its weight rows and biases of every layer get their
    gradient over all ``n`` rows, then the update (``lr != 0``: the SGD step;
    else ``rule``, or none for :data:`NO_UPDATE`). Returns the block's sum of
    ``W**2``, taken before the step."""
    n_layers = layout[0]
    sq = 0.0
    for l in range(n_layers):
        n_in, n_out = _size(layout, l), _size(layout, l + 1)
        i0, i1 = _block(n_in, t, n_blocks)
        w, size = _w_off(layout, l) + i0 * n_out, (i1 - i0) * n_out
        if l2 != 0.0:
            W = params[w : w + size]
            for i in range(size):
                sq += W[i] * W[i]
        d = _delta_off(layout, l, n)
        D = work[d : d + n * n_out]
        if l == 0:
            weight_rows_step(x[i0:], n_in, D, params[w:], grad[w:], i1 - i0, n, n_out, l2, lr)
        else:
            a = _activation_offset(layout, l - 1, n) + i0
            weight_rows_step(work[a:], n_in, D, params[w:], grad[w:], i1 - i0, n, n_out, l2,
                              lr)
        if rule != NO_UPDATE and rule != SGD_RULE:
            apply_update(rule, params, grad, hyper, state, w, w + size)
        b = _b_off(layout, l)
        if b >= 0:
            j0, j1 = _block(n_out, t, n_blocks)
            # slices indexed from 0, so the loops vectorise (see _forward_rows)
            g, p, width = grad[b + j0 : b + j1], params[b + j0 : b + j1], j1 - j0
            zero = grad.dtype.type(0.0)
            for j in range(width):
                g[j] = zero
            for r in range(n):  # the rows in order, as the serial column sums
                d = D[r * n_out + j0 : r * n_out + j1]
                for j in range(width):
                    g[j] += d[j]
            if lr != 0.0:
                for j in range(width):
                    p[j] -= lr * g[j]
            elif rule != NO_UPDATE and rule != SGD_RULE:
                apply_update(rule, params, grad, hyper, state, b + j0, b + j1)
    return sq


@kernel
def _in_order(partial, n):
    """``partial[0] + ... + partial[n-1]``, always in this order."""
    total = 0.0
    for t in range(n):
        total += partial[t]
    return total


#: What :func:`run` does (``mode``).
EPOCH, GRADIENT, COST, FORWARD = (np.int64(k) for k in range(4))


@parallel_kernel
def run(mode, params, layout, X, y, w, order, batch_size, rule, hyper, state, l2, per_example,
        data_scale, work, grad, X_batch, y_batch, w_batch, n_blocks, partial):
    """Every threaded pass, in ``n_blocks`` blocks; one entry point, so that Numba
    compiles the parallel machinery once per dtype (each entry point costs seconds).

    - ``EPOCH``: :func:`._network.minibatch_epoch` (rows visited in ``order``, a
      whole epoch or a slice of whole batches, gathered into ``X_batch``/``y_batch``);
      ``data_scale`` is the loss of the epoch's earlier slices (0.0 for the first),
      returned with this slice's share added, as the serial pass's ``loss``.
      Weights ``w`` (or empty) as there, a batch's gathered into ``w_batch``.
    - ``GRADIENT``: :func:`._network.cost_and_gradient` over all rows at
      ``data_scale``, the gradient into ``grad``; returns the cost.
    - ``COST``: the data cost alone (``data_scale`` 1, no L2 term).
    - ``FORWARD``: the forward pass; ``yhat`` then starts in ``work`` where the
      serial :func:`._network.forward_pass` puts it. Returns 0.

    Outside ``EPOCH``, ``batch_size`` is the number of rows and ``order``,
    ``rule``, ``hyper``, ``state``, ``X_batch``, ``y_batch``, ``w_batch`` are not
    used (any arrays of their types); ``w`` weighs the rows of ``X``.
    ``partial``: float64 scratch of ``n_blocks``.
    """
    # an epoch's rows (or weight), whatever part of them ``order`` holds
    n = weight_sum(w, X.shape[0])
    weighted = w.size > 0
    gather = mode == EPOCH
    n_rows = order.size if gather else X.shape[0]
    backward = mode == EPOCH or mode == GRADIENT
    x_all, y_all = X.reshape(X.size), y.reshape(y.size)
    step = params.dtype.type(hyper[0] if gather and rule == SGD_RULE else 0.0)
    loss = data_scale if gather else 0.0
    for start in range(0, n_rows, batch_size):
        m = min(batch_size, n_rows - start)
        row_blocks = min(n_blocks, m)
        if gather:
            if weighted:  # the batch's weights first: its mean is over their sum
                for r in range(m):
                    w_batch[r] = w[order[start + r]]
            wb = w_batch[: m if weighted else 0]
            weight = weight_sum(wb, m)
            x, yb, scale = X_batch, y_batch, 1.0 / weight if per_example else 1.0
        else:
            wb, weight = w[: w.size], n
            x, yb, scale = x_all, y_all, data_scale if mode == GRADIENT else 1.0
        for t in prange(row_blocks):
            lo, hi = _block(m, np.int64(t), row_blocks)
            if gather:
                gather_rows(X, y, wb[:0], order, start, lo, hi, X_batch, y_batch, wb)
            if mode == FORWARD:
                _forward_rows(params, layout, x, m, lo, hi, work)
                partial[t] = 0.0
            else:
                partial[t] = _rows_step(params, layout, x, yb, wb, m, weight, lo, hi, work,
                                        scale, backward)
        data_cost = _in_order(partial, row_blocks)
        l2_cost = 0.0
        if backward:
            update = rule if gather else NO_UPDATE
            if update != NO_UPDATE:
                begin_step(update, hyper)
            for t in prange(n_blocks):
                partial[t] = _params_step(params, layout, x, m, np.int64(t), n_blocks, work,
                                          grad, l2, step, update, hyper, state)
            l2_cost = 0.5 * l2 * _in_order(partial, n_blocks)
        if not gather:
            return data_cost + l2_cost
        loss = add_batch_loss(loss, data_cost, l2_cost, weight, n, per_example)
    return loss
