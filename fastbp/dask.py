"""Dask arrays as data: full-batch training over a cluster, streamed mini-batches.

``pip install fastbp[dask]``. ``import fastbp`` does not import dask: this
module imports it on first use, when a method of :class:`fastbp.Network` is
given a ``dask.array.Array``.

What takes dask arrays
----------------------
``net.cost``, ``net.cost_and_gradients``, ``net.gradients`` and ``net.objective``
take ``X`` (n, n0) and ``y`` (n, nL) as dask arrays chunked along the rows only,
with the same row chunks (one of them may be in memory: it is chunked like the
other). ``net.predict``, ``net.forward`` and ``net.predict_proba`` return a lazy
dask array: the compiled forward pass mapped over the chunks of ``X``, with the
parameters as they were at the call. ``net.fit`` trains with every method.
``sample_weight`` may be a 1-D dask array with ``X``'s row chunks, or in
memory (it is then chunked like ``X``); each chunk's weights travel with it
and are checked where it is. A ``validation_data`` pair (or triple, with
weights) given as dask arrays is brought into memory once;
``validation_fraction`` needs in-memory data. ``net.score`` computes its inputs
into memory.

Where it runs
-------------
On the ``distributed.Client`` that dask computes on now (the default client, or
the one of a ``dask.config.set(scheduler=...)``), else on dask's local scheduler
(threads). The network is rebuilt on each worker thread from
:class:`NetworkSpec` (a few names and sizes) and the parameters, and runs the
compiled pass of its ``backend`` there.

Validation happens per chunk, in the task that also casts the chunk to the
network's dtype: NaN or infinity, the dtype, the targets (and, for ``fit``,
the range of the output activation) give the in-memory messages with the rows
of the chunk appended. Shapes, column counts and chunking are checked before
anything is computed.

Full batch: ``gd``, ``bfgs``, ``lbfgs``
---------------------------------------
The validated chunks are persisted on the workers for the whole fit. The pass
over a chunk is its compiled cost and gradient, a mean-type loss weighted by
the chunk's share of all rows. On a distributed client an iteration is one task
per thread of each worker that holds chunks (at most one per chunk): it runs
the passes of its share of that worker's chunks, shares of rows as even as
whole chunks allow, one after the other and returns their sum, so the iteration
costs the scheduler a few tasks however many chunks there are, and no chunk
moves. The parameters travel inside those tasks (or, when all copies together
would exceed :data:`INLINE_BYTES`, as one task that they all read), and the
client adds their sums (up to :data:`SPLIT_EVERY` of them; more are first added
by tasks on the cluster). Where the chunks are is asked of the scheduler once,
and again only after an iteration whose tasks ran elsewhere than planned (a
worker lost or restarted). On dask's local scheduler each chunk is one task,
their results added by tasks of :data:`SPLIT_EVERY` parts. The L2 term is added
once, on the client.

Every sum, wherever it runs, follows one fixed binary tree over the chunks in
their order (:func:`_merged`): a worker adds the siblings among its chunks and
sends the rest up. The cost and gradient are therefore the same bits whichever
worker holds which chunk, after a lost worker's chunks are recomputed
elsewhere, on a cluster of any size and on dask's local schedulers (for the
same chunks: another chunking adds other sums). :class:`DaskObjective` implements
:class:`fastbp.objective.Objective`, so scipy's BFGS runs unchanged on it; each
iteration costs a round trip to the scheduler (milliseconds) on top of the
passes. A worker lost between or during iterations costs the recomputation of
its chunks from the graph (dask's own recovery, with the same result; the
parameters, carried by the tasks, are recomputed too); a task that keeps
killing workers, or a lost scheduler, ends the fit with dask's error
(``KilledWorker``, ...), the parameters those of the last point whose cost and
gradient were computed.

Mini-batch: ``sgd``, ``adam``
-----------------------------
The chunks are not persisted: each epoch computes them one at a time into the
client's memory (on a distributed client, the next one is computed while the
current one trains) and runs the compiled epoch on it, so the data need not fit in memory
at once: two chunks do. Shuffling differs from in memory, where each epoch
draws its batches from a permutation of all rows: here the epoch visits the
chunks in a random order and the rows of each chunk in a random order, both
drawn from the permutation that the seeded generator gives the epoch, and the
rows left over after a chunk's last full batch open the next chunk's first
batch. A batch therefore mixes rows of one chunk (two at a chunk boundary);
data sorted by class or time should be shuffled once before it is chunked.
With ``shuffle=False`` the batches, and so the weights, are those of in-memory
training. The epoch's loss is gathered in the same units as in memory. A
failure in an epoch (a bad chunk, a lost connection) restores the parameters and
the optimizer's state of the epoch's start before it propagates.
"""

