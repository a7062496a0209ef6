"""The :class:`Network`: validation and bookkeeping around the fused kernels.

All parameters live in one flat array (per layer ``W.ravel()`` then ``b``);
``weights`` and ``biases`` are views into it, so the kernels see one buffer.
"""

import functools
import threading

import numpy as np

from . import dask as _dask
from . import io, training
from .kernels import ACTIVATIONS, ELEMENTWISE, LOSSES, _tables
from .kernels import _network as fused
from .kernels import _validation as v
from .objective import ENGINES, SPARSE_ENGINES, Scratch

BACKENDS = tuple(ENGINES)


def _one_thread(method):
    """``method`` run holding the network's token (see ``Network._in_use``)."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        free = self._free
        try:
            held = free.pop()
        except IndexError:
            held = self._in_use()
        try:
            return method(self, *args, **kwargs)
        finally:
            if held:
                free.append(held)

    return call


class Network:
    """A fully connected feed-forward network; rows of ``X`` are examples.

    ``X`` is an array, or a scipy.sparse matrix or array (taken as CSR, never
    densified: the first layer reads its stored entries); every method that
    takes targets also takes ``sample_weight`` (one weight per row).

    Parameters
    ----------
    layer_sizes : sequence of int, ``[n0, n1, ..., nL]`` (at least two).
    activation : hidden-layer activation, one of sigmoid, tanh, relu, identity.
    output_activation : output-layer activation, one of those, ``"softmax"`` or
        ``"exp"`` (for ``loss="poisson"``); ``None`` means ``activation``.
    bias : whether layers have biases.
    loss : ``"half_sse"`` (``0.5 * sum((y - yhat)**2)``), ``"mse"`` (mean over
        examples of the squared error summed over outputs) or ``"cross_entropy"``:
        with a sigmoid output the mean over examples of the summed binary
        cross-entropy (targets in [0, 1]); with a softmax output the categorical
        one, ``-mean(sum(y * log(softmax(z)), axis=1))`` (rows of ``y`` are
        probability vectors: one-hot or soft); or ``"poisson"`` with an exp
        output: the mean over examples of half the Poisson deviance summed over
        outputs, ``yhat - y log(yhat) + y log(y) - y`` (targets >= 0).
    l2 : adds ``(l2 / 2) * sum(W**2)`` over the weights (never the biases).
    dtype : numpy.float32 or numpy.float64; inputs are cast to it.
    seed : seed (or ``numpy.random.Generator``) for the initial weights, drawn as
        ``standard_normal / sqrt(n_in)``; biases start at zero.
    backend : the gradient engine, a key of :data:`fastbp.objective.ENGINES`:
        ``"numba"`` (compiled kernels) or ``"numpy"`` (:mod:`fastbp.reference`).

    Thread safety: a Network owns scratch buffers, so one instance must not be
    used from two threads at once: a public call (``fit``, ``predict``, ``cost``,
    ``set_params``, ...) while another thread is inside one raises a
    ``RuntimeError`` instead of waiting. Calls nested in the same thread (a
    ``fit`` callback calling ``predict``) go through. Separate instances may run
    concurrently (the kernels release the GIL). Large passes use
    ``numba.get_num_threads()`` threads of the calling thread (see
    :mod:`fastbp.threads`).
    """

    def __init__(self, layer_sizes, *, activation="sigmoid", output_activation=None,
                 bias=True, loss="half_sse", l2=0.0, dtype=np.float64, seed=None,
                 backend="numba"):
        sizes = _layer_sizes(layer_sizes)
        v.choice(activation, "activation", ELEMENTWISE)
        if output_activation is None:
            output_activation = activation
        v.choice(output_activation, "output_activation", ACTIVATIONS)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False; got {bias!r}")
        v.choice(loss, "loss", LOSSES)
        self._head = _tables.head(output_activation, loss)
        self.l2 = v.real_number(l2, "l2", low=0.0)
        self.dtype = v.float_dtype(dtype)
        self.backend = v.choice(backend, "backend", BACKENDS)
        self._engine = ENGINES[backend]
        self.layer_sizes = sizes
        self.activations = (activation,) * (len(sizes) - 2) + (output_activation,)
        self.loss = loss
        self.bias = bool(bias)
        self._layout, n_params = fused.make_layout(
            sizes, [ACTIVATIONS[a].code for a in self.activations], self.bias, self._head.code
        )
        self._slices = _parameter_slices(sizes, self.bias)
        self._params = np.zeros(n_params, self.dtype)
        self._scratch = Scratch(self)  # the compiled engine's, opaque here
        rng = v.generator(seed)
        for W in self.weights:
            W[...] = rng.standard_normal(W.shape) / np.sqrt(W.shape[0])
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.converged_ = None
        self._free, self._owner = [True], None  # see _in_use

    # -- one thread at a time -----------------------------------------------------

    # A public call takes the one token from ``_free`` (see _one_thread) and puts
    # it back when it returns: ``list.pop`` and ``append`` are atomic and never
    # wait, and cost less than ``threading.Lock.acquire(blocking=False)`` and its
    # release (50 against 150 ns, of a 7.4 us seed-network gradient). ``fit``
    # also records its thread in ``_owner`` for the calls nested in it.

    def _in_use(self):
        """What a public call that finds the token gone does: go on without it
        (returns False) when nested in this thread's ``fit``, else RuntimeError."""
        if self._owner == threading.get_ident():
            return False
        raise RuntimeError(f"this network is in use by another thread ({self!r}): a Network "
                           "must not be used from two threads at once; give each thread its "
                           "own (for example Network(...) with set_params, or fastbp.load)")

    def __getstate__(self):
        return {**self.__dict__, "_free": [True], "_owner": None}  # a copy starts free

    # -- parameters -------------------------------------------------------------

    def _views(self, flat):
        """Per-layer ``(W, b)`` views into a flat parameter-shaped array."""
        return [(flat[w0:w1].reshape(shape), None if b0 is None else flat[b0:b1])
                for w0, w1, shape, b0, b1 in self._slices]

    @property
    def weights(self):
        """List of weight matrices ``(n[l-1], n[l])``, views into the parameters."""
        return [W for W, _ in self._views(self._params)]

    @weights.setter
    @_one_thread
    def weights(self, values):
        _assign(self.weights, values, "weights")

    @property
    def biases(self):
        """List of bias vectors ``(n[l],)`` (views), or ``None`` when ``bias=False``."""
        return [b for _, b in self._views(self._params)] if self.bias else None

    @biases.setter
    @_one_thread
    def biases(self, values):
        if not self.bias:
            raise ValueError("this network was built with bias=False; it has no biases")
        _assign(self.biases, values, "biases")

    @property
    def n_params(self):
        """The number of parameters (weights and biases), an int."""
        return self._params.size

    @_one_thread
    def get_params(self):
        """All parameters as one 1-D array: per layer ``W.ravel()`` then ``b``.

        Returns
        -------
        ndarray (n_params,) of the network's dtype, a copy
        """
        return self._params.copy()

    @_one_thread
    def set_params(self, params):
        """Inverse of :meth:`get_params`."""
        p = v.as_array(params, "params", dtype=self.dtype, ndim=1, finite=True)
        if p.size != self._params.size:
            raise ValueError(f"params must have length {self._params.size}; got {p.size}")
        self._params[...] = p

    # -- validation -------------------------------------------------------------

    def _check_X(self, X):
        if v.is_sparse(X):  # kept sparse: the compiled passes read its stored entries
            X = v.sparse_rows(X, "X", self.dtype)
        else:
            X = v.as_array(X, "X", dtype=self.dtype, finite=True)
        if X.shape[1] != self.layer_sizes[0]:
            raise ValueError(
                f"X must have {self.layer_sizes[0]} columns (the input layer size); "
                f"got shape {X.shape}"
            )
        return X

    def _check_Xy(self, X, y):
        if (v.already_normal((X, y), 2) and X.dtype == self.dtype
                and X.shape[1] == self.layer_sizes[0] and y.shape[1] == self.layer_sizes[-1]
                and X.shape[0] == y.shape[0] and self._head.targets == "any"
                and v.all_finite(X) and v.all_finite(y)):
            return X, y  # the common case, checked cheaply: small calls feel every microsecond
        X = self._check_X(X)
        y_arr = np.asarray(y) if not isinstance(y, (str, bytes)) else y
        if getattr(y_arr, "ndim", None) == 1 and self.layer_sizes[-1] == 1:
            y = y_arr.reshape(-1, 1)  # a 1-D target for a one-output network
        y = v.as_array(y, "y", dtype=self.dtype, finite=True)
        if y.shape[1] != self.layer_sizes[-1]:
            raise ValueError(
                f"y must have {self.layer_sizes[-1]} columns (the output layer size); "
                f"got shape {y.shape}"
            )
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y must have the same number of rows; got {X.shape[0]} and {y.shape[0]}"
            )
        _check_targets(y, self._head)
        return X, y

    def objective(self, X, y, data_scale=1.0, sample_weight=None):
        """The cost of this network on ``X`` (n, n0), ``y`` (n, nL) as a function of
        its parameters, computed by its ``backend``'s engine; ``data_scale``
        multiplies the data cost (not the L2 term); ``sample_weight`` (n,) weighs
        the rows (see :meth:`cost`).

        Returns
        -------
        fastbp.objective.Objective
            With ``cost()``, ``cost_and_gradient(params=None, out=None)`` and
            ``epoch(optimizer, order, batch_size)``.
        """
        data_scale = v.real_number(data_scale, "data_scale", low=0.0, low_open=True)
        return self._objective_of(X, y, sample_weight, data_scale)

    def _objective_of(self, X, y, sample_weight, data_scale=1.0, persist=True, for_fit=False):
        """The one seam between a call and the engines: the objective of ``X``,
        ``y`` and the weights. Dask arrays go to :class:`fastbp.dask.DaskObjective`
        (validated chunk by chunk where they run; ``persist`` and ``for_fit`` as
        there), anything else is validated here for this network's engine."""
        if _dask.any_dask(X, y, sample_weight):
            return _dask.DaskObjective(self, X, y, data_scale, persist=persist, for_fit=for_fit,
                                       sample_weight=sample_weight)
        X, y = self._check_Xy(X, y)
        w = None if sample_weight is None else self._check_weights(sample_weight, X)
        return self._engine_for(X)(self, X, y, data_scale, w)

    def _engine_for(self, X):
        """The engine for ``X`` (validated, or a dask array): its sparse one for a
        CSR ``X``, dask's for a dask array."""
        if type(X) is np.ndarray:
            return self._engine
        return _dask.DaskObjective if _dask.is_dask_collection(X) else SPARSE_ENGINES[self.backend]

    def _check_weights(self, sample_weight, X):
        return v.sample_weights(sample_weight, X.shape[0], self.dtype)

    # -- passes -----------------------------------------------------------------

    @_one_thread
    def forward(self, X):
        """The network's output for ``X`` (n, n0).

        Returns
        -------
        ndarray (n, nL) of the network's dtype
        """
        if not _dask.is_dask_collection(X):  # a dask array: validated where it runs
            X = self._check_X(X)
        return self._engine_for(X).forward(self, X)

    def predict(self, X):
        """Same as :meth:`forward`: the network's output for ``X`` (n, n0).

        Returns
        -------
        ndarray (n, nL) of the network's dtype
        """
        return self.forward(X)

    @_one_thread
    def cost(self, X, y, sample_weight=None):
        """The cost ``J`` of ``X`` (n, n0), ``y`` (n, nL): data cost plus the L2 term.

        ``sample_weight`` (n,), finite, non-negative, not all 0: row ``i`` counts
        ``w[i]`` times in the data cost (a mean-type loss is then a mean over
        ``sum(w)``): integer weights give the cost of the rows repeated, a
        weight of 0 the cost without the row. The L2 term is not weighted.

        Returns
        -------
        float
        """
        return self._objective_of(X, y, sample_weight, persist=False).cost()

    def cost_and_gradients(self, X, y, sample_weight=None):
        """The cost and its gradient from one forward and one backward pass
        (``sample_weight`` as in :meth:`cost`).

        Returns
        -------
        J : float
        weight_grads : list of ndarray, shaped like :attr:`weights`
        bias_grads : list of ndarray shaped like :attr:`biases`, or None without biases
        """
        free = self._free  # _one_thread written out: its extra call is 1 % of W1
        try:
            held = free.pop()
        except IndexError:
            held = self._in_use()
        try:
            J, grad = self._objective_of(X, y, sample_weight, 1.0, False).cost_and_gradient(
                out=np.empty_like(self._params))  # positional: keywords build a dict per call
        finally:
            if held:
                free.append(held)
        slices = self._slices
        weight_grads = [grad[w0:w1].reshape(shape) for w0, w1, shape, _, _ in slices]
        return J, weight_grads, [grad[b0:b1] for *_, b0, b1 in slices] if self.bias else None

    def gradients(self, X, y, sample_weight=None):
        """The gradient of the cost, as :meth:`cost_and_gradients` without ``J``.

        Returns
        -------
        weight_grads : list of ndarray
        bias_grads : list of ndarray, or None without biases
        """
        _, gW, gb = self.cost_and_gradients(X, y, sample_weight)
        return gW, gb

    # -- training, scoring, persistence -------------------------------------------

    def fit(self, X, y, method="sgd", *, sample_weight=None, **options):
        """Train on ``X`` (n, n0), ``y`` (n, nL) in place and return ``self``;
        ``sample_weight`` (n,) weighs the rows as in :meth:`cost`, in every
        batch (a batch's mean is over its weights' sum, the epoch's loss over
        all of them).

        method, and the options each takes (defaults in
        :data:`fastbp.training.METHOD_OPTIONS`; any other option is a TypeError):

        - ``"sgd"``: mini-batches of ``batch_size=32`` rows, shuffled each epoch
          (``shuffle=True``) by a ``numpy.random.Generator`` seeded with ``seed``,
          for ``epochs=10``; each step is ``-learning_rate`` (0.1) times the
          gradient of the batch's mean cost, with classical ``momentum`` (0.0)
          when it is positive, or Nesterov's with ``nesterov=True``.
        - ``"adam"``: the same batches, stepped by Adam as ``torch.optim.Adam``
          does it, ``learning_rate=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``.
        - ``"gd"``: full-batch gradient descent, ``epochs`` steps, with
          ``learning_rate``, ``momentum`` and ``nesterov``.
        - ``"bfgs"``, ``"lbfgs"``: scipy's ``BFGS`` and ``L-BFGS-B``, at most
          ``max_iter=200`` iterations; ``tol`` is scipy's ``gtol`` (stop once no
          gradient component exceeds it; None keeps scipy's 1e-5), as in
          scikit-learn. ``"lbfgs"`` also stops after ``max_fun=15000`` cost
          evaluations (scipy's ``maxfun``) and by scipy's default ``ftol``.

        The batch's mean cost: for ``half_sse`` the data cost is divided by the
        batch size; ``mse`` and ``cross_entropy`` are already means; the L2 term
        is not divided. With ``tol``, the mini-batch methods stop once an epoch
        lowers the loss by less than ``tol``. ``loss_curve_`` holds one loss per
        epoch (or BFGS iterate), ``n_iter_`` their count: for the mini-batch
        methods the cost in :meth:`cost`'s units gathered from the epoch's
        batches as they were visited, each at the weights it stepped from (as
        scikit-learn records it; no extra pass over the data), for BFGS the cost
        at each iterate. ``verbose=True`` shows a progress bar (tqdm) or prints a
        line per epoch; ``callback(net, epoch, loss)`` returning True stops.

        A NaN or infinite loss raises ``FloatingPointError`` naming the epoch and
        restores the weights of the last finite epoch. A ``KeyboardInterrupt`` (Ctrl-C
        stops an epoch within a slice of its batches, about 10 ms) is raised again
        with the weights, the optimizer's state, ``n_iter_`` and ``loss_curve_`` of
        the last completed epoch, or of the last accepted BFGS iterate. Targets outside the range
        of the output activation (sigmoid [0, 1], tanh [-1, 1], relu >= 0) are
        refused with a ``ValueError``.

        ``converged_`` is True when the tolerance was met (``tol`` for the
        mini-batch methods, scipy's criteria for BFGS) and False when it was
        not: when ``max_iter`` (or ``max_fun``) came first, with a
        :class:`fastbp.ConvergenceWarning`, or when scipy gave up (precision
        loss; see ``optimization_result_``). It is None when there was nothing
        to meet (no ``tol``, a callback stopped, or the network is untrained).

        Returns
        -------
        Network
            ``self``, trained.
        """
        free = self._free
        try:
            held = free.pop()
        except IndexError:
            held = self._in_use()
        if held:  # the calls nested in this fit (its callback's too) go through
            self._owner = threading.get_ident()
        try:
            return training.fit(self, X, y, method, sample_weight=sample_weight, **options)
        finally:
            if held:
                self._owner = None
                free.append(held)

    def predict_proba(self, X):
        """Probabilities from a sigmoid (per output) or softmax (per row) output layer.

        Returns
        -------
        ndarray (n, nL)
        """
        if ACTIVATIONS[self.activations[-1]].output_range != (0.0, 1.0):
            raise ValueError("predict_proba needs a sigmoid or softmax output layer; this "
                             f"network's is {self.activations[-1]!r}")
        return self.forward(X)

    @_one_thread
    def score(self, X, y, sample_weight=None):
        """Accuracy for ``loss="cross_entropy"``, else R² averaged over outputs;
        with ``sample_weight`` (n,) both weighted, as scikit-learn's
        ``accuracy_score`` and ``r2_score`` weigh them.

        Accuracy needs 0/1 targets. One-hot rows (one class each) count as right
        when the largest output is the class (always so with a softmax output);
        otherwise (one output, or several labels per row) every output is
        thresholded at 0.5 and a row counts as right only when all its labels
        are, as scikit-learn's multi-label accuracy does.

        Returns
        -------
        float
        """
        X, y = self._check_Xy(X, y)
        return self._score(X, y, self._check_weights(sample_weight, X))

    def _score(self, X, y, sample_weight=None):
        """:meth:`score` of validated ``X``, ``y``, weights (what early stopping calls
        each epoch)."""
        yhat = self._engine_for(X).forward(self, X)
        w = None if sample_weight is None else sample_weight.astype(np.float64)
        if self._head.score == "accuracy":
            if not np.isin(y, (0, 1)).all():
                raise ValueError("score needs 0/1 targets for loss='cross_entropy' (accuracy); "
                                 "y holds values strictly between 0 and 1")
            if y.shape[1] > 1 and (y.sum(axis=1) == 1).all():
                right = yhat.argmax(axis=1) == y.argmax(axis=1)
            else:
                right = ((yhat >= 0.5) == (y == 1)).all(axis=1)
            return float(np.average(right, weights=w))
        if w is None:
            ss_res = ((y - yhat) ** 2).sum(axis=0, dtype=np.float64)
            ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0, dtype=np.float64)
        else:
            mean = np.average(y, axis=0, weights=w)
            ss_res = (w[:, None] * (y - yhat) ** 2).sum(axis=0, dtype=np.float64)
            ss_tot = (w[:, None] * (y - mean) ** 2).sum(axis=0, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res > 0, 0.0, 1.0))
        return float(r2.mean())

    @_one_thread
    def save(self, path):
        """Write the network to one ``.npz`` file (see :func:`fastbp.load`)."""
        io.save(self, path)

    def __repr__(self):
        return (
            f"Network({list(self.layer_sizes)}, activations={list(self.activations)}, "
            f"loss={self.loss!r}, bias={self.bias}, l2={self.l2}, "
            f"dtype={self.dtype.name}, backend={self.backend!r})"
        )


