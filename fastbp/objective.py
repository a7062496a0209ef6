"""The objective layer: a network's cost on one data set, as its optimizers see it.

An :class:`Objective` is made by :meth:`fastbp.Network.objective` for validated
``X`` (n, n0) and ``y`` (n, nL). It holds the data, the loss scaling and the L2
term, and answers :meth:`~Objective.cost`, :meth:`~Objective.cost_and_gradient`
(what a full-batch optimizer calls per iteration) and :meth:`~Objective.epoch`
(one pass of mini-batch steps by an optimizer of :mod:`fastbp.optimizers`).

Each gradient engine is one subclass, listed in :data:`ENGINES` under the name
``Network(backend=...)`` takes: the compiled kernels and the NumPy reference.
``Network``, the trainers, the tutorial, the demo and the benchmarks talk to
this interface only; a new engine (a cluster, another library) is one more
subclass. Threads are not an engine: the compiled one picks serial or threaded
passes per call (:mod:`fastbp.threads`).
"""

from contextlib import nullcontext

import numpy as np

from . import reference, threads
from .kernels import _network as fused
from .kernels import _parallel
from .kernels import _sparse as sparse
from .kernels._jit import specialisation

#: Rows per chunk of a pass over many rows (forward, cost, full-batch gradient):
#: bounds its workspace memory. Full-batch float64 gradients over 100 000 rows of
#: 64-64-10 and 60 000 of 784-128-10, at one and two threads, ran fastest in
#: chunks of 4096 rows or within 1 % of it (and faster than in one pass over all
#: rows); 1024 rows cost 784-128-10 11 % at two threads, 16 384 cost 64-64-10 7-9 %.
CHUNK_ROWS = 4096

#: Work of one compiled call of an epoch, in multiply-adds (see
#: :func:`_slice_batches`): about 10 ms of one core (W2 at batch 32: 20 batches
#: a call, 94 calls an epoch), so Ctrl-C is answered within a slice, while
#: the calls between slices cost nothing measurable.
SLICE_WORK = 200_000_000
#: A batch's fixed cost beyond its products (gathering, calls, loops), in
#: multiply-adds: the seed network (2-3-1) at batch 1 takes 0.7 us a batch.
BATCH_WORK = 10_000


class Objective:
    """``J(params) = data_scale * loss(X, y) + (l2 / 2) * sum(W**2)`` of ``net``.

    The parameters are the network's own: :meth:`cost_and_gradient` with
    ``params`` first copies them in, as an optimizer that keeps its own vector
    needs. Mean-type losses (mse, cross-entropy) are means over the rows; the L2
    term is never scaled.

    ``sample_weight`` (n,), validated, of the network's dtype, or None: row ``i``
    counts ``w[i]`` times (a weight of 0 drops it, integer weights equal repeated
    rows), means are over the weights' sum, in every pass and batch.
    """

    _grad = None  # the default gradient buffer, made on first use

    def __init__(self, net, X, y, data_scale=1.0, sample_weight=None):
        self.net = net
        self.X, self.y = X, y
        self.data_scale = float(data_scale)
        self.sample_weight = sample_weight
        #: the weights as the kernels take them: empty for unweighted rows
        self.w = np.empty(0, X.dtype) if sample_weight is None else sample_weight
        #: what all rows weigh together (their number without weights)
        self.weight = (float(X.shape[0]) if sample_weight is None
                       else float(np.sum(sample_weight, dtype=np.float64)))

    @property
    def n_rows(self):
        return self.X.shape[0]

    def _share(self, start, stop):
        """The part of all rows' weight (or count) that rows ``start:stop`` hold."""
        w = self.sample_weight
        if w is None:
            return (stop - start) / self.n_rows
        part = float(np.sum(w[start:stop], dtype=np.float64))
        return part / self.weight if self.weight else 0.0

    def cost(self):
        """``J`` at the current parameters, as a float."""
        raise NotImplementedError

    def cost_and_gradient(self, params=None, out=None):
        """``(J, grad)`` with ``grad`` flat like ``net.get_params()``, written into
        ``out`` (by default a buffer of this objective, rewritten by the next call).

        Returns
        -------
        J : float
        grad : ndarray (n_params,) of the network's dtype
        """
        raise NotImplementedError

    def epoch(self, optimizer, order, batch_size):
        """One pass over the rows in ``order`` (int64), stepping the parameters by
        ``optimizer`` on each batch of ``batch_size`` rows (the gradient of the
        batch's mean cost; ``data_scale`` is not used).

        Returns
        -------
        float
            The epoch's loss in :meth:`cost`'s units, gathered from the batches as
            they were visited (each at the parameters it stepped from).
        """
        raise NotImplementedError

    @staticmethod
    def forward(net, X):
        """``yhat`` (n, nL) for validated ``X`` (n, n0)."""
        raise NotImplementedError

    def _set(self, params):
        if params is not None:
            self.net._params[...] = params

    def _gradient_buffer(self, out):
        if out is not None:
            return out
        if self._grad is None:
            self._grad = np.empty_like(self.net._params)
        return self._grad

    def _l2_term(self):
        net = self.net
        if not net.l2:
            return 0.0
        return 0.5 * net.l2 * sum(np.sum(W * W, dtype=np.float64) for W in net.weights)


