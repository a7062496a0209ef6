"""Fused whole-network passes over one flat parameter buffer.

A network is described by one int64 ``layout`` array (see :func:`make_layout`) and
its parameters live in one flat array: per layer, ``W.ravel()`` then ``b``. Each
pass writes activations and deltas into one flat caller-owned workspace
(:func:`workspace_size`), so repeated calls allocate nothing. Passing few arrays
keeps Numba's per-call overhead small for tiny networks.
"""

import numpy as np

from ._activations import activate_inplace, add_bias_and_activate, backprop_through
from ._heads import cost_and_delta
from ._jit import NO_ACCUMULATE, ZERO_OFFSET, entry_kernel, inlined_kernel, kernel
from ._linalg import SMALL_PRODUCT, column_sums, gemm_nn_flat, gemm_nt_flat, gemm_strided
from ._optimizers import apply_update, begin_step
from ._tables import IDENTITY, SGD_RULE

#: ``IDENTITY`` as a typed global: passed as a literal, it compiled the bias and
#: activation pass (and what it calls) a second time. The same for flags.
IDENTITY_CODE = np.int64(IDENTITY)
TRANSPOSED, AS_IS = np.bool_(True), np.bool_(False)
_HEADER = 2  # layout[0] = number of layers L, layout[1] = output head code


