"""Training loops: mini-batch SGD, full-batch gradient descent and scipy's (L-)BFGS.

On the numba backend a whole SGD epoch is one jitted call over preallocated
buffers; the numpy backend runs the same steps in a Python loop over
:mod:`fastbp.reference`, so both give the same weights from the same seed.
"""

import warnings

import numpy as np

from . import _validation as v
from .kernels import _network as fused

METHODS = ("sgd", "gd", "bfgs", "lbfgs")


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


def fit(net, X, y, *, method="sgd", epochs=10, batch_size=32, learning_rate=0.1,
        momentum=0.0, shuffle=True, seed=None, max_iter=200, tol=None, verbose=False,
        callback=None):
    """Train ``net`` in place; see :meth:`fastbp.Network.fit`."""
    v.choice(method, "method", METHODS)
    X, y = net._check_Xy(X, y)
    _check_targets_reachable(net, y)
    epochs = v.positive_int(epochs, "epochs")
    batch_size = v.positive_int(batch_size, "batch_size")
    learning_rate = v.real_number(learning_rate, "learning_rate", low=0.0, low_open=True)
    momentum = v.real_number(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    max_iter = v.positive_int(max_iter, "max_iter")
    if tol is not None:
        tol = v.real_number(tol, "tol", low=0.0)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False; got {shuffle!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got {callback!r}")
    rng = v.generator(seed)
    net.loss_curve_ = []
    net.n_iter_ = 0
    net.converged_ = None
    quasi_newton = method in ("bfgs", "lbfgs")
    progress = _Progress(verbose, max_iter if quasi_newton else epochs,
                         "iteration" if quasi_newton else "epoch")
    # Divergence is detected from the loss and reported by epoch; NumPy's overflow
    # warnings on the way there (numpy backend) would only be noise.
    with np.errstate(over="ignore", invalid="ignore"), progress:
        if quasi_newton:
            _fit_bfgs(net, X, y, method, max_iter, tol, progress, callback)
        else:
            if method == "gd":
                batch_size, shuffle = X.shape[0], False
            _fit_sgd(net, X, y, epochs, batch_size, learning_rate, momentum, shuffle,
                     rng, tol, progress, callback)
    return net


def _record(net, loss, step, progress, callback):
    """Log one epoch/iterate; return True when the callback asks to stop."""
    net.loss_curve_.append(loss)
    net.n_iter_ = step
    progress.update(step, loss)
    return bool(callback(net, step, loss)) if callback is not None else False


def _fit_sgd(net, X, y, epochs, batch_size, learning_rate, momentum, shuffle, rng,
             tol, progress, callback):
    n = X.shape[0]
    batch_size = min(batch_size, n)
    order = np.arange(n, dtype=np.int64)
    velocity = np.zeros_like(net._params)
    per_example = net.loss == "half_sse"  # the sum-type cost: step on the batch mean
    dt = net.dtype.type
    if net.backend == "numba":
        X_batch = np.empty(batch_size * X.shape[1], net.dtype)
        y_batch = np.empty(batch_size * y.shape[1], net.dtype)
    for epoch in range(1, epochs + 1):
        last_finite = net._params.copy()
        if shuffle:
            rng.shuffle(order)
        if net.backend == "numba":
            work = net._workspace(batch_size)
            loss = fused.sgd_epoch(net._params, net._layout, X, y, order, batch_size,
                                   dt(learning_rate), dt(momentum), velocity, net.l2,
                                   per_example, work, net._grad_buffer(), X_batch, y_batch)
        else:
            loss = _numpy_epoch(net, X, y, order, batch_size, learning_rate, momentum,
                                velocity, per_example)
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


def _numpy_epoch(net, X, y, order, batch_size, learning_rate, momentum, velocity,
                 per_example):
    """The steps of ``fused.sgd_epoch`` on the reference; returns the same loss."""
    n, loss = X.shape[0], 0.0
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        m = idx.size
        scale = 1.0 / m if per_example else 1.0
        l2_cost = 0.0
        if net.l2:
            l2_cost = 0.5 * net.l2 * sum(np.sum(W * W, dtype=np.float64) for W in net.weights)
        J, grad = net._flat_cost_and_gradient(X[idx], y[idx], scale)
        loss += (J - l2_cost) * m if per_example else (J - l2_cost) * m / n
        loss += l2_cost * m / n
        grad *= learning_rate  # in place: the buffer is rewritten by the next batch
        if momentum != 0.0:
            velocity *= momentum
            velocity -= grad
            net._params += velocity
        else:
            net._params -= grad
    return loss


def _fit_bfgs(net, X, y, method, max_iter, tol, progress, callback):
    import scipy.optimize  # imported on first use: it doubles the import time of fastbp

    last_finite = net.get_params()
    objective = net._objective(X, y)

    def cost_and_grad(p):
        net._params[...] = p
        J, grad = objective()
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