class CompiledObjective(Objective):
    """The fused Numba passes of :mod:`fastbp.kernels`: serial ones for small
    passes, the threaded ones of :mod:`fastbp.kernels._parallel` for large passes
    (see :mod:`fastbp.threads`)."""

    _batch = None  # the epoch's gathered batch: (X rows, y rows), flat
    _bound = None  # (compiled pass, its arguments, the gradient buffer): see _bind
    _chunk_grad = None  # the gradient of one chunk after the first: see _chunked_gradient

    def cost(self):
        net, n = self.net, self.n_rows
        mean = net._head.mean
        total = 0.0
        n_threads = self._pass_threads(n)
        with _running(n_threads):
            for start, stop, work in _chunks(net, n):
                J = self._chunk_cost(start, stop, work, n_threads)
                # mean-type costs are means over the chunk: weight them by its share
                total += J * self._share(start, stop) if mean else J
        return float(self.data_scale * total + self._l2_term())

    def _pass_threads(self, n):
        """:func:`_threads` of a pass over chunks of ``n`` rows."""
        return _threads(self.net, _chunk_size(n))

    def _chunk_cost(self, start, stop, work, n_threads):
        """The data cost of rows ``start:stop`` (a mean over them, for mean-type losses)."""
        net = self.net
        X, y, w = self.X[start:stop], self.y[start:stop], self.w[start:stop]
        if n_threads > 1:
            return _threaded(_parallel.COST, net, X, y, w, work, n_threads)
        return fused.cost_only(net._params, net._layout, X, y, w, work, 0.0)

    def _chunk_gradient(self, start, stop, work, n_threads, grad, l2, data_scale):
        """The cost of rows ``start:stop`` at ``data_scale`` and L2 factor ``l2``,
        its gradient into ``grad``."""
        net = self.net
        X, y, w = self.X[start:stop], self.y[start:stop], self.w[start:stop]
        if n_threads > 1:
            return _threaded(_parallel.GRADIENT, net, X, y, w, work, n_threads, data_scale,
                             grad, l2)
        return fused.cost_and_gradient(net._params, net._layout, X, y, w, work, grad, l2,
                                       data_scale)

    def cost_and_gradient(self, params=None, out=None):
        """``(J, grad)`` as :meth:`Objective.cost_and_gradient`, summed over chunks of
        rows (:func:`_chunks`): the scratch is at most ``CHUNK_ROWS x w`` values
        (``w``: the network's workspace per row, ``sum(widths[1:]) + widths[-1] +
        sum(hidden widths)``, under twice the sum of the widths) and one
        gradient, whatever the rows. The chunks are added in row order, so the bits depend
        on the rows, the chunk size and the thread count only."""
        if params is not None:
            self.net._params[...] = params
        if out is None:
            bound = self._bound
            if bound is not None:  # an optimizer's call on a small pass: kept lean
                return float(bound[0](*bound[1])), bound[2]
            out = self._gradient_buffer(None)
        net, X = self.net, self.X
        n = X.shape[0]
        scratch = net._scratch
        if n < scratch.parallel_rows and n <= CHUNK_ROWS:
            # a small pass in one chunk: no context to enter (W1 feels 0.5 us)
            work = scratch.work
            if work.size < n * scratch.per_row:
                work = scratch.rows(n)
            args = (net._params, net._layout, X, self.y, self.w, work, out, net.l2,
                    self.data_scale)
            J = float(fused.cost_and_gradient(*args))
            if out is self._grad:
                self._bind(args)
            return J, out
        return self._chunked_gradient(out), out

    def _chunked_gradient(self, out):
        """The cost, and its gradient into ``out``, as the sum of the chunks' in row
        order: the first chunk writes ``out`` (and adds the L2 term), each later
        one writes a buffer of its own that is then added to ``out`` (30 us for
        784-128-10 in float64, 0.06 % of its chunk's pass: not worth a kernel
        option to accumulate instead)."""
        net, n = self.net, self.n_rows
        mean, scale = net._head.mean, self.data_scale
        n_threads = self._pass_threads(n)
        J, grad = 0.0, out
        with _running(n_threads):
            for start, stop, work in _chunks(net, n):
                # a mean-type loss is a mean over the chunk: weight it by its share
                chunk_scale = scale * self._share(start, stop) if mean else scale
                l2 = net.l2 if start == 0 else 0.0  # the L2 term, once
                J += self._chunk_gradient(start, stop, work, n_threads, grad, l2, chunk_scale)
                if grad is not out:
                    out += grad
                elif stop < n:
                    grad = self._chunk_gradient_buffer()
        return float(J)

    def _chunk_gradient_buffer(self):
        if self._chunk_grad is None:
            self._chunk_grad = np.empty_like(self.net._params)
        return self._chunk_grad

    def _bind(self, args):
        """Call the compiled pass for exactly these arguments' types from now on,
        skipping Numba's per-call dispatch (what an optimizer's tiny calls feel).
        Every bound array is a fresh view that no other code holds, so no later
        change to ``X``, ``y`` or a returned gradient can change those types."""
        args = tuple(a.view() if isinstance(a, np.ndarray) else a for a in args)
        self._bound = (specialisation(fused.cost_and_gradient, args), args, self._grad)

    def epoch(self, optimizer, order, batch_size):
        """One compiled call per slice of :func:`_slice_batches` whole batches, the
        running loss handed from slice to slice: the bits of one call for the
        whole epoch, and Python's signal handlers (Ctrl-C) get to run between
        slices."""
        net, n = self.net, self.n_rows
        if self._batch is None or self._batch[0].size < batch_size * net.layer_sizes[0]:
            self._batch = (np.empty(batch_size * net.layer_sizes[0], net.dtype),
                           np.empty(batch_size * net.layer_sizes[-1], net.dtype),
                           np.empty(batch_size if self.w.size else 0, net.dtype))
        per_example, work = not net._head.mean, net._scratch.rows(batch_size)
        rule, hyper, state = optimizer.rule, optimizer.hyper, optimizer.state
        tail = (work, self._gradient_buffer(None), *self._batch)
        n_threads = _threads(net, min(batch_size, n))
        blocks = _blocks(n_threads, min(batch_size, n)) if n_threads > 1 else ()
        step = _slice_batches(net, batch_size) * batch_size  # rows per call
        loss = 0.0
        with _running(n_threads):
            for start in range(0, n, step):
                head = (net._params, net._layout, self.X, self.y, self.w,
                        order[start : start + step],
                        batch_size, rule, hyper, state, net.l2, per_example)
                if n_threads > 1:  # the running loss goes in as data_scale
                    loss = _parallel.run(_parallel.EPOCH, *head, loss, *tail, *blocks)
                else:
                    loss = fused.minibatch_epoch(*head, *tail, loss)
        return float(loss)

    @staticmethod
    def forward(net, X):
        yhat = np.empty((X.shape[0], net.layer_sizes[-1]), net.dtype)
        n_threads = _threads(net, _chunk_size(X.shape[0]))
        with _running(n_threads):
            for start, stop, work in _chunks(net, X.shape[0]):
                if n_threads > 1:
                    _threaded(_parallel.FORWARD, net, X[start:stop], X[start:stop],
                              np.empty(0, net.dtype), work, n_threads)
                    # the output layer's activations, where the serial pass puts them
                    off = fused._activation_offset(net._layout, net._layout[0] - 1, stop - start)
                else:
                    off = fused.forward_pass(net._params, net._layout, X[start:stop], work)
                rows = yhat[start:stop]
                rows[...] = work[off : off + rows.size].reshape(stop - start, -1)
        return yhat


