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

# f'(z) in terms of a = f(z), as the network passes use it (exact for these four).
_PRIME_FROM_OUTPUT = {
    "sigmoid": lambda a: a * (1 - a),
    "tanh": lambda a: 1 - a * a,
    "relu": lambda a: (a > 0).astype(a.dtype),
    "identity": lambda a: np.ones_like(a),
}


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
    """Activations ``[a0 = X, a1, ..., aL]`` and the output pre-activation ``z[L]``."""
    a = [X]
    z = None
    for l, W in enumerate(weights):
        z = a[-1] @ W
        if biases is not None:
            z = z + biases[l]
        a.append(ACTIVATIONS[activations[l]][0](z))
    return a, z


def forward(weights, biases, X, activations):
    """``yhat`` (n, nL) for weights ``[(n0, n1), ...]`` and per-layer activation names."""
    return _forward_all(weights, biases, X, activations)[0][-1]


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
    r = yhat - y
    if head.code in (_tables.HALF_SSE, _tables.MSE):
        if head.mean:
            J, dJ = np.sum(w * r * r, dtype=np.float64) / n, 2 * w * r / n
        else:
            J, dJ = 0.5 * np.sum(w * r * r, dtype=np.float64), w * r
        return J, dJ * _PRIME_FROM_OUTPUT[output_activation](yhat)
    if head.code == _tables.SIGMOID_CROSS_ENTROPY:
        # -[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z
        softplus = np.maximum(z_out, 0) + np.log1p(np.exp(-np.abs(z_out)))
        return np.sum(w * (softplus - y * z_out), dtype=np.float64) / n, w * r / n
    if head.code == _tables.SOFTMAX_CROSS_ENTROPY:
        # -sum y log softmax(z) = sum y (lse(z) - z), lse around the row's maximum
        top = np.max(z_out, axis=1, keepdims=True)
        lse = top + np.log(np.sum(np.exp(z_out - top), axis=1, keepdims=True))
        return np.sum(w * y * (lse - z_out), dtype=np.float64) / n, w * r / n
    if head.code == _tables.POISSON:
        # half the deviance: yhat - y log(yhat) + y log(y) - y, with log(yhat) = z
        y_log_y = np.where(y > 0, y * np.log(np.where(y > 0, y, 1)), 0)
        deviance = yhat - y * z_out + y_log_y - y
        return np.sum(w * deviance, dtype=np.float64) / n, w * r / n
    raise ValueError(f"no reference for output head {head}")


def cost(weights, biases, X, y, activations, loss="half_sse", l2=0.0, sample_weight=None):
    """The cost ``J`` (float): data cost (rows weighted by ``sample_weight``) plus
    ``(l2 / 2) * sum(W**2)`` over weights."""
    a, z_out = _forward_all(weights, biases, X, activations)
    J, _ = head_cost_and_delta(a[-1], z_out, y, activations[-1], loss, sample_weight)
    return float(J + 0.5 * l2 * sum(np.sum(W * W, dtype=np.float64) for W in weights))


def cost_and_gradients(weights, biases, X, y, activations, loss="half_sse", l2=0.0,
                       data_scale=1.0, sample_weight=None):
    """``(J, weight_grads, bias_grads)`` for ``data_scale * cost + (l2/2) sum W**2``,
    rows weighted by ``sample_weight`` (n,) as in :func:`head_cost_and_delta`.

    ``bias_grads`` is ``None`` when ``biases`` is ``None``.
    """
    a, z_out = _forward_all(weights, biases, X, activations)
    J, delta = head_cost_and_delta(a[-1], z_out, y, activations[-1], loss, sample_weight)
    delta = delta * data_scale
    weight_grads = [None] * len(weights)
    bias_grads = None if biases is None else [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        weight_grads[l] = a[l].T @ delta + l2 * weights[l]
        if biases is not None:
            bias_grads[l] = delta.sum(axis=0)
        if l > 0:
            delta = (delta @ weights[l].T) * _PRIME_FROM_OUTPUT[activations[l - 1]](a[l])
    J = data_scale * J + 0.5 * l2 * sum(np.sum(W * W, dtype=np.float64) for W in weights)
    return float(J), weight_grads, bias_grads
