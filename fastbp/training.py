"""Training loops over an :class:`fastbp.objective.Objective`: mini-batch methods
(SGD with momentum, full-batch gradient descent, Adam) stepped by an optimizer
of :mod:`fastbp.optimizers`, and scipy's (L-)BFGS.

Each epoch is one call of the objective's ``epoch``: on the compiled engine
jitted calls over preallocated buffers, a slice of batches each (so Ctrl-C
stops it within a slice), on the reference engine the same steps in NumPy, so
both give the same weights from the same seed. An epoch or iterate that does
not complete (KeyboardInterrupt, a NaN) leaves no trace: the weights, the
optimizer's state, ``n_iter_`` and ``loss_curve_`` stay at the last completed one.
"""

import warnings

import numpy as np

from . import dask as _dask
from .kernels import ACTIVATIONS
from .kernels import _validation as v
from .optimizers import OPTIMIZERS

_MINIBATCH = {"epochs": 10, "batch_size": 32, "shuffle": True, "seed": None, "tol": None,
              "n_iter_no_change": 1, "validation_data": None, "validation_fraction": None,
              "restore_best": False, "resume": False}
# tol is scipy's gtol (the largest gradient component allowed at the end); max_fun
# its maxfun: scikit-learn's meanings and default
_BFGS = {"max_iter": 200, "tol": None}
_LBFGS = {**_BFGS, "max_fun": 15000}
_FULL_BATCH = {"epochs": 10, "tol": None, "n_iter_no_change": 1, "resume": False}
#: ``fit`` method -> the options it takes, with their defaults (besides ``verbose``
#: and ``callback``, which every method takes): the epoch loop's, and the
#: optimizer's own (learning rate, momentum, betas, ...) from its class.
METHOD_OPTIONS = {
    **{method: {**(_FULL_BATCH if method == "gd" else _MINIBATCH), **cls.defaults}
       for method, cls in OPTIMIZERS.items()},
    "bfgs": _BFGS,
    "lbfgs": _LBFGS,
}


def add_minibatch_method(method, cls):
    """``fit(method=method)``: mini-batch epochs stepped by the optimizer ``cls``."""
    METHOD_OPTIONS[method] = {**_MINIBATCH, **cls.defaults}


class ConvergenceWarning(UserWarning):
    """Training stopped at its iteration limit before meeting its tolerance."""


def _check_targets_reachable(net, y):
    """Refuse targets that the output activation can never produce."""
    act = net.activations[-1]
    low, high = ACTIVATIONS[act].output_range
    y_min, y_max = float(y.min()), float(y.max())
    if y_min < low or y_max > high:
        raise ValueError(
            f"y holds values in [{y_min:.4g}, {y_max:.4g}], outside [{low}, {high}], the range "
            f"of the output activation {act!r}, so they can never be fitted; use "
            "output_activation='identity' for unbounded targets, or scale y into that range"
        )


