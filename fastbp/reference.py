"""The NumPy reference: the same math as :mod:`fastbp.kernels`, written to be read
next to it. No Numba here. Rows are examples; ``W[l]`` is (n[l-1], n[l]).

forward:   z[l] = a[l-1] @ W[l] + b[l],   a[l] = f(z[l]),   a[0] = X
delta:     delta[L] = dJ/dyhat * f'(z[L]),   delta[l] = (delta[l+1] @ W[l+1].T) * f'(z[l])
gradient:  dJ/dW[l] = a[l-1].T @ delta[l],   dJ/db[l] = delta[l].sum(axis=0)
"""

import numpy as np

from .kernels import _tables

__all__ = [
    "ACTIVATIONS",
    "HEADS",
    "activation",
    "activation_prime",
    "bias_gradient",
    "cost",
    "cost_and_gradients",
    "exp",
    "forward",
    "head_cost_and_delta",
    "hidden_delta",
    "identity",
    "identity_prime",
    "output_delta",
    "relu",
    "relu_prime",
    "UPDATE_RULES",
    "sigmoid",
    "sigmoid_prime",
    "softmax",
    "tanh",
    "tanh_prime",
    "weight_gradient",
]


def _out(result, out):
    if out is None:
        return result
    out[...] = result
    return out


def _float(x):
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def sigmoid(z, out=None):
    """``1 / (1 + exp(-z))`` without overflow: ``exp`` only ever sees ``-|z|``, and
    ``s(z) = e s(|z|)`` for ``z < 0`` keeps the tiny tail exact. One exp, one
    division, in place."""
    z = _float(z)
    e = np.abs(z)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e = exp(-|z|) <= 1
    s = e + 1
    np.reciprocal(s, out=s)  # s(|z|)
    np.multiply(s, e, out=s, where=z < 0)
    return _out(s, out)


def sigmoid_prime(z, out=None):
    """``sigmoid(z) * sigmoid(-z) = e / (1 + e)**2`` with ``e = exp(-|z|)``."""
    e = np.exp(-np.abs(_float(z)))
    return _out(e / (1 + e) ** 2, out)


def tanh(z, out=None):
    return _out(np.tanh(_float(z)), out)


def tanh_prime(z, out=None):
    # sech(z)^2 = 4 e / (1 + e)^2, e = exp(-2|z|): no cancellation in the tails
    e = np.exp(-2 * np.abs(_float(z)))
    return _out(4 * e / (1 + e) ** 2, out)


def relu(z, out=None):
    z = _float(z)
    return _out(np.maximum(z, 0), out)


def relu_prime(z, out=None):
    z = _float(z)
    return _out((z > 0).astype(z.dtype), out)


def identity(z, out=None):
    return _out(_float(z).copy(), out)


def identity_prime(z, out=None):
    return _out(np.ones_like(_float(z)), out)


def exp(z, out=None):
    """``exp(z)``: the Poisson head's output, a mean that is positive."""
    return _out(np.exp(_float(z)), out)


def softmax(z, out=None):
    """Row-wise ``exp(z) / exp(z).sum(axis=1)``, shifted by each row's maximum so
    that ``exp`` never overflows."""
    e = _float(z) - np.max(z, axis=1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=1, keepdims=True)
    return _out(e, out)


#: Name -> ``(f, f')`` for every activation of :data:`fastbp.kernels.ACTIVATIONS`
#: (the output-only ones have none here: their heads give ``dJ/dz`` directly).
ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_prime),
    "tanh": (tanh, tanh_prime),
    "relu": (relu, relu_prime),
    "identity": (identity, identity_prime),
    "softmax": (softmax, None),
    "exp": (exp, None),
}


def add_activation(name, f, prime):
    """The twin of a new activation (:mod:`fastbp.kernels.extend`): ``f`` and
    ``f'`` as NumPy functions of an array ``z``."""
    ACTIVATIONS[name] = (lambda z, out=None: _out(f(_float(z)), out),
                         lambda z, out=None: _out(prime(_float(z)), out))


def activation(z, name="sigmoid", out=None):
    return ACTIVATIONS[name][0](z, out)


def activation_prime(z, name="sigmoid", out=None):
    return ACTIVATIONS[name][1](z, out)


