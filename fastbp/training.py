"""Training loops over an :class:`fastbp.objective.Objective`: mini-batch methods
(SGD with momentum, full-batch gradient descent, Adam) stepped by an optimizer
of :mod:`fastbp.optimizers`, and scipy's (L-)BFGS.

Each epoch is one call of the objective's ``epoch``: on the compiled engine a
single jitted call over preallocated buffers, on the reference engine the same
steps in NumPy, so both give the same weights from the same seed.
"""

import warnings

import numpy as np

from .kernels import _validation as v
from .optimizers import OPTIMIZERS

_MINIBATCH = {"epochs": 10, "batch_size": 32, "shuffle": True, "seed": None, "tol": None}
_QUASI_NEWTON = {"max_iter": 200, "tol": None}
#: ``fit`` method -> the options it takes, with their defaults (besides ``verbose``
#: and ``callback``, which every method takes). The optimizer's own options
#: (learning rate, momentum, betas, ...) come from its class.
METHOD_OPTIONS = {
    "sgd": {**_MINIBATCH, **OPTIMIZERS["sgd"].defaults},
    "gd": {"epochs": 10, "tol": None, **OPTIMIZERS["gd"].defaults},
    "adam": {**_MINIBATCH, **OPTIMIZERS["adam"].defaults},
    "bfgs": _QUASI_NEWTON,
    "lbfgs": _QUASI_NEWTON,
}
METHODS = tuple(METHOD_OPTIONS)


class ConvergenceWarning(UserWarning):
    """Training stopped at its iteration limit before meeting its tolerance."""


def _check_targets_reachable(net, y):
    """Refuse targets that the output activation can never produce."""
    from .network import OUTPUT_RANGES

    act = net.activations[-1]
    low, high = OUTPUT_RANGES[act]
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
    v.choice(method, "method", METHODS)
    allowed = METHOD_OPTIONS[method]
    unknown = sorted(set(options) - set(allowed) - {"verbose", "callback"})
    if unknown:
        raise TypeError(f"fit(method={method!r}) takes no option {', '.join(map(repr, unknown))}; "
                        f"it takes {sorted(allowed) + ['callback', 'verbose']}")
    opts = {**allowed, "verbose": False, "callback": None, **options}
    for name in ("epochs", "batch_size", "max_iter"):
        if name in allowed:
            opts[name] = v.positive_int(opts[name], name)
    if opts["tol"] is not None:
        opts["tol"] = v.real_number(opts["tol"], "tol", low=0.0)
    if "shuffle" in allowed and not isinstance(opts["shuffle"], (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False; got {opts['shuffle']!r}")
    if opts["callback"] is not None and not callable(opts["callback"]):
        raise TypeError(f"callback must be callable; got {opts['callback']!r}")
    return opts


def fit(net, X, y, method="sgd", **options):
    """Train ``net`` in place; see :meth:`fastbp.Network.fit`."""
    opts = _options(method, options)
    objective = net.objective(X, y)
    _check_targets_reachable(net, objective.y)
    optimizer = None
    if method in OPTIMIZERS:
        cls = OPTIMIZERS[method]
        optimizer = cls(**{k: opts[k] for k in cls.defaults})
        rng = v.generator(opts.get("seed"))
    net.loss_curve_ = []
    net.n_iter_ = 0
    net.converged_ = None
    quasi_newton = optimizer is None
    progress = _Progress(opts["verbose"], opts["max_iter"] if quasi_newton else opts["epochs"],
                         "iteration" if quasi_newton else "epoch")
    # Divergence is detected from the loss and reported by epoch; NumPy's overflow
    # warnings on the way there (reference engine) would only be noise.
    with np.errstate(over="ignore", invalid="ignore"), progress:
        if quasi_newton:
            _fit_bfgs(net, objective, method, opts["max_iter"], opts["tol"], progress,
                      opts["callback"])
        else:
            batch_size, shuffle = opts.get("batch_size"), opts.get("shuffle", False)
            if method == "gd":
                batch_size = objective.n_rows
            _fit_minibatch(net, objective, optimizer, opts["epochs"], batch_size, shuffle, rng,
                           opts["tol"], progress, opts["callback"])
    return net


def _record(net, loss, step, progress, callback):
    """Log one epoch/iterate; return True when the callback asks to stop."""
    net.loss_curve_.append(loss)
    net.n_iter_ = step
    progress.update(step, loss)
    return bool(callback(net, step, loss)) if callback is not None else False


def _fit_minibatch(net, objective, optimizer, epochs, batch_size, shuffle, rng, tol, progress,
                   callback):
    n = objective.n_rows
    batch_size = min(batch_size, n)
    order = np.arange(n, dtype=np.int64)
    optimizer.start(net._params)
    for epoch in range(1, epochs + 1):
        last_finite = net._params.copy()
        if shuffle:
            rng.shuffle(order)
        loss = objective.epoch(optimizer, order, batch_size)
        if not np.isfinite(net._params).all():  # the last step can overflow
            loss = float("nan")
        if not np.isfinite(loss):
            net._params[...] = last_finite
            raise FloatingPointError(
                f"the loss became {loss} in epoch {epoch}; the weights were reset to "
                "the end of the previous epoch (try a smaller learning_rate)"
            )
        previous = net.loss_curve_[-1] if net.loss_curve_ else None
        if _record(net, loss, epoch, progress, callback):
            return
        if tol is not None and previous is not None and previous - loss < tol:
            net.converged_ = True
            return
    if tol is not None:
        net.converged_ = False
        warnings.warn(
            f"training stopped after epochs={epochs} with the loss still falling by tol={tol} "
            "or more per epoch; raise epochs to go on", ConvergenceWarning, stacklevel=4)


def _fit_bfgs(net, objective, method, max_iter, tol, progress, callback):
    import scipy.optimize  # imported on first use: it doubles the import time of fastbp

    last_finite = net.get_params()

    def cost_and_grad(p):
        J, grad = objective.cost_and_gradient(p)
        return J, grad.astype(np.float64)

    class _Stop(Exception):
        pass

    def on_iterate(intermediate_result):
        loss = float(intermediate_result.fun)
        step = len(net.loss_curve_) + 1
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} in iteration {step}")
        last_finite[...] = intermediate_result.x
        if _record(net, loss, step, progress, callback):
            raise _Stop

    try:
        result = scipy.optimize.minimize(
            cost_and_grad, net.get_params().astype(np.float64), jac=True,
            method="BFGS" if method == "bfgs" else "L-BFGS-B", tol=tol,
            options={"maxiter": max_iter}, callback=on_iterate,
        )
    except _Stop:
        net._params[...] = last_finite
        return
    except FloatingPointError:
        net._params[...] = last_finite
        raise
    if not np.isfinite(result.fun):
        net._params[...] = last_finite
        raise FloatingPointError(f"the loss became {result.fun} after {result.nit} iterations")
    net._params[...] = result.x
    net.optimization_result_ = result
    net.converged_ = bool(result.success)
    if result.status == 1:  # scipy's code for an iteration (or evaluation) limit
        warnings.warn(f"{method} stopped at its limit without converging after {result.nit} "
                      f"iterations (max_iter={max_iter}): {result.message}",
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