def _options(method, options):
    """``fit``'s options for ``method``, defaults filled in; ``TypeError`` naming any
    option the method does not take."""
    v.choice(method, "method", tuple(METHOD_OPTIONS))
    allowed = METHOD_OPTIONS[method]
    unknown = sorted(set(options) - set(allowed) - {"verbose", "callback"})
    if unknown:
        raise TypeError(f"fit(method={method!r}) takes no option {', '.join(map(repr, unknown))}; "
                        f"it takes {sorted(allowed) + ['callback', 'verbose']}")
    opts = {**allowed, "verbose": False, "callback": None, **options}
    for name in ("epochs", "batch_size", "max_iter", "max_fun", "n_iter_no_change"):
        if name in allowed:
            opts[name] = v.positive_int(opts[name], name)
    if opts["tol"] is not None:
        opts["tol"] = v.real_number(opts["tol"], "tol", low=0.0)
    if opts["callback"] is not None and not callable(opts["callback"]):
        raise TypeError(f"callback must be callable; got {opts['callback']!r}")
    for name in ("shuffle", "restore_best", "resume"):
        if name in allowed and not isinstance(opts[name], (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False; got {opts[name]!r}")
    if opts.get("validation_fraction") is not None:
        if opts.get("validation_data") is not None:
            raise ValueError("give validation_data or validation_fraction, not both")
        opts["validation_fraction"] = v.real_number(
            opts["validation_fraction"], "validation_fraction", low=0.0, high=1.0,
            low_open=True, high_open=True)
    data = opts.get("validation_data")
    if data is not None and (isinstance(data, (str, bytes)) or not hasattr(data, "__len__")
                             or len(data) not in (2, 3)):
        raise TypeError("validation_data must be a pair (X_val, y_val) or a triple (X_val, "
                        f"y_val, sample_weight_val); got {type(data).__name__}")
    if opts.get("restore_best") and data is None and opts.get("validation_fraction") is None:
        raise ValueError("restore_best=True needs validation_data or validation_fraction")
    return opts


def _validation_split(net, X, y, w, opts, rng):
    """``(X, y, w, validation objective or None)``: the rows ``validation_fraction``
    sets aside (drawn by ``rng``; their weights with them), or ``validation_data``,
    validated like the training data."""
    if opts.get("validation_data") is not None:
        X_val, y_val, *w_val = opts["validation_data"]
        return X, y, w, net.objective(X_val, y_val, sample_weight=w_val[0] if w_val else None)
    if opts.get("validation_fraction") is None:
        return X, y, w, None
    X, y = net._check_Xy(X, y)
    n = X.shape[0]
    n_val = int(np.ceil(opts["validation_fraction"] * n))
    if not 0 < n_val < n:
        raise ValueError(f"validation_fraction={opts['validation_fraction']} of {n} rows leaves "
                         "no row to train on or none to validate on")
    rows = rng.permutation(n)
    val, train = np.sort(rows[:n_val]), np.sort(rows[n_val:])
    if w is None:
        return X[train], y[train], None, net.objective(X[val], y[val])
    w = net._check_weights(w, X)
    if not w[train].any() or not w[val].any():
        raise ValueError(f"validation_fraction={opts['validation_fraction']} leaves the "
                         "training or the validation rows with sample_weight all 0")
    return X[train], y[train], w[train], net.objective(X[val], y[val], sample_weight=w[val])


def fit(net, X, y, method="sgd", sample_weight=None, **options):
    """Train ``net`` in place; see :meth:`fastbp.Network.fit`."""
    opts = _options(method, options)
    on_dask = _dask.any_dask(X, y, sample_weight)  # dask arrays: fastbp.dask
    if on_dask:
        _dask.check_fit_options(opts)
    optimizer = validation = None
    if method in OPTIMIZERS:
        cls = OPTIMIZERS[method]
        optimizer = cls(**{k: opts[k] for k in cls.defaults})
        previous = getattr(net, "optimizer_", None)
        resume = opts["resume"] and previous is not None
        if resume and (type(previous) is not cls or previous.options != optimizer.options):
            raise ValueError(f"resume=True continues the previous fit's optimizer "
                             f"({type(previous).__name__}, {previous.options}); got "
                             f"method={method!r} with {optimizer.options}")
        # the shuffling generator and row order go on too, unless a seed restarts them
        if resume and opts.get("seed") is None:
            rng, order = net._shuffle_state
        else:
            rng, order = v.generator(opts.get("seed")), None
        X, y, sample_weight, validation = _validation_split(net, X, y, sample_weight, opts, rng)
    # dask arrays: one task per chunk, validated (targets' range too) where it runs,
    # the chunks kept on the workers for the full-batch methods, streamed otherwise
    objective = net._objective_of(X, y, sample_weight, persist=method in _dask.FULL_BATCH,
                                  for_fit=True)
    if not on_dask:
        _check_targets_reachable(net, objective.y)
    if optimizer is not None:
        if resume:
            optimizer = previous
        else:
            optimizer.start(net._params)
        if order is None or order.size != objective.n_rows:
            order = np.arange(objective.n_rows, dtype=np.int64)
        net.optimizer_, net._shuffle_state = optimizer, (rng, order)
    if optimizer is None or not resume:
        net.loss_curve_ = []
        net.n_iter_ = 0
        net.validation_scores_ = []
    net.converged_ = None
    quasi_newton = optimizer is None
    progress = _Progress(opts["verbose"], opts["max_iter"] if quasi_newton else opts["epochs"],
                         "iteration" if quasi_newton else "epoch")
    # Divergence is detected from the loss and reported by epoch; NumPy's overflow
    # warnings on the way there (reference engine) would only be noise.
    with np.errstate(over="ignore", invalid="ignore"), progress, _best_loss(net):
        if quasi_newton:
            _fit_bfgs(net, objective, method, opts["max_iter"], opts.get("max_fun"),
                      opts["tol"], progress, opts["callback"])
        else:
            batch_size, shuffle = opts.get("batch_size"), opts.get("shuffle", False)
            if method == "gd":
                batch_size = objective.n_rows
            _fit_minibatch(net, objective, optimizer, opts["epochs"], batch_size, shuffle,
                           rng, order,
                           opts["tol"], opts["n_iter_no_change"], validation,
                           opts.get("restore_best", False), progress, opts["callback"])
    return net


class _best_loss:
    """Sets ``best_loss_`` from ``loss_curve_`` however ``fit`` ends (a KeyboardInterrupt too)."""

    def __init__(self, net):
        self.net = net

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.net.best_loss_ = min(self.net.loss_curve_, default=None)


class _EpochStart:
    """What an epoch changes, as it was before it: restored when the epoch does
    not complete (a KeyboardInterrupt, a NaN), so that the weights, the
    optimizer's state, the shuffling stream, ``n_iter_`` and the records agree
    on the last completed epoch. Copies the parameters and the optimizer's
    state (and the row order when shuffling) once per epoch."""

    def __init__(self, net, optimizer, rng, order, shuffle):
        self.net, self.optimizer = net, optimizer
        self.params = net._params.copy()
        self.state, self.hyper = optimizer.state.copy(), optimizer.hyper.copy()
        self.rng, self.order = rng, order
        self.rng_state = rng.bit_generator.state if shuffle else None
        self.saved_order = order.copy() if shuffle else None
        self.n_iter = net.n_iter_
        self.n_losses, self.n_scores = len(net.loss_curve_), len(net.validation_scores_)

    def restore(self):
        net, optimizer = self.net, self.optimizer
        net._params[...] = self.params
        optimizer.state[...], optimizer.hyper[...] = self.state, self.hyper
        if self.rng_state is not None:
            self.rng.bit_generator.state = self.rng_state
            self.order[...] = self.saved_order
        del net.loss_curve_[self.n_losses:], net.validation_scores_[self.n_scores:]
        net.n_iter_ = self.n_iter


def _report(net, loss, step, progress, callback):
    """Show one recorded epoch/iterate; return True when the callback asks to stop."""
    progress.update(step, loss)
    return bool(callback(net, step, loss)) if callback is not None else False


def _fit_minibatch(net, objective, optimizer, epochs, batch_size, shuffle, rng, order, tol,
                   patience, validation, restore_best, progress, callback):
    """Epochs of ``optimizer`` steps. With ``tol``, stop once ``patience`` epochs in a
    row improve on the best so far by less than ``tol``: the training loss (lower
    is better), or with ``validation`` its ``score`` (higher is better)."""
    n = objective.n_rows
    batch_size = min(batch_size, n)
    best, stale, best_params = None, 0, None
    first = net.n_iter_ + 1
    for epoch in range(first, first + epochs):
        start = _EpochStart(net, optimizer, rng, order, shuffle)
        try:  # the epoch completes, recorded, or leaves no trace
            if shuffle:
                rng.shuffle(order)
            loss = objective.epoch(optimizer, order, batch_size)
            if not np.isfinite(net._params).all():  # the last step can overflow
                loss = float("nan")
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss} in epoch {epoch}; the weights were reset to "
                    "the end of the previous epoch (try a smaller learning_rate)"
                )
            if validation is not None:
                net.validation_scores_.append(
                    net._score(validation.X, validation.y, validation.sample_weight))
            net.loss_curve_.append(loss)
            net.n_iter_ = epoch
        except BaseException:
            start.restore()
            raise
        if validation is not None:
            merit = net.validation_scores_[-1]
        else:
            merit = -loss
        if best is None or merit >= best + (tol or 0.0):
            best, stale = merit, 0
            if restore_best:
                best_params = net.get_params()
        else:
            stale += 1
        if _report(net, loss, epoch, progress, callback):
            break
        if tol is not None and stale >= patience:
            net.converged_ = True
            break
    else:
        if tol is not None:
            net.converged_ = False
            warnings.warn(
                f"training stopped after epochs={epochs} with the "
                f"{'validation score' if validation is not None else 'loss'} still improving "
                f"by tol={tol} or more within n_iter_no_change={patience} epochs; raise epochs "
                "to go on", ConvergenceWarning, stacklevel=4)
    if best_params is not None:
        net.set_params(best_params)