def _check_targets(y, head):
    """Targets as the output head needs them (:data:`fastbp.kernels.HEADS`)."""
    if head.targets == "unit" and ((y < 0).any() or (y > 1).any()):
        raise ValueError(f"y must lie in [0, 1] for loss={head.loss!r} with a "
                         f"{head.outputs[0]} output")
    if head.targets == "counts" and (y < 0).any():
        raise ValueError(f"y must not be negative for loss={head.loss!r} (the mean of "
                         f"counts, exp(z) > 0); got a minimum of {y.min()}")
    if head.targets == "distribution":
        # a row of probabilities sums to 1 up to the rounding of its entries
        tol = 8 * np.finfo(y.dtype).eps * y.shape[1]
        if (y < 0).any() or (np.abs(y.sum(axis=1, dtype=np.float64) - 1) > tol).any():
            raise ValueError(f"each row of y must be a probability vector (non-negative, "
                             f"summing to 1) for loss={head.loss!r} with a softmax output: "
                             "one-hot or soft labels")


def _parameter_slices(sizes, bias):
    """Per layer ``(w_start, w_stop, W.shape, b_start, b_stop)`` in the flat
    parameters: ``W.ravel()`` then ``b`` (``None`` without biases)."""
    slices, pos = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = (pos, pos + n_in * n_out, (n_in, n_out))
        pos += n_in * n_out
        b = (pos, pos + n_out) if bias else (None, None)
        pos += n_out if bias else 0
        slices.append(w + b)
    return slices


def _layer_sizes(layer_sizes):
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(f"layer_sizes must be a sequence of integers; got {layer_sizes!r}")
    if len(layer_sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least two entries (inputs and outputs); got {layer_sizes!r}"
        )
    return tuple(v.positive_int(n, f"layer_sizes[{i}]") for i, n in enumerate(layer_sizes))


def _assign(views, values, name):
    if len(values) != len(views):
        raise ValueError(f"{name} must be a list of {len(views)} arrays; got {len(values)}")
    checked = []
    for i, (target, value) in enumerate(zip(views, values)):
        arr = v.as_array(value, f"{name}[{i}]", dtype=target.dtype, ndim=target.ndim,
                         finite=True)
        if arr.shape != target.shape:
            raise ValueError(f"{name}[{i}] must have shape {target.shape}; got {arr.shape}")
        checked.append(arr)
    for target, arr in zip(views, checked):
        target[...] = arr