def make_layout(sizes, activation_codes, bias, head_code):
    """Pack the network description into one int64 array; return ``(layout, n_params)``.

    ``layout = [L, head, sizes[0..L], w_offset[0..L-1], b_offset[0..L-1], act[0..L-1]]``
    with ``b_offset = -1`` for layers without bias.
    """
    n_layers = len(sizes) - 1
    w_off, b_off, pos = [], [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w_off.append(pos)
        pos += n_in * n_out
        if bias:
            b_off.append(pos)
            pos += n_out
        else:
            b_off.append(-1)
    layout = np.array(
        [n_layers, head_code, *sizes, *w_off, *b_off, *activation_codes], dtype=np.int64
    )
    return layout, pos


def workspace_size(layout, n_examples):
    """Length of the flat workspace one pass over ``n_examples`` rows needs, serial
    or threaded: every layer's activations, the output pre-activation, then one
    block per hidden layer. The serial pass uses the first of those blocks as
    scratch (its deltas overwrite the activations); a threaded one keeps each
    hidden layer's delta there (:mod:`._parallel`)."""
    n_layers = int(layout[0])
    sizes = [int(s) for s in layout[_HEADER : _HEADER + n_layers + 1]]
    return n_examples * (sum(sizes[1:]) + sizes[-1] + sum(sizes[1:-1]))


@kernel
def _size(layout, i):
    return layout[_HEADER + i]


@kernel
def _w_off(layout, l):
    return layout[_HEADER + layout[0] + 1 + l]


@kernel
def _b_off(layout, l):
    return layout[_HEADER + 2 * layout[0] + 1 + l]


@kernel
def _act(layout, l):
    return layout[_HEADER + 3 * layout[0] + 1 + l]


@kernel
def _activation_offset(layout, l, n):
    """Offset of layer ``l``'s activations (l = 0 is the first hidden layer)."""
    off = 0
    for i in range(l):
        off += n * _size(layout, i + 1)
    return off


@kernel
def _sections(layout, n):
    """Offsets of the output pre-activation and of the scratch block in the workspace."""
    total = _activation_offset(layout, layout[0], n)
    return total, total + n * _size(layout, layout[0])


@kernel
def _add_bias_and_activate(work, off, params, b, n, m, code):
    """``a = f(z + bias)`` in place on the (n, m) block at ``work[off:]`` (``b < 0``:
    no bias)."""
    if b < 0:
        activate_inplace(work[off : off + n * m], m, code)
    else:
        add_bias_and_activate(work[off : off + n * m].reshape((n, m)), params[b : b + m], code)


@inlined_kernel
def _forward(params, layout, x, n, work):
    """Forward pass over ``n`` rows of the flat row-major input ``x``.

    Layer ``l``'s activations land in ``work`` (n, n[l+1]) one after the other;
    the output pre-activation ``z[L]`` is kept too (for the cross-entropy cost).
    Returns the offset of the output activations.
    """
    return forward_rows(params, layout, x, n, ZERO_OFFSET, n, work)


@inlined_kernel
def forward_rows(params, layout, x, n, lo, hi, work):
    """The forward pass of rows ``[lo, hi)`` of an ``n``-row pass over the flat
    row-major input ``x``, into their rows of every layer's block of ``work``:
    the serial pass runs it on all rows, a threaded one on each block of rows.
    Returns the offset of the output activations' block."""
    n_in, n_out = _size(layout, ZERO_OFFSET), _size(layout, 1)
    gemm_nn_flat(x, lo * n_in, params, _w_off(layout, ZERO_OFFSET), work, lo * n_out, hi - lo,
                 n_in, n_out)
    return forward_rows_from(params, layout, n, lo, hi, work)


@inlined_kernel
def activate_rows(params, layout, l, n, lo, hi, work):
    """``a[l] = f(z[l] + b[l])`` in place on rows ``[lo, hi)`` of layer ``l``'s
    block of ``work``, which holds their product ``a[l-1] @ W[l]``; the output
    layer also keeps its pre-activation."""
    n_layers = layout[0]
    n_out, rows = _size(layout, l + 1), hi - lo
    off = _activation_offset(layout, l, n) + lo * n_out
    b = _b_off(layout, l)
    if l < n_layers - 1:
        _add_bias_and_activate(work, off, params, b, rows, n_out, _act(layout, l))
    else:
        z_out = _sections(layout, n)[0] + lo * n_out
        _add_bias_and_activate(work, off, params, b, rows, n_out, IDENTITY_CODE)
        # slices indexed from 0: Numba guards an index from a runtime offset
        # against being negative, which keeps a loop from vectorising
        z, a = work[z_out : z_out + rows * n_out], work[off : off + rows * n_out]
        for i in range(rows * n_out):
            z[i] = a[i]
        activate_inplace(a, n_out, _act(layout, l))


@inlined_kernel
def forward_rows_from(params, layout, n, lo, hi, work):
    """The forward pass of rows ``[lo, hi)`` after the first layer's product (in
    their rows of ``work``'s first block): every layer's activation, and the
    products of the later layers. Returns the offset of the output activations'
    block."""
    n_layers = layout[0]
    rows = hi - lo
    activate_rows(params, layout, ZERO_OFFSET, n, lo, hi, work)
    for l in range(1, n_layers):
        n_in, n_out = _size(layout, l), _size(layout, l + 1)
        gemm_nn_flat(work, _activation_offset(layout, l - 1, n) + lo * n_in, params,
                     _w_off(layout, l), work, _activation_offset(layout, l, n) + lo * n_out,
                     rows, n_in, n_out)
        activate_rows(params, layout, l, n, lo, hi, work)
    return _activation_offset(layout, n_layers - 1, n)


@inlined_kernel
def forward_from(params, layout, n, work):
    """The forward pass after the first layer's product (in ``work``'s first
    block), over all ``n`` rows. Returns the offset of the output activations."""
    return forward_rows_from(params, layout, n, ZERO_OFFSET, n, work)


@entry_kernel
def forward_pass(params, layout, X, work):
    """Forward pass for ``X`` (n, n0); returns the offset of ``yhat`` in ``work``."""
    return _forward(params, layout, X.reshape(X.size), X.shape[0], work)


@kernel
def weight_rows_step(A, lda, D, W, G, rows, n, n_out, l2, lr):
    """Rows ``i0..i0+rows`` of a layer's weight gradient, ``A[:, i0:i1].T @ D + l2 W``,
    into ``G`` (``lr == 0``), or the SGD step ``W -= lr * gradient`` itself. ``A``
    starts at column ``i0`` of the (n, lda) inputs; ``D`` (n, n_out) the delta; ``W``,
    ``G`` start at the block's first weight (all rows: ``i0 = 0``, ``rows = lda``).
    A large product takes the step inside one BLAS call (``W = (1 - lr l2) W - lr
    a.T @ delta``): no gradient buffer to write and read back, which was 5 % of an
    MNIST-sized epoch."""
    size = rows * n_out
    if lr != 0.0 and n * size > SMALL_PRODUCT:
        gemm_strided(TRANSPOSED, AS_IS, rows, n_out, n, -lr, A, lda, D, n_out, 1.0 - lr * l2, W,
                     n_out)
        return
    if n * size > SMALL_PRODUCT:
        gemm_strided(TRANSPOSED, AS_IS, rows, n_out, n, 1.0, A, lda, D, n_out, 0.0, G, n_out)
    else:
        zero = G.dtype.type(0.0)
        for i in range(size):
            G[i] = zero
        for r in range(n):
            for i in range(rows):
                a = A[r * lda + i]
                for j in range(n_out):
                    G[i * n_out + j] += a * D[r * n_out + j]
    if l2 != 0.0:
        for i in range(size):
            G[i] += l2 * W[i]
    if lr != 0.0:
        for i in range(size):
            W[i] -= lr * G[i]


@kernel
def _weight_step(src, a_off, work, d_off, params, grad, w, n, n_in, n_out, l2, lr):
    """Layer ``l``'s whole weight gradient (or SGD step) by :func:`weight_rows_step`."""
    weight_rows_step(src[a_off:], n_in, work[d_off:], params[w:], grad[w:], n_in, n, n_out,
                     l2, lr)


@kernel
def weight_sum(w, n):
    """What the ``n`` rows weigh together: ``n`` without weights (``w`` empty), else
    the sum of ``w``; a batch whose weights are all 0 counts 1, so that its
    (zero) data terms stay finite."""
    if w.size == 0:
        return float(n)
    total = 0.0
    for i in range(w.size):
        total += w[i]
    return total if total > 0.0 else 1.0


@inlined_kernel
def add_batch_loss(loss, data_cost, l2_cost, weight, n, per_example):
    """``loss`` plus one batch's share of its epoch's loss (every engine's epoch
    adds it up so): a sum-type cost adds up over batches, a mean-type one is
    weighted by the batch's rows (its weight) over the epoch's ``n``, and the L2
    term by the batch's rows too."""
    loss += data_cost * weight if per_example else data_cost * weight / n
    loss += l2_cost * weight / n
    return loss


@inlined_kernel
def _cost_and_gradient(params, layout, x, y, rw, n, n_mean, work, grad, l2, data_scale, lr):
    """Cost of the batch, as ``(data cost, L2 term)``, and its gradient into
    ``grad``; with ``lr != 0`` the SGD step ``params -= lr * gradient`` instead
    (``grad`` then holds only the bias gradients). Rows weighted by ``rw``
    (empty: unweighted), means over ``n_mean``."""
    out_off = _forward(params, layout, x, n, work)
    cost = output_delta(params, layout, y, rw, n, n_mean, work, out_off, data_scale)
    l2_cost = backward(params, layout, x, n, work, grad, l2, lr, ZERO_OFFSET)
    return cost, 0.5 * l2 * l2_cost


@inlined_kernel
def output_delta(params, layout, y, rw, n, n_mean, work, out_off, data_scale):
    """The head's scaled data cost; ``delta[L]`` replaces the output activations."""
    n_layers = layout[0]
    z_out, _ = _sections(layout, n)
    m = n * _size(layout, n_layers)
    return cost_and_delta(work[out_off : out_off + m], work[z_out : z_out + m], y, rw,
                          layout[1], _act(layout, n_layers - 1), n, n_mean, data_scale, True)


@inlined_kernel
def backward(params, layout, x, n, work, grad, l2, lr, first):
    """Backpropagate ``delta[L]`` (in place of the output activations) down to layer
    ``first``: each layer's weight and bias gradient (or the SGD step, ``lr != 0``)
    and, below ``first`` too, the deltas; ``delta[first - 1]`` ends where
    ``a[first - 1]`` was. ``x``: the flat input, used at ``first = 0``. Returns
    the sum of ``W**2`` over these layers (with ``l2``)."""
    n_layers = layout[0]
    _, scratch = _sections(layout, n)
    l2_cost = 0.0
    for l in range(n_layers - 1, first - 1, -1):
        n_in, n_out = _size(layout, l), _size(layout, l + 1)
        d_off = _activation_offset(layout, l, n)  # delta[l] lives where a[l] was
        w = _w_off(layout, l)
        if l2 != 0.0:
            W = params[w : w + n_in * n_out]
            for i in range(n_in * n_out):
                l2_cost += W[i] * W[i]
        if l > 0:  # delta[l-1] before a step changes W[l]; a[l-1] is still needed
            gemm_nt_flat(work, d_off, params, w, work, scratch, n, n_out, n_in)
            _weight_step(work, _activation_offset(layout, l - 1, n), work, d_off, params,
                         grad, w, n, n_in, n_out, l2, lr)
        else:
            _weight_step(x, ZERO_OFFSET, work, d_off, params, grad, w, n, n_in, n_out, l2, lr)
        b = _b_off(layout, l)
        if b >= 0:
            column_sums(work[d_off : d_off + n * n_out].reshape((n, n_out)),
                        grad[b : b + n_out], NO_ACCUMULATE)
            if lr != 0.0:
                for j in range(b, b + n_out):
                    params[j] -= lr * grad[j]
        if l > 0:
            a_off = _activation_offset(layout, l - 1, n)
            backprop_through(work[a_off : a_off + n * n_in], work[scratch : scratch + n * n_in],
                             _act(layout, l - 1))
    return l2_cost


@entry_kernel
def cost_and_gradient(params, layout, X, y, w, work, grad, l2, data_scale):
    """Cost ``data_scale * loss + (l2/2) sum W**2`` and its gradient into ``grad``.

    ``X`` (n, n0) and ``y`` (n, nL) are C-contiguous of the params' dtype, ``w`` the
    rows' weights (n,) or empty; ``grad`` has the shape and layout of ``params``.
    Returns the cost as float64.
    """
    n = X.shape[0]
    data_cost, l2_cost = _cost_and_gradient(params, layout, X.reshape(X.size),
                                            y.reshape(y.size), w, n, weight_sum(w, n), work,
                                            grad, l2, data_scale, params.dtype.type(0.0))
    return data_cost + l2_cost


@kernel
def gather_rows(X, y, w, order, start, lo, hi, X_batch, y_batch, w_batch):
    """Rows ``lo..hi`` of the batch that starts at ``order[start]``: rows
    ``order[start + r]`` of ``X`` and ``y`` (and of the weights ``w``, unless
    empty) into row ``r`` of the flat batch buffers (slices indexed from 0, so
    the copies vectorise)."""
    n_in, n_out = X.shape[1], y.shape[1]
    for r in range(lo, hi):
        src = order[start + r]
        if w.size > 0:
            w_batch[r] = w[src]
        x_row, x_dst = X[src], X_batch[r * n_in : (r + 1) * n_in]
        y_row, y_dst = y[src], y_batch[r * n_out : (r + 1) * n_out]
        for j in range(n_in):
            x_dst[j] = x_row[j]
        for j in range(n_out):
            y_dst[j] = y_row[j]


@entry_kernel
def minibatch_epoch(params, layout, X, y, w, order, batch_size, rule, hyper, state, l2,
                    per_example, work, grad, X_batch, y_batch, w_batch, loss):
    """Mini-batch steps by update rule ``rule`` (``_optimizers.py``, with its
    ``hyper`` and ``state``) over the rows in ``order``, in place on ``params``:
    a whole epoch, or one slice of it (whole batches; an epoch can then be
    interrupted between slices).

    Rows are visited in ``order``; each batch of ``batch_size`` of them is gathered
    into the flat buffers ``X_batch``/``y_batch`` and stepped on the gradient of the
    batch's mean cost (``per_example``: divide the data cost by the batch size, for
    sum-type costs). With weights ``w`` (else empty) a batch's mean is over its
    weights' sum and the epoch's over all of ``w``; ``w_batch`` holds a batch's.

    Returns ``loss`` (the loss of the epoch's earlier slices, 0.0 for the first)
    plus this slice's share of the epoch's loss, in the units of
    :func:`cost_and_gradient` at ``data_scale=1`` over all the epoch's ``X.shape[0]``
    rows, gathered from the batches as they were visited (each at the parameters
    it stepped from, the L2 term weighted by the batch's rows): no second pass over
    the data, and slices added up in this order give one call's bits.
    """
    # the epoch's rows (or weight): what a mean-type loss is weighted by
    n = weight_sum(w, X.shape[0])
    n_out = y.shape[1]
    # plain SGD steps inside the pass's BLAS calls; other rules need the gradient
    step = params.dtype.type(hyper[0] if rule == SGD_RULE else 0.0)
    for start in range(0, order.size, batch_size):
        m = min(batch_size, order.size - start)
        gather_rows(X, y, w, order, start, ZERO_OFFSET, m, X_batch, y_batch, w_batch)
        wb = w_batch[: m if w.size > 0 else 0]
        weight = weight_sum(wb, m)
        data_cost, l2_cost = _cost_and_gradient(params, layout, X_batch, y_batch[: m * n_out],
                                                wb, m, weight, work, grad, l2,
                                                1.0 / weight if per_example else 1.0, step)
        loss = add_batch_loss(loss, data_cost, l2_cost, weight, n, per_example)
        if rule != SGD_RULE:
            begin_step(rule, hyper)
            apply_update(rule, params, grad, hyper, state, ZERO_OFFSET, params.size)
    return loss


@entry_kernel
def cost_only(params, layout, X, y, w, work, l2):
    """The cost of :func:`cost_and_gradient` without the backward pass."""
    n = X.shape[0]
    n_layers = layout[0]
    out_off = _forward(params, layout, X.reshape(X.size), n, work)
    z_out, _ = _sections(layout, n)
    m = y.size
    cost = cost_and_delta(work[out_off : out_off + m], work[z_out : z_out + m], y.reshape(m),
                          w, layout[1], _act(layout, n_layers - 1), n, weight_sum(w, n), 1.0,
                          False)
    if l2 == 0.0:
        return cost
    l2_cost = 0.0
    for l in range(n_layers):
        w = _w_off(layout, l)
        W = params[w : w + _size(layout, l) * _size(layout, l + 1)]
        for i in range(W.size):
            l2_cost += W[i] * W[i]
    return cost + 0.5 * l2 * l2_cost