class ReferenceObjective(Objective):
    """:mod:`fastbp.reference` in NumPy: the oracle of the equivalence tests."""

    def cost(self):
        net = self.net
        J = reference.cost(net.weights, net.biases, self.X, self.y, net.activations, net.loss,
                           0.0, self.sample_weight)
        return float(self.data_scale * J + self._l2_term())

    def cost_and_gradient(self, params=None, out=None):
        self._set(params)
        return self._gradient(self.X, self.y, self.sample_weight, self.data_scale,
                              self._gradient_buffer(out))

    def _gradient(self, X, y, w, data_scale, grad):
        net = self.net
        J, gW, gb = reference.cost_and_gradients(
            net.weights, net.biases, X, y, net.activations, net.loss, net.l2, data_scale, w)
        for l, (vW, vb) in enumerate(net._views(grad)):
            vW[...] = gW[l]
            if vb is not None:
                vb[...] = gb[l]
        return J, grad

    def epoch(self, optimizer, order, batch_size):
        net, w = self.net, self.sample_weight
        n = self.n_rows if w is None else self.weight  # a weight counts rows
        per_example = not net._head.mean
        grad = self._gradient_buffer(None)
        loss = 0.0
        for start in range(0, self.n_rows, batch_size):
            idx = order[start : start + batch_size]
            wb = None if w is None else w[idx]
            m = idx.size if w is None else float(np.sum(wb, dtype=np.float64)) or 1.0
            l2_cost = self._l2_term()
            J, grad = self._gradient(self.X[idx], self.y[idx], wb,
                                     1.0 / m if per_example else 1.0, grad)
            loss = fused.add_batch_loss(loss, J - l2_cost, l2_cost, m, n, per_example)
            optimizer.step(net._params, grad)
        return loss

    @staticmethod
    def forward(net, X):
        return reference.forward(net.weights, net.biases, X, net.activations)