def _fit_bfgs(net, objective, method, max_iter, max_fun, tol, progress, callback):
    """scipy's BFGS or L-BFGS-B; ``tol`` is their ``gtol`` (None: scipy's default),
    L-BFGS-B's ``ftol`` is left at its default, as scikit-learn leaves it."""
    import scipy.optimize  # imported on first use: it doubles the import time of fastbp

    # the last accepted iterate: (its number, its parameters, its loss), replaced whole
    accepted = (0, net.get_params(), None)

    def cost_and_grad(p):
        J, grad = objective.cost_and_gradient(p)
        return J, grad.astype(np.float64)

    class _Stop(Exception):
        pass

    def on_iterate(intermediate_result):
        nonlocal accepted
        loss = float(intermediate_result.fun)
        step = accepted[0] + 1
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} in iteration {step}")
        accepted = (step, intermediate_result.x.astype(net.dtype), loss)
        net.loss_curve_.append(loss)
        net.n_iter_ = step
        if _report(net, loss, step, progress, callback):
            raise _Stop

    def keep_accepted():
        """The last accepted iterate and its records, not a line search's trial point
        (however far its recording got before an interrupt)."""
        step, x, loss = accepted
        net._params[...] = x
        del net.loss_curve_[step:]
        if len(net.loss_curve_) < step:
            net.loss_curve_.append(loss)
        net.n_iter_ = step

    options = {"maxiter": max_iter}
    limits = f"max_iter={max_iter}"
    if tol is not None:
        # minimize's own tol would also set L-BFGS-B's ftol
        options["gtol"] = tol
    if method == "lbfgs":
        options["maxfun"] = max_fun
        limits += f", max_fun={max_fun}"
    try:
        result = scipy.optimize.minimize(
            cost_and_grad, net.get_params().astype(np.float64), jac=True,
            method="BFGS" if method == "bfgs" else "L-BFGS-B", options=options,
            callback=on_iterate,
        )
    except _Stop:
        keep_accepted()
        return
    except BaseException:  # FloatingPointError, KeyboardInterrupt
        keep_accepted()
        raise
    if not np.isfinite(result.fun):
        keep_accepted()
        raise FloatingPointError(f"the loss became {result.fun} after {result.nit} iterations")
    net._params[...] = result.x
    net.optimization_result_ = result
    net.converged_ = bool(result.success)
    if result.status == 1:  # scipy's code for an iteration (or evaluation) limit
        warnings.warn(f"{method} stopped at its limit without converging after {result.nit} "
                      f"iterations and {result.nfev} evaluations ({limits}): {result.message}",
                      ConvergenceWarning, stacklevel=4)


class _Progress:
    """tqdm bar with the running loss when tqdm is installed, else one line per
    epoch (or iteration)."""

    def __init__(self, verbose, total, unit):
        self.verbose = bool(verbose)
        self.unit = unit
        self.bar = None
        if self.verbose:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, unit=unit)

    def update(self, step, loss):
        if not self.verbose:
            return
        if self.bar is None:
            print(f"{self.unit} {step}: loss {loss:.6g}", flush=True)
        else:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.6g}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