import contextlib
import sys
import threading
import time
import uuid
from typing import NamedTuple

import numba
import numpy as np

from .kernels import _validation as v
from .objective import Objective

#: The methods whose every iteration reads all rows: their chunks stay persisted.
FULL_BATCH = ("gd", "bfgs", "lbfgs")
_DASK_MODULES = ("dask.", "dask_expr.")
_modules = sys.modules
#: Parts added per task of the tree that sums the chunks' costs and gradients.
SPLIT_EVERY = 8
#: Bytes of parameters (one copy per task) that an iteration on a distributed
#: client sends inside its tasks; more are sent once, as a task of their own.
INLINE_BYTES = 4 << 20
# Passes shorter than this keep their results until the next pass's tasks are sent.
_HOLD_SECONDS = 0.1


def is_dask_collection(x):
    """Whether ``x`` is a dask collection (array, dataframe, ...), told from its
    type's module alone: dask need not be (and is not) imported to tell."""
    return "dask" in _modules and type(x).__module__.startswith(_DASK_MODULES)


def any_dask(*xs):
    """Whether any of ``xs`` is a dask collection (cheap: on every call of the API)."""
    if "dask" not in _modules:  # no dask collection can exist
        return False
    for x in xs:
        if type(x).__module__.startswith(_DASK_MODULES):
            return True
    return False


class NetworkSpec(NamedTuple):
    """What a worker needs to rebuild a network, besides its parameters (the L2
    term is left out: it is added once, on the client)."""

    layer_sizes: tuple
    activation: str
    output_activation: str
    bias: bool
    loss: str
    dtype: str
    backend: str

    @classmethod
    def of(cls, net):
        acts = net.activations
        return cls(tuple(net.layer_sizes), acts[0] if len(acts) > 1 else "identity", acts[-1],
                   net.bias, net.loss, net.dtype.name, net.backend)

    def build(self):
        from .network import Network

        return Network(self.layer_sizes, activation=self.activation,
                       output_activation=self.output_activation, bias=self.bias,
                       loss=self.loss, dtype=self.dtype, seed=0, backend=self.backend)


_local = threading.local()


@contextlib.contextmanager
def _one_thread():
    """A task's passes on one Numba thread (the cluster runs one task per worker
    thread, which already keeps every core busy), the thread's own count
    restored afterwards: on dask's synchronous scheduler the tasks run on the
    caller's thread."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _network(spec, params=None):
    """This thread's network for ``spec`` (a Network must not be shared by threads),
    with ``params`` copied in; used inside :func:`_one_thread`."""
    nets = getattr(_local, "nets", None)
    if nets is None or len(nets) > 8:
        nets = _local.nets = {}
    net = nets.get(spec)
    if net is None:
        net = nets[spec] = spec.build()
    if params is not None:
        net._params[...] = params
    return net


def _where(exc, start, stop):
    """``exc``'s type with the rows of the chunk appended to its message."""
    return type(exc)(f"{exc} (in rows {start}:{stop} of the dask arrays)")


# -- tasks: what runs on the workers ---------------------------------------------------------