class SparseObjective(CompiledObjective):
    """The compiled passes of :mod:`fastbp.kernels._sparse` for a sparse ``X`` (CSR,
    of the network's dtype): the first layer reads the stored entries, the rest
    is the dense passes' own code. Serial; full passes in chunks of rows as
    :class:`CompiledObjective`'s."""

    _epoch_grad = None

    def __init__(self, net, X, y, data_scale=1.0, sample_weight=None):
        super().__init__(net, X, y, data_scale, sample_weight)
        self.csr = (X.data, X.indices, X.indptr)

    def _pass_threads(self, n):
        return 0  # serial: the sparse passes have no threaded form

    def _chunk_cost(self, start, stop, work, n_threads):
        net = self.net
        rows = np.arange(start, stop, dtype=np.int64)
        return sparse.sparse_cost_only(net._params, net._layout, *self.csr, rows,
                                       self.y[start:stop], self.w[start:stop], work)

    def _chunk_gradient(self, start, stop, work, n_threads, grad, l2, data_scale):
        net = self.net
        rows = np.arange(start, stop, dtype=np.int64)
        return sparse.sparse_cost_and_gradient(net._params, net._layout, *self.csr, rows,
                                               self.y[start:stop], self.w[start:stop], work,
                                               grad, l2, data_scale)

    def cost_and_gradient(self, params=None, out=None):
        self._set(params)
        out = self._gradient_buffer(out)
        return self._chunked_gradient(out), out

    def epoch(self, optimizer, order, batch_size):
        net, n = self.net, self.n_rows
        if self._batch is None or self._batch[0].size < batch_size * net.layer_sizes[-1]:
            self._batch = (np.empty(batch_size * net.layer_sizes[-1], net.dtype),
                           np.empty(batch_size if self.w.size else 0, net.dtype))
        # the first layer's gradient rows hold zeros between batches (see
        # sparse_minibatch_epoch): a buffer of the epochs' own, zeroed once
        if self._epoch_grad is None:
            self._epoch_grad = np.zeros_like(net._params)
        work, grad = net._scratch.rows(batch_size), self._epoch_grad
        per_example = not net._head.mean
        step = _slice_batches(net, batch_size) * batch_size  # rows per call
        loss = 0.0
        for start in range(0, n, step):
            loss = sparse.sparse_minibatch_epoch(
                net._params, net._layout, *self.csr, self.y, self.w, order[start : start + step],
                batch_size, optimizer.rule, optimizer.hyper, optimizer.state, net.l2,
                per_example, work, grad, *self._batch, loss)
        return float(loss)

    @staticmethod
    def forward(net, X):
        yhat = np.empty((X.shape[0], net.layer_sizes[-1]), net.dtype)
        for start, stop, work in _chunks(net, X.shape[0]):
            rows = np.arange(start, stop, dtype=np.int64)
            off = sparse.sparse_forward_pass(net._params, net._layout, X.data, X.indices,
                                             X.indptr, rows, work)
            out = yhat[start:stop]
            out[...] = work[off : off + out.size].reshape(stop - start, -1)
        return yhat