def output_delta(y, yhat, z, out=None, activation="sigmoid"):
    """``-(y - yhat) * f'(z)``: the half-SSE cost's output delta."""
    return _out(-(_float(y) - _float(yhat)) * ACTIVATIONS[activation][1](z), out)


def hidden_delta(delta_next, W_next, z, out=None, activation="sigmoid"):
    """``(delta_next @ W_next.T) * f'(z)``."""
    return _out((_float(delta_next) @ _float(W_next).T) * ACTIVATIONS[activation][1](z), out)


def weight_gradient(a_prev, delta, out=None, accumulate=False):
    """``a_prev.T @ delta``: every example's vote, summed by the matmul."""
    g = _float(a_prev).T @ _float(delta)
    return _out(out + g if accumulate else g, out)


def bias_gradient(delta, out=None, accumulate=False):
    """``delta.sum(axis=0)``."""
    g = _float(delta).sum(axis=0)
    return _out(out + g if accumulate else g, out)


def _forward_all(weights, biases, X, activations):
    """Pre-activations ``[z1, ..., zL]`` and activations ``[a0 = X, a1, ..., aL]``."""
    a, z = [X], []
    for l, W in enumerate(weights):
        z.append(a[-1] @ W if biases is None else a[-1] @ W + biases[l])
        a.append(ACTIVATIONS[activations[l]][0](z[-1]))
    return z, a


def forward(weights, biases, X, activations):
    """``yhat`` (n, nL) for weights ``[(n0, n1), ...]`` and per-layer activation names."""
    return _forward_all(weights, biases, X, activations)[1][-1]


# -- output heads: (yhat, z, y, output activation) -> (cost of each entry, dJ/dz) ----------
# unweighted, per row; head_cost_and_delta weighs the rows and takes the mean or sum.


def _half_sse(yhat, z, y, activation):
    r = yhat - y
    return 0.5 * r * r, r * ACTIVATIONS[activation][1](z)


def _squared_error(yhat, z, y, activation):
    r = yhat - y
    return r * r, 2 * r * ACTIVATIONS[activation][1](z)


def _canonical(entry_cost):
    """A loss on its canonical link: ``dJ/dz = yhat - y``."""
    return lambda yhat, z, y, activation: (entry_cost(yhat, z, y), yhat - y)


def _binary_cross_entropy(yhat, z, y):
    """-[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))) - y * z


def _categorical_cross_entropy(yhat, z, y):
    """-sum y log softmax(z) = sum y (lse(z) - z), lse around the row's maximum."""
    top = np.max(z, axis=1, keepdims=True)
    return y * (top + np.log(np.sum(np.exp(z - top), axis=1, keepdims=True)) - z)


def _half_poisson_deviance(yhat, z, y):
    """yhat - y log(yhat) + y log(y) - y, with log(yhat) = z."""
    y_log_y = np.where(y > 0, y * np.log(np.where(y > 0, y, 1)), 0)
    return yhat - y * z + y_log_y - y


#: Head code -> its twin, for every row of :data:`fastbp.kernels.HEADS`.
HEADS = {
    _tables.HALF_SSE: _half_sse,
    _tables.MSE: _squared_error,
    _tables.SIGMOID_CROSS_ENTROPY: _canonical(_binary_cross_entropy),
    _tables.SOFTMAX_CROSS_ENTROPY: _canonical(_categorical_cross_entropy),
    _tables.POISSON: _canonical(_half_poisson_deviance),
}


def add_canonical_head(code, entry_cost):
    """The twin of a new head on its canonical link (:mod:`fastbp.kernels.extend`):
    ``entry_cost(yhat, z, y)``, each output's cost, in NumPy."""
    HEADS[code] = _canonical(entry_cost)