def _prepare(spec, X, y, w, start, stop, for_fit):
    """One chunk validated and cast as in memory: ``(X, y, w)`` C-contiguous of the
    network's dtype (``w``: the rows' weights, or None). ``for_fit`` adds ``fit``'s
    check of the targets' range."""
    from .training import _check_targets_reachable

    with _one_thread():
        net = _network(spec)
        try:
            X, y = net._check_Xy(X, y)
            # a chunk may weigh nothing; the weights of all rows may not (checked after)
            w = v.sample_weights(w, X.shape[0], net.dtype, all_zero=True)
            if for_fit:
                _check_targets_reachable(net, y)
        except (ValueError, TypeError) as exc:
            raise _where(exc, start, stop) from None
    return X, y, w


def _weight(part):
    """What a chunk's rows weigh together (their number without weights)."""
    X, _, w = part
    return float(X.shape[0]) if w is None else float(np.sum(w, dtype=np.float64))


def _pass(spec, params, part, data_scale, gradient):
    """``(data cost, its gradient as float64 or None)`` of one chunk."""
    with _one_thread():
        net = _network(spec, params)
        X, y, w = part
        objective = net._engine(net, X, y, data_scale, w)
        if not gradient:
            return objective.cost(), None
        J, grad = objective.cost_and_gradient(out=np.empty_like(net._params))
    return J, grad.astype(np.float64, copy=False)


# The chunks' results are added in one fixed binary tree over the chunks' order:
# node ``(level, i)`` is the sum of chunks ``i * 2**level`` to ``(i + 1) * 2**level - 1``
# (those that exist), always as its left child plus its right one. Any task may
# add any siblings it holds, so whichever worker holds which chunks, and
# whichever results arrive together, every sum is the same, to the bit.


def _plus(a, b):
    """``a + b`` of two ``(cost, gradient or None)`` results, into a new array."""
    return a[0] + b[0], None if a[1] is None else a[1] + b[1]