#: ``Network(backend=...)`` name -> its gradient engine.
ENGINES = {"numba": CompiledObjective, "numpy": ReferenceObjective}
#: ... and the engine it takes a sparse ``X`` (CSR) to; the reference's products
#: take scipy.sparse as they are.
SPARSE_ENGINES = {"numba": SparseObjective, "numpy": ReferenceObjective}


def _threads(net, n_rows):
    """Threads of a pass over ``n_rows`` rows: 0 for a small pass (serial, BLAS
    left alone), else :func:`fastbp.threads.pass_threads` (1: serial)."""
    if n_rows < net._scratch.parallel_rows:
        return 0
    return threads.pass_threads(n_rows)


def _running(n_threads):
    """The context a pass with ``n_threads`` (see :func:`_threads`) runs in."""
    return threads.large_pass(n_threads > 1) if n_threads else nullcontext()


def _blocks(n_threads, n_rows):
    """``(n_blocks, partial)`` arguments of a parallel pass on ``n_threads`` over
    ``n_rows`` rows per batch."""
    n_blocks = threads.pass_blocks(n_threads, n_rows)
    return n_blocks, np.empty(n_blocks, np.float64)


_NO_ROWS, _NO_HYPER = np.empty(0, np.int64), np.empty(0, np.float64)


def _threaded(mode, net, X, y, w, work, n_threads, data_scale=1.0, grad=None, l2=None):
    """A ``GRADIENT``, ``COST`` or ``FORWARD`` pass of :func:`fastbp.kernels._parallel.run`
    over all rows of ``X`` (``y``: any array of ``X``'s type for ``FORWARD``), the
    rows weighted by ``w`` (or empty), with the L2 factor ``l2`` (by default the
    network's)."""
    unused = np.empty(0, net.dtype)
    return _parallel.run(mode, net._params, net._layout, X, y, w, _NO_ROWS, X.shape[0], 0,
                         _NO_HYPER, unused.reshape(0, 0), net.l2 if l2 is None else l2, False,
                         data_scale, work,
                         unused if grad is None else grad, unused, unused, unused,
                         *_blocks(n_threads, X.shape[0]))


def _slice_batches(net, batch_size):
    """Batches of ``batch_size`` rows per compiled call of an epoch: about
    :data:`SLICE_WORK` multiply-adds (forward and backward products, three per
    weight and row, plus :data:`BATCH_WORK` a batch), at least one batch."""
    sizes = net.layer_sizes
    per_row = 3 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return max(1, SLICE_WORK // (batch_size * per_row + BATCH_WORK))


class Scratch:
    """What the compiled engines keep of a network between calls, so that a small
    call allocates nothing: the flat workspace (grown on demand, never shrunk),
    its size per row, and the fewest rows that threads pay for."""

    __slots__ = ("work", "per_row", "parallel_rows")

    def __init__(self, net):
        self.work = np.empty(0, net.dtype)
        self.per_row = fused.workspace_size(net._layout, 1)
        self.parallel_rows = threads.min_parallel_rows(net.layer_sizes)

    def rows(self, n):
        """The workspace for passes over ``n`` rows."""
        if self.work.size < n * self.per_row:
            self.work = np.empty(n * self.per_row, self.work.dtype)
        return self.work

    def __getstate__(self):  # a copy (a pickled network) starts with no workspace
        return {"work": self.work[:0].copy(), "per_row": self.per_row,
                "parallel_rows": self.parallel_rows}

    def __setstate__(self, state):
        for name, value in state.items():
            setattr(self, name, value)


def _n_chunks(n):
    return max(1, -(-n // CHUNK_ROWS))


def _chunk_size(n):
    """Rows of the largest (the first) of :func:`_chunks` over ``n`` rows."""
    return -(-n // _n_chunks(n))


def _chunks(net, n):
    """``(start, stop, workspace)`` of the chunks of ``n`` rows in row order: as few
    as hold at most ``CHUNK_ROWS`` rows each, their sizes as even as possible (no
    short last chunk); one workspace for all. Bounds the memory of passes over
    large data sets."""
    n_chunks = _n_chunks(n)
    work = net._scratch.rows(_chunk_size(n))
    q, r = divmod(n, n_chunks)
    start = 0
    for k in range(n_chunks):
        stop = start + q + (k < r)
        yield start, stop, work
        start = stop