def head_cost_and_delta(yhat, z_out, y, output_activation, loss, sample_weight=None):
    """The output head of :data:`fastbp.kernels.HEADS`: the data cost and
    ``delta[L] = dJ/dz[L]`` for outputs ``yhat = f(z_out)`` and targets ``y`` (n, m).

    ``sample_weight`` (n,): row ``i`` counts ``w[i]`` times, means are over
    ``sum(w)`` rows (1 when the weights are all 0).
    """
    head = _tables.head(output_activation, loss)
    if sample_weight is None:
        w, n = 1.0, y.shape[0]
    else:
        w = np.asarray(sample_weight).reshape(-1, 1)
        n = float(np.sum(w, dtype=np.float64)) or 1.0
    entry_cost, delta = HEADS[head.code](yhat, z_out, y, output_activation)
    J = np.sum(w * entry_cost, dtype=np.float64)
    return (J / n, w * delta / n) if head.mean else (J, w * delta)


def cost(weights, biases, X, y, activations, loss="half_sse", l2=0.0, sample_weight=None):
    """The cost ``J`` (float): data cost (rows weighted by ``sample_weight``) plus
    ``(l2 / 2) * sum(W**2)`` over weights."""
    z, a = _forward_all(weights, biases, X, activations)
    J, _ = head_cost_and_delta(a[-1], z[-1], y, activations[-1], loss, sample_weight)
    return float(J + 0.5 * l2 * sum(np.sum(W * W, dtype=np.float64) for W in weights))


def cost_and_gradients(weights, biases, X, y, activations, loss="half_sse", l2=0.0,
                       data_scale=1.0, sample_weight=None):
    """``(J, weight_grads, bias_grads)`` for ``data_scale * cost + (l2/2) sum W**2``,
    rows weighted by ``sample_weight`` (n,) as in :func:`head_cost_and_delta`.

    ``bias_grads`` is ``None`` when ``biases`` is ``None``.
    """
    z, a = _forward_all(weights, biases, X, activations)
    J, delta = head_cost_and_delta(a[-1], z[-1], y, activations[-1], loss, sample_weight)
    delta = delta * data_scale
    weight_grads = [None] * len(weights)
    bias_grads = None if biases is None else [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        weight_grads[l] = a[l].T @ delta + l2 * weights[l]
        if biases is not None:
            bias_grads[l] = delta.sum(axis=0)
        if l > 0:
            delta = (delta @ weights[l].T) * ACTIVATIONS[activations[l - 1]][1](z[l - 1])
    J = data_scale * J + 0.5 * l2 * sum(np.sum(W * W, dtype=np.float64) for W in weights)
    return float(J), weight_grads, bias_grads


# -- update rules: one batch's step of the flat parameters, in place ---------------------
# ``hyper``: the rule's hyperparameters by name; ``state``: its rows, by name.


def sgd_update(params, grad, hyper, state):
    """``p -= lr g``."""
    params -= params.dtype.type(hyper["learning_rate"]) * grad


def momentum_update(params, grad, hyper, state):
    """``v = mu v - lr g``, ``p += v``."""
    lr, mu = (params.dtype.type(hyper[k]) for k in ("learning_rate", "momentum"))
    v = state["velocity"]
    v[...] = mu * v - lr * grad
    params += v


def nesterov_update(params, grad, hyper, state):
    """scikit-learn's Nesterov: ``v = mu v - lr g``, ``p += mu v - lr g``."""
    lr, mu = (params.dtype.type(hyper[k]) for k in ("learning_rate", "momentum"))
    v = state["velocity"]
    v[...] = mu * v - lr * grad
    params += mu * v - lr * grad


def adam_update(params, grad, hyper, state):
    """``torch.optim.Adam``'s step ``t = hyper["steps"]`` (counted before the call)."""
    lr, beta1, beta2, eps, t = (hyper[k] for k in ("learning_rate", "beta1", "beta2", "eps",
                                                    "steps"))
    dt = params.dtype.type
    m, v = state["first_moment"], state["second_moment"]
    m += dt(1.0 - beta1) * (grad - m)
    v[...] = dt(beta2) * v + dt(1.0 - beta2) * grad * grad
    correction = dt(np.sqrt(1.0 - beta2**t))
    params -= dt(lr / (1.0 - beta1**t)) * m / (np.sqrt(v) / correction + dt(eps))


#: Rule name -> its step, for every row of :data:`fastbp.kernels.UPDATE_RULES`.
UPDATE_RULES = {
    "sgd": sgd_update,
    "momentum": momentum_update,
    "nesterov": nesterov_update,
    "adam": adam_update,
}