def _merged(n_chunks, *node_sets):
    """The tree nodes ``{(level, i): (cost, gradient)}`` of ``node_sets`` together,
    every two siblings replaced by their parent, bottom up; a left child without
    a right one (past the last chunk) is its parent."""
    nodes = {}
    for part in node_sets:
        nodes.update(part)
    level = 0
    while (1 << level) < n_chunks:
        for i in sorted(i for k, i in nodes if k == level and i % 2 == 0):
            right = (level, i + 1)
            if right in nodes:
                nodes[level + 1, i // 2] = _plus(nodes.pop((level, i)), nodes.pop(right))
            elif (i + 1) << level >= n_chunks:
                nodes[level + 1, i // 2] = nodes.pop((level, i))
        level += 1
    return nodes


def _root(nodes, n_chunks):
    """The sum over all chunks, from :func:`_merged` nodes that cover them all."""
    return nodes[(n_chunks - 1).bit_length(), 0]


def _chunk_pass(n_chunks, c, spec, params, part, data_scale, gradient):
    """Chunk ``c``'s :func:`_pass` as a leaf of the tree, for dask's local scheduler."""
    return {(0, c): _pass(spec, params, part, data_scale, gradient)}


def _worker_pass(spec, params, chunks, parts, scales, gradient, where, n_chunks):
    """``(tree nodes, placed)`` of ``parts``, the chunks numbered ``chunks`` that
    one worker holds, added as far as the tree allows (:func:`_merged`);
    ``placed``: whether this ran on the worker ``where`` that was meant to hold
    them."""
    from distributed import get_worker

    nodes = {}
    for c, part, scale in zip(chunks, parts, scales):
        nodes = _merged(n_chunks, nodes, {(0, c): _pass(spec, params, part, scale, gradient)})
    return nodes, get_worker().address == where


def _add_placed(n_chunks, *parts):
    """:func:`_worker_pass` results together; placed only if all were."""
    return _merged(n_chunks, *(p[0] for p in parts)), all(p[1] for p in parts)


def _identity(x):
    return x


def _forward_block(X, spec=None, params=None, block_info=None):
    with _one_thread():
        net = _network(spec, params)
        try:
            X = net._check_X(X)
        except (ValueError, TypeError) as exc:
            if block_info is None:
                raise
            start, stop = block_info[0]["array-location"][0]
            raise _where(exc, start, stop) from None
        return net._engine.forward(net, X)


# -- the client's side -----------------------------------------------------------------------


def _client():
    """The ``distributed.Client`` that dask computes on now, or None (a local scheduler)."""
    import dask.base

    owner = getattr(dask.base.get_scheduler(), "__self__", None)
    if owner is not None and type(owner).__module__.split(".", 1)[0] == "distributed":
        return owner
    return None


def _graph_of(nbytes):
    """A context in which distributed warns of large graphs only when one outgrows
    its threshold by more than ``nbytes`` (the parameters that a graph carries)."""
    import dask
    from dask.utils import parse_bytes

    key = "distributed.admin.large-graph-warning-threshold"
    threshold = dask.config.get(key, None)
    if threshold is None:
        return contextlib.nullcontext()
    return dask.config.set({key: parse_bytes(threshold) + nbytes})


def _array(x, name, like=None):
    """``x`` as a dask array; an in-memory ``x`` beside a dask array ``like`` is
    chunked along the rows as ``like`` is."""
    import dask.array as da

    if is_dask_collection(x):
        if not isinstance(x, da.Array):
            kind = f"{type(x).__module__.split('.')[0]}.{type(x).__name__}"
            raise TypeError(f"{name} must be a dask.array.Array or in memory; got a {kind} "
                            "(a dask DataFrame converts with .to_dask_array(lengths=True))")
        return x
    if like is None:
        return None
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.ndim == 0 or arr.shape[0] != like.shape[0]:
        rows = arr.shape[0] if arr.ndim else "no"
        n_X, n_y = (rows, like.shape[0]) if name == "X" else (like.shape[0], rows)
        raise ValueError(f"X and y must have the same number of rows; got {n_X} and {n_y}")
    return da.from_array(arr, chunks=(like.chunks[0],) + arr.shape[1:])


def _check_chunks(x, name, columns, allow_1d=False, known_rows=True):
    """Checks of a dask array that need no computation: as in memory for the
    dimensions, dtype and columns; whole rows in each chunk; known chunk sizes."""
    if x.ndim != 2 and not (allow_1d and x.ndim == 1):
        raise ValueError(f"{name} must be a 2-D array; got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (float, int or bool); got dtype {x.dtype}")
    if known_rows and any(np.isnan(c) for c in x.chunks[0]):
        raise ValueError(f"{name} has chunks of unknown size (NaN rows); compute them first: "
                         f"{name} = {name}.compute_chunk_sizes()")
    if x.ndim == 2 and x.shape[1] != columns:
        raise ValueError(f"{name} must have {columns} columns (the "
                         f"{'input' if name == 'X' else 'output'} layer size); got shape "
                         f"{x.shape}")
    if x.ndim == 2 and len(x.chunks[1]) > 1:
        raise ValueError(f"{name} is chunked along its columns (column chunks {x.chunks[1]}); "
                         f"each chunk must hold whole rows: {name} = {name}.rechunk({{1: -1}})")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must not be empty; got shape {x.shape}")


def _dask_weights(w, X):
    """``sample_weight`` as a dask array chunked along the rows as ``X``, or None."""
    import dask.array as da

    if w is None:
        return None
    if not is_dask_collection(w):
        w = v.sample_weights(w, X.shape[0], np.float64)  # in memory: checked whole
        return da.from_array(w, chunks=(X.chunks[0],))
    w = _array(w, "sample_weight")
    if w.ndim != 1 or w.shape[0] != X.shape[0]:
        raise ValueError(f"sample_weight must be a 1-D array of one weight per row "
                         f"({X.shape[0]}); got shape {w.shape}")
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold real numbers (float, int or bool); got "
                        f"dtype {w.dtype}")
    if w.chunks[0] != X.chunks[0]:
        raise ValueError(f"sample_weight's chunks {w.chunks[0]} differ from X's row chunks "
                         f"{X.chunks[0]}; chunk them alike, e.g. "
                         "sample_weight = sample_weight.rechunk(X.chunks[0])")
    return w


def _dask_Xy(net, X, y):
    """``X`` and ``y`` as dask arrays with the same row chunks, checked as far as
    their metadata allows; ``ValueError``/``TypeError`` naming the argument."""
    Xd = _array(X, "X")
    yd = _array(y, "y", like=Xd)
    if Xd is None:
        Xd = _array(X, "X", like=yd)
    X, y = Xd, yd
    _check_chunks(X, "X", net.layer_sizes[0])
    _check_chunks(y, "y", net.layer_sizes[-1], allow_1d=net.layer_sizes[-1] == 1)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of rows; got {X.shape[0]} and "
                         f"{y.shape[0]}")
    if X.chunks[0] != y.chunks[0]:
        raise ValueError(f"y's row chunks {y.chunks[0]} differ from X's {X.chunks[0]}; chunk "
                         "them alike, e.g. y = y.rechunk({0: X.chunks[0]})")
    return X, y


