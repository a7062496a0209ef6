"""The :class:`Network`: validation and bookkeeping around the fused kernels.

All parameters live in one flat array (per layer ``W.ravel()`` then ``b``);
``weights`` and ``biases`` are views into it, so the kernels see one buffer.
"""

import functools

import numpy as np

from . import _validation as v
from . import io, reference, training
from .kernels import ACTIVATIONS
from .kernels import _network as fused
from .kernels._jit import specialisation

LOSSES = {"half_sse": fused.HALF_SSE, "mse": fused.MSE, "cross_entropy": fused.CROSS_ENTROPY}
#: The values each activation can output: targets outside can never be fitted.
OUTPUT_RANGES = {
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "relu": (0.0, np.inf),
    "identity": (-np.inf, np.inf),
}
BACKENDS = ("numba", "numpy")
#: Rows per chunk for forward passes and costs (bounds workspace memory).
CHUNK_ROWS = 4096


class Network:
    """A fully connected feed-forward network; rows of ``X`` are examples.

    Parameters
    ----------
    layer_sizes : sequence of int, ``[n0, n1, ..., nL]`` (at least two).
    activation : hidden-layer activation, one of sigmoid, tanh, relu, identity.
    output_activation : output-layer activation; ``None`` means ``activation``.
    bias : whether layers have biases.
    loss : ``"half_sse"`` (``0.5 * sum((y - yhat)**2)``), ``"mse"`` (mean over
        examples of the squared error summed over outputs) or ``"cross_entropy"``
        (mean over examples of the summed binary cross-entropy; sigmoid output only).
    l2 : adds ``(l2 / 2) * sum(W**2)`` over the weights (never the biases).
    dtype : numpy.float32 or numpy.float64; inputs are cast to it.
    seed : seed (or ``numpy.random.Generator``) for the initial weights, drawn as
        ``standard_normal / sqrt(n_in)``; biases start at zero.
    backend : ``"numba"`` (compiled kernels) or ``"numpy"`` (:mod:`fastbp.reference`).

    Thread safety: a Network owns scratch buffers, so one instance must not be
    used from two threads at once; separate instances may run concurrently (the
    kernels release the GIL).
    """

    def __init__(self, layer_sizes, *, activation="sigmoid", output_activation=None,
                 bias=True, loss="half_sse", l2=0.0, dtype=np.float64, seed=None,
                 backend="numba"):
        sizes = _layer_sizes(layer_sizes)
        v.choice(activation, "activation", ACTIVATIONS)
        if output_activation is None:
            output_activation = activation
        v.choice(output_activation, "output_activation", ACTIVATIONS)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False; got {bias!r}")
        v.choice(loss, "loss", LOSSES)
        if loss == "cross_entropy" and output_activation != "sigmoid":
            raise ValueError(
                "loss='cross_entropy' needs output_activation='sigmoid'; "
                f"got {output_activation!r}"
            )
        self.l2 = v.real_number(l2, "l2", low=0.0)
        self.dtype = v.float_dtype(dtype)
        self.backend = v.choice(backend, "backend", BACKENDS)
        self.layer_sizes = sizes
        self.activations = (activation,) * (len(sizes) - 2) + (output_activation,)
        self.loss = loss
        self.bias = bool(bias)
        self._layout, n_params = fused.make_layout(
            sizes, [ACTIVATIONS[a] for a in self.activations], self.bias, LOSSES[loss]
        )
        self._slices = _parameter_slices(sizes, self.bias)
        self._params = np.zeros(n_params, self.dtype)
        self._grad = None  # the optimisers' gradient buffer, made on first use
        self._work = np.empty(0, self.dtype)
        self._work_per_row = fused.workspace_size(self._layout, 1)
        rng = v.generator(seed)
        for W in self.weights:
            W[...] = rng.standard_normal(W.shape) / np.sqrt(W.shape[0])
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.converged_ = None

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
    def weights(self, values):
        _assign(self.weights, values, "weights")

    @property
    def biases(self):
        """List of bias vectors ``(n[l],)`` (views), or ``None`` when ``bias=False``."""
        return [b for _, b in self._views(self._params)] if self.bias else None

    @biases.setter
    def biases(self, values):
        if not self.bias:
            raise ValueError("this network was built with bias=False; it has no biases")
        _assign(self.biases, values, "biases")

    @property
    def n_params(self):
        return self._params.size

    def get_params(self):
        """All parameters as one 1-D array: per layer ``W.ravel()`` then ``b``."""
        return self._params.copy()

    def set_params(self, params):
        """Inverse of :meth:`get_params`."""
        p = v.as_array(params, "params", dtype=self.dtype, ndim=1, finite=True)
        if p.size != self._params.size:
            raise ValueError(f"params must have length {self._params.size}; got {p.size}")
        self._params[...] = p

    # -- validation -------------------------------------------------------------

    def _check_X(self, X):
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
                and X.shape[0] == y.shape[0] and self.loss != "cross_entropy"
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
        if self.loss == "cross_entropy" and ((y < 0).any() or (y > 1).any()):
            raise ValueError("y must lie in [0, 1] for loss='cross_entropy'")
        return X, y

    def _workspace(self, n):
        """A flat scratch buffer for passes over ``n`` rows, grown on demand."""
        if self._work.size < n * self._work_per_row:
            self._work = np.empty(n * self._work_per_row, self.dtype)
        return self._work

    # -- passes -----------------------------------------------------------------

    def _reference_args(self):
        return self.weights, self.biases

    def forward(self, X):
        """``yhat`` (n, nL) for ``X`` (n, n0)."""
        X = self._check_X(X)
        return self._forward(X)

    def _forward(self, X):
        if self.backend == "numpy":
            W, b = self._reference_args()
            return reference.forward(W, b, X, self.activations)
        yhat = np.empty((X.shape[0], self.layer_sizes[-1]), self.dtype)
        for start, stop, work in self._chunks(X.shape[0]):
            off = fused.forward_pass(self._params, self._layout, X[start:stop], work)
            yhat[start:stop] = work[off : off + yhat[start:stop].size].reshape(stop - start, -1)
        return yhat

    def _chunks(self, n):
        """Row ranges of at most ``CHUNK_ROWS`` with a workspace for each: bounds the
        memory of forward passes and costs over large data sets."""
        step = min(n, CHUNK_ROWS)
        work = self._workspace(step)
        for start in range(0, n, step):
            yield start, min(start + step, n), work

    def predict(self, X):
        """Same as :meth:`forward`: the network's output for ``X``."""
        return self.forward(X)

    def cost(self, X, y):
        """The cost ``J`` as a float (data cost plus the L2 term)."""
        X, y = self._check_Xy(X, y)
        return self._cost(X, y)

    def _cost(self, X, y):
        if self.backend == "numpy":
            W, b = self._reference_args()
            return reference.cost(W, b, X, y, self.activations, self.loss, self.l2)
        n = X.shape[0]
        total = 0.0
        for start, stop, work in self._chunks(n):
            J = fused.cost_only(self._params, self._layout, X[start:stop], y[start:stop],
                                work, 0.0)
            # mean-type costs are means over the chunk: weight them by its share
            total += J if self.loss == "half_sse" else J * (stop - start) / n
        if self.l2:
            total += 0.5 * self.l2 * sum(np.sum(W * W, dtype=np.float64) for W in self.weights)
        return float(total)

    def _grad_buffer(self):
        if self._grad is None:
            self._grad = np.empty_like(self._params)
        return self._grad

    def _flat_cost_and_gradient(self, X, y, data_scale=1.0, out=None):
        """``(J, grad)``, ``grad`` flat like ``get_params()``: written into ``out``, by
        default the optimisers' buffer (valid until the next call)."""
        grad = self._grad_buffer() if out is None else out
        if self.backend == "numpy":
            W, b = self._reference_args()
            J, gW, gb = reference.cost_and_gradients(
                W, b, X, y, self.activations, self.loss, self.l2, data_scale
            )
            for l, (vW, vb) in enumerate(self._views(grad)):
                vW[...] = gW[l]
                if vb is not None:
                    vb[...] = gb[l]
            return J, grad
        work = self._workspace(X.shape[0])
        J = fused.cost_and_gradient(
            self._params, self._layout, X, y, work, grad, self.l2, data_scale
        )
        return float(J), grad

    def _objective(self, X, y, data_scale=1.0):
        """For validated ``X``, ``y``: a function of no arguments returning what
        ``_flat_cost_and_gradient(X, y, data_scale)`` returns at the current
        parameters; what an optimiser calls once per iteration.

        The compiled pass is chosen once, for the exact types of its arguments,
        and called with them bound, which skips Numba's per-call dispatch. Every
        bound array is a fresh view that no other code holds, so no later change
        to ``X``, ``y`` or a returned gradient can change the types it was
        compiled for.
        """
        if self.backend == "numpy":
            return functools.partial(self._flat_cost_and_gradient, X, y, data_scale)
        grad = self._grad_buffer()
        args = (self._params.view(), self._layout.view(), X.view(), y.view(),
                self._workspace(X.shape[0]).view(), grad.view(), self.l2, float(data_scale))
        kernel = specialisation(fused.cost_and_gradient, args)

        def objective():
            return float(kernel(*args)), grad

        return objective

    def cost_and_gradients(self, X, y):
        """``(J, weight_grads, bias_grads)`` from one forward and one backward pass."""
        X, y = self._check_Xy(X, y)
        J, grad = self._flat_cost_and_gradient(X, y, out=np.empty_like(self._params))
        views = self._views(grad)
        return J, [W for W, _ in views], [b for _, b in views] if self.bias else None

    def gradients(self, X, y):
        """``(weight_grads, bias_grads)``; ``bias_grads`` is ``None`` without biases."""
        _, gW, gb = self.cost_and_gradients(X, y)
        return gW, gb

    # -- training, scoring, persistence -------------------------------------------

    def fit(self, X, y, *, method="sgd", epochs=10, batch_size=32, learning_rate=0.1,
            momentum=0.0, shuffle=True, seed=None, max_iter=200, tol=None, verbose=False,
            callback=None):
        """Train in place and return ``self``.

        method : ``"sgd"`` (mini-batches of ``batch_size`` rows, shuffled each epoch
            by a ``numpy.random.Generator`` seeded with ``seed``), ``"gd"``
            (full batch, ``epochs`` steps), ``"bfgs"`` or ``"lbfgs"`` (scipy, at most
            ``max_iter`` iterations, ``tol`` passed to ``scipy.optimize.minimize``).
        SGD/GD step every parameter by ``-learning_rate`` times the gradient of the
        batch's mean cost (for ``half_sse`` the data cost is divided by the batch
        size; ``mse`` and ``cross_entropy`` are already means; the L2 term is not
        divided), with classical ``momentum`` when it is positive. With ``tol``,
        SGD/GD stop once an epoch lowers the loss by less than ``tol``.
        ``loss_curve_`` holds one loss per epoch (or BFGS iterate), ``n_iter_``
        their count: for SGD/GD the cost in :meth:`cost`'s units gathered from the
        epoch's batches as they were visited, each at the weights it stepped from
        (as scikit-learn records it; no extra pass over the data), for BFGS the
        cost at each iterate. ``verbose`` shows a progress bar (tqdm) or prints
        a line per epoch; ``callback(net, epoch, loss)`` returning True stops.
        A NaN or infinite loss raises ``FloatingPointError`` naming the epoch and
        restores the weights of the last finite epoch. Targets outside the range
        of the output activation (sigmoid [0, 1], tanh [-1, 1], relu >= 0) are
        refused with a ``ValueError``.

        ``converged_`` is True when the tolerance was met (``tol`` for SGD/GD,
        scipy's own criteria for BFGS) and False when it was not: when the
        iteration limit came first, with a :class:`fastbp.ConvergenceWarning`, or
        when scipy gave up (precision loss; see ``optimization_result_``). It is
        None when there was nothing to meet (SGD/GD without ``tol``, a callback
        stopped, or the network is untrained).

        Returns
        -------
        Network
            ``self``, trained.
        """
        return training.fit(self, X, y, method=method, epochs=epochs, batch_size=batch_size,
                            learning_rate=learning_rate, momentum=momentum, shuffle=shuffle,
                            seed=seed, max_iter=max_iter, tol=tol, verbose=verbose,
                            callback=callback)

    def predict_proba(self, X):
        """Probabilities (n, nL) from a sigmoid output layer."""
        if self.activations[-1] != "sigmoid":
            raise ValueError("predict_proba needs a sigmoid output layer; this network's is "
                             f"{self.activations[-1]!r}")
        return self.forward(X)

    def score(self, X, y):
        """Accuracy for ``loss="cross_entropy"``, else R² averaged over outputs.

        Accuracy needs 0/1 targets. One-hot rows (one class each) count as right
        when the largest output is the class; otherwise (one output, or several
        labels per row) every output is thresholded at 0.5 and a row counts as
        right only when all its labels are, as scikit-learn's multi-label
        accuracy does.

        Returns
        -------
        float
        """
        X, y = self._check_Xy(X, y)
        yhat = self._forward(X)
        if self.loss == "cross_entropy":
            if not np.isin(y, (0, 1)).all():
                raise ValueError("score needs 0/1 targets for loss='cross_entropy' (accuracy); "
                                 "y holds values strictly between 0 and 1")
            if y.shape[1] > 1 and (y.sum(axis=1) == 1).all():
                return float(np.mean(yhat.argmax(axis=1) == y.argmax(axis=1)))
            return float(np.mean(((yhat >= 0.5) == (y == 1)).all(axis=1)))
        ss_res = ((y - yhat) ** 2).sum(axis=0, dtype=np.float64)
        ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res > 0, 0.0, 1.0))
        return float(r2.mean())

    def save(self, path):
        """Write the network to one ``.npz`` file (see :func:`fastbp.load`)."""
        io.save(self, path)

    def __repr__(self):
        return (
            f"Network({list(self.layer_sizes)}, activations={list(self.activations)}, "
            f"loss={self.loss!r}, bias={self.bias}, l2={self.l2}, "
            f"dtype={self.dtype.name}, backend={self.backend!r})"
        )


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