class DaskObjective(Objective):
    """The cost of ``net`` on dask arrays ``X``, ``y``: one task per row chunk.

    ``persist=True`` (what :meth:`fastbp.Network.objective` and the full-batch
    methods use) validates the chunks on the workers now and keeps them there,
    so that each :meth:`cost_and_gradient` reads them from the workers' memory;
    ``persist=False`` computes them on each call (a single pass, or the
    mini-batch epochs, which stream them). ``for_fit`` adds ``fit``'s check of
    the targets' range to the validation. ``sample_weight`` (dask or in memory)
    weighs the rows as in memory; each chunk's weights travel with it.
    """

    def __init__(self, net, X, y, data_scale=1.0, *, persist=True, for_fit=False,
                 sample_weight=None):
        import dask
        from dask import delayed

        X, y = _dask_Xy(net, X, y)
        w = _dask_weights(sample_weight, X)
        self.net, self.X, self.y = net, X, y
        self.sample_weight = w
        self.data_scale = v.real_number(data_scale, "data_scale", low=0.0, low_open=True)
        self.spec = NetworkSpec.of(net)
        bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        self._bounds = bounds
        blocks = zip(X.to_delayed(optimize_graph=False).ravel(),
                     y.to_delayed(optimize_graph=False).ravel(),
                     [None] * len(X.chunks[0]) if w is None else
                     w.to_delayed(optimize_graph=False).ravel())
        # chunks of no rows (a filter's leftovers) have nothing to add
        self._chunks = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        parts = [delayed(_prepare)(self.spec, xb, yb, wb, int(a), int(b), for_fit)
                 for (xb, yb, wb), a, b in zip(blocks, bounds[:-1], bounds[1:]) if b > a]
        # a distributed client that holds the persisted chunks as futures, or None
        self._client = client = _client() if persist else None
        self._groups = None  # (worker, its chunks' indices) pairs: see _locate
        self._held = []  # the last iteration's futures: see _cluster_pass
        if client is not None:
            from distributed import wait

            parts = client.compute(parts)
            wait(parts)
            for part in parts:  # the validation's error now, not at the first pass
                if part.status in ("error", "cancelled"):
                    part.result()
            weights = client.gather([client.submit(_weight, p) for p in parts]) if w is not None \
                else None
        elif persist:
            parts = list(dask.persist(*parts))
            # waits for the validation, and raises its error now, not at the first pass
            weights = dask.compute(*[delayed(_weight)(p) for p in parts])
        elif w is not None:  # the weights' chunks alone, not X's and y's
            sums = [w.blocks[i].sum(dtype=np.float64) for i in range(len(X.chunks[0]))
                    if bounds[i + 1] > bounds[i]]
            weights = [float(t) for t in dask.compute(*sums)]
        if w is None:
            weights = [float(b - a) for a, b in self._chunks]
        #: what each chunk's rows weigh (their number without weights), and all
        self._weights, self._total = list(weights), float(sum(weights))
        # (NaN or a negative weight is refused by its chunk's validation, naming its rows)
        if w is not None and self._total == 0.0:
            raise ValueError("sample_weight must not be all 0: no row would count")
        self._parts = parts
        self.persisted = persist
        if client is not None:
            self._groups = self._locate()

    @property
    def n_rows(self):
        return int(self._bounds[-1])

    @property
    def n_chunks(self):
        return len(self._parts)

    # -- full passes: one task per worker (or per chunk), summed --

    def _scales(self, data_scale):
        """Each chunk's ``data_scale``: a mean-type loss weighted by its share of rows
        (of their weight)."""
        if not self.net._head.mean:
            return [data_scale] * len(self._chunks)
        return [data_scale * weight / self._total for weight in self._weights]

    def _locate(self):
        """``[(worker, [chunk index, ...]), ...]``: the persisted chunks grouped by the
        worker that holds each (``None``: none now), in as many groups per worker as
        it has threads (at most one per chunk), of rows as even as whole chunks
        allow; in the order of their first chunks. A chunk held by several workers
        goes to the one with the fewest rows so far."""
        client = self._client
        who_has, nthreads = client.who_has(self._parts), client.nthreads()
        sizes = [stop - start for start, stop in self._chunks]
        held, rows = {}, {}
        for c, part in enumerate(self._parts):
            holders = who_has.get(part.key) or [None]
            where = min(holders, key=lambda w: rows.get(w, 0))
            rows[where] = rows.get(where, 0) + sizes[c]
            held.setdefault(where, []).append(c)
        groups = []
        for where, chunks in held.items():
            split = [[] for _ in range(min(max(nthreads.get(where, 1), 1), len(chunks)))]
            load = [0] * len(split)
            for c in sorted(chunks, key=lambda c: -sizes[c]):  # largest first
                k = load.index(min(load))
                split[k].append(c)
                load[k] += sizes[c]
            groups += [(where, sorted(g)) for g in split]
        return sorted(groups, key=lambda group: group[1][0])

    def _full_pass(self, data_scale, gradient):
        """``(data cost, float64 gradient or None)`` at ``data_scale``."""
        if self._client is not None:
            return self._cluster_pass(data_scale, gradient)
        import dask
        from dask import delayed

        net = self.net
        # the parameters travel once per pass, as one piece of the graph that the
        # chunks' tasks share: a worker lost on the way gets them again from the
        # graph (scattered data, once lost, could not be recomputed)
        params = delayed(net._params.copy(), name=f"fastbp-params-{uuid.uuid4().hex}")
        n_chunks = len(self._parts)
        tasks = [delayed(_chunk_pass)(n_chunks, c, self.spec, params, part, scale, gradient)
                 for c, (part, scale) in enumerate(zip(self._parts, self._scales(data_scale)))]
        while len(tasks) > 1:
            tasks = [delayed(_merged)(n_chunks, *tasks[i : i + SPLIT_EVERY])
                     for i in range(0, len(tasks), SPLIT_EVERY)]
        with _graph_of(net._params.nbytes):
            (nodes,) = dask.compute(tasks[0])
        J, grad = _root(nodes, n_chunks)
        return float(J), grad

    def _cluster_pass(self, data_scale, gradient):
        """:meth:`_full_pass` on the distributed client that holds the chunks: one
        task per worker over the chunks that it holds, submitted directly (no
        collection to build or optimise), the parameters inside the tasks."""
        client, parts = self._client, self._parts
        if self._groups is None:
            self._groups = self._locate()
        groups = self._groups
        params = self.net._params.copy()
        scales = self._scales(data_scale)
        # Tuple keys give each iteration a task group of its own, a few tasks large,
        # which the scheduler never takes for root tasks to spread regardless of
        # where their data are. The parameters are part of the tasks (or of one
        # task they read): a lost worker's tasks get them again, as they would
        # from a graph (scattered data, once lost, could not be recomputed).
        name = uuid.uuid4().hex
        started = time.perf_counter()
        submitted = []
        with _graph_of(params.nbytes):
            if params.nbytes * len(groups) > INLINE_BYTES:
                params = client.submit(_identity, params, key=(f"fastbp-params-{name}", 0))
                submitted.append(params)
            futures = [
                client.submit(_worker_pass, self.spec, params, chunks, [parts[c] for c in chunks],
                              [scales[c] for c in chunks], gradient, where, len(parts),
                              key=(f"fastbp-pass-{name}", i),
                              **({} if where is None else
                                 dict(workers=[where], allow_other_workers=True)))
                for i, (where, chunks) in enumerate(groups)]
        level = 0
        while len(futures) > SPLIT_EVERY:
            submitted += futures
            futures = [client.submit(_add_placed, len(parts), *futures[i : i + SPLIT_EVERY],
                                     key=(f"fastbp-sum-{name}-{level}", i // SPLIT_EVERY))
                       for i in range(0, len(futures), SPLIT_EVERY)]
            level += 1
        # The client sends to the scheduler at most once per 10 ms. Released as
        # soon as they arrive, an iteration's results would take a send of their
        # own, which the next iteration's tasks would wait behind; a short pass's
        # results are therefore held until the next tasks are sent, and released
        # right after them, most often in the same send.
        self._held = submitted + futures
        try:
            nodes, placed = _add_placed(len(parts), *client.gather(futures))
        except BaseException:
            self._groups = None  # where the chunks are is asked again next time
            self._held = []
            raise
        if time.perf_counter() - started > _HOLD_SECONDS:
            self._held = []  # a held result is recomputed if its worker is lost
        if not placed:
            self._groups = None
        J, grad = _root(nodes, len(parts))
        return float(J), grad

    def _add_l2_gradient(self, grad):
        net = self.net
        if net.l2:
            for w0, w1, *_ in net._slices:
                grad[w0:w1] += net.l2 * net._params[w0:w1]
        return grad

    def cost(self):
        J, _ = self._full_pass(self.data_scale, gradient=False)
        return float(J + self._l2_term())

    def cost_and_gradient(self, params=None, out=None):
        before = self.net._params.copy() if params is not None else None
        self._set(params)
        try:
            J, grad = self._full_pass(self.data_scale, gradient=True)
        except BaseException:
            self._set(before)  # the last point computed, not one that never was
            raise
        out = self._gradient_buffer(out)
        out[...] = self._add_l2_gradient(grad)
        return float(J + self._l2_term()), out

    # -- epochs --

    def epoch(self, optimizer, order, batch_size):
        if batch_size >= self.n_rows:
            return self._full_batch_step(optimizer)
        return self._streamed_epoch(optimizer, np.asarray(order, np.int64), batch_size)

    @staticmethod
    def forward(net, X):
        """The network's output for dask ``X`` (n, n0): a lazy dask array (n, nL) of
        the network's dtype, the compiled forward pass over each chunk of rows."""
        from dask import delayed

        X = _array(X, "X")
        n_out = net.layer_sizes[-1]
        _check_chunks(X, "X", net.layer_sizes[0], known_rows=False)
        params = delayed(net._params.copy(), name=f"fastbp-params-{uuid.uuid4().hex}")
        return X.map_blocks(_forward_block, spec=NetworkSpec.of(net), params=params,
                            dtype=net.dtype, chunks=(X.chunks[0], (n_out,)),
                            meta=np.empty((0, n_out), net.dtype), token="fastbp-forward")

    def _full_batch_step(self, optimizer):
        """One step on the gradient of the mean cost over all rows, as the in-memory
        epoch with one batch takes it."""
        net, n = self.net, self._total
        mean = net._head.mean
        J, grad = self._full_pass(1.0 if mean else 1.0 / n, gradient=True)
        l2_cost = self._l2_term()
        out = self._gradient_buffer(None)
        out[...] = self._add_l2_gradient(grad)
        optimizer.step(net._params, out)
        return float((J if mean else J * n) + l2_cost)

    def _stream(self, chunk_order):
        """The validated chunks ``(X, y, w)`` in ``chunk_order``, computed one at a time,
        the next one while the current one is used when a cluster computes them."""
        import dask

        if self._client is not None:  # persisted on a cluster: fetched one at a time
            for c in chunk_order:
                yield self._parts[c].result()
            return
        client = _client()
        if client is None:
            for c in chunk_order:
                (part,) = dask.compute(self._parts[c])
                yield part
            return
        pending = client.compute(self._parts[chunk_order[0]])
        for k in range(len(chunk_order)):
            current = pending
            if k + 1 < len(chunk_order):
                pending = client.compute(self._parts[chunk_order[k + 1]])
            yield current.result()
            del current

    def _streamed_epoch(self, optimizer, order, batch_size):
        net, n = self.net, self.n_rows
        # where each row comes in the epoch's permutation: the chunks in the order of
        # their first rows' places, the rows of each in the order of theirs
        place = np.empty(n, np.int64)
        place[order] = np.arange(n, dtype=np.int64)
        chunk_order = np.argsort([place[start] for start, _ in self._chunks], kind="stable")
        saved = net._params.copy(), optimizer.state.copy(), optimizer.hyper.copy()
        loss, carry = 0.0, None
        try:
            for k, (X, y, w) in enumerate(self._stream(chunk_order)):
                start, stop = self._chunks[chunk_order[k]]
                rows = np.argsort(place[start:stop], kind="stable")
                if (rows[1:] < rows[:-1]).any():
                    X, y, w = X[rows], y[rows], None if w is None else w[rows]
                if carry is not None:
                    X, y = np.concatenate([carry[0], X]), np.concatenate([carry[1], y])
                    w = None if w is None else np.concatenate([carry[2], w])
                last = k == len(chunk_order) - 1
                m = X.shape[0] if last else X.shape[0] - X.shape[0] % batch_size
                carry = ((X[m:].copy(), y[m:].copy(), None if w is None else w[m:].copy())
                         if m < X.shape[0] else None)
                if m:
                    loss += self._chunk_epoch(optimizer, X[:m], y[:m],
                                              None if w is None else w[:m], batch_size)
                del X, y, w
        except BaseException:
            net._params[...], optimizer.state[...], optimizer.hyper[...] = saved
            raise
        return loss

    def _chunk_epoch(self, optimizer, X, y, w, batch_size):
        """The in-memory epoch over the rows ``X``, ``y`` (weights ``w`` or None) in
        their order; its loss in the units of an epoch over all ``n_rows``."""
        net, n = self.net, self._total
        m = X.shape[0]

        def weight(rows):
            return float(rows.stop - rows.start) if w is None else \
                float(np.sum(w[rows], dtype=np.float64))

        if net._head.mean:  # a mean over these rows: weighted by their share
            local = net._engine(net, X, y, 1.0, w)
            share = weight(slice(0, m)) / n
            return local.epoch(optimizer, np.arange(m, dtype=np.int64), batch_size) * share
        if not net.l2:  # a sum: adds up
            local = net._engine(net, X, y, 1.0, w)
            return local.epoch(optimizer, np.arange(m, dtype=np.int64), batch_size)
        # A sum with an L2 term, which the engine weights by each batch's share of
        # these rows and an epoch over all rows by its share of those: batch by batch.
        loss, order = 0.0, np.arange(batch_size, dtype=np.int64)
        for start in range(0, m, batch_size):
            rows = slice(start, min(start + batch_size, m))
            local = net._engine(net, X[rows], y[rows], 1.0, None if w is None else w[rows])
            l2_cost = local._l2_term()
            J = local.epoch(optimizer, order[: rows.stop - start], rows.stop - start)
            loss += J - l2_cost + l2_cost * weight(rows) / n
        return loss


# -- what training routes dask inputs through ------------------------------------------


def check_fit_options(opts):
    """``fit``'s options for dask ``X``, ``y``: validation data (and weights) into
    memory (once), no ``validation_fraction``."""
    if opts.get("validation_fraction") is not None:
        raise ValueError("validation_fraction needs X and y in memory; with dask arrays give "
                         "validation_data=(X_val, y_val) instead")
    data = opts.get("validation_data")
    if data is not None and any_dask(*data):
        import dask

        opts["validation_data"] = dask.compute(*data)
