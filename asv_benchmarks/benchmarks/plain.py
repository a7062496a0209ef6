"""``numpy-plain``: the NumPy a competent user writes from the matrix form, with no
validation and nothing else per batch. The honest opponent of every speed figure,
beside :mod:`fastbp.reference` (the readable oracle of the tests).

An SGD epoch is a shuffled index, an ``X[idx]`` gather, ``1 / (1 + np.exp(-z))``,
``a * (1 - a)``, ``a.T @ delta`` and in-place ``W -= lr * g``. An Adam epoch takes
the same batches and steps each array as ``torch.optim.Adam`` does, with the
moments ``m``, ``v`` in arrays of its own, updated in place; a softmax output is
``z - z.max(1, keepdims=True)``, ``exp`` and a division by the row sums, and its
cross-entropy delta ``(p - y) / m``. An activation added to fastbp's tables
(:mod:`fastbp.kernels.extend`) runs on its own NumPy twin, the ``f`` and ``f'``
its author wrote.
"""

import math

import numpy as np

from fastbp import reference


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z):
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


#: name -> (f(z), f'(z) written from a = f(z)); identity's derivative is 1, and
#: softmax (with the cross-entropy) needs none: its delta is ``p - y``.
ACTIVATIONS = {
    "sigmoid": (_sigmoid, lambda a: a * (1 - a)),
    "tanh": (np.tanh, lambda a: 1 - a * a),
    "relu": (lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(a.dtype)),
    "identity": (lambda z: z, None),
    "softmax": (_softmax, None),
}


def _activation(name):
    """``(f, f' from a, f' from z)``: the form written above, else the twin's."""
    if name in ACTIVATIONS:
        return (*ACTIVATIONS[name], None)
    f, prime = reference.ACTIVATIONS[name]
    return f, None, prime

#: loss -> factor of the gradient of the batch mean, over the batch size: half_sse
#: 0.5 sum r^2 / m, mse sum r^2 / m, cross_entropy -sum y log p / m.
BATCH_SCALE = {"half_sse": 1.0, "mse": 2.0, "cross_entropy": 1.0}


class PlainNetwork:
    """Weights ``W[l]`` (n[l-1], n[l]) and biases, trained by plain NumPy loops."""

    def __init__(self, weights, biases, hidden="sigmoid", output="sigmoid", loss="half_sse"):
        self.W = [np.array(W) for W in weights]
        self.b = None if biases is None else [np.array(b) for b in biases]
        self.acts = [hidden] * (len(weights) - 1) + [output]
        self.loss = loss
        self.adam_state = None  # [steps taken, first moments, second moments, scratch]

    def _forward(self, X):
        a, self._z = [X], []
        for l, W in enumerate(self.W):
            z = a[-1] @ W
            if self.b is not None:
                z += self.b[l]
            f, from_a, _ = _activation(self.acts[l])
            # an f' written only in terms of z needs z after f: kept, not overwritten
            self._z.append(None if from_a or self.acts[l] in ACTIVATIONS else z.copy())
            a.append(f(z))
        return a

    def _prime(self, l, a):
        """f'(z) of layer ``l`` (0-based) from its activations ``a``."""
        _, from_a, from_z = _activation(self.acts[l])
        if from_a is None and from_z is None:
            return 1  # identity
        return from_a(a) if from_a else from_z(self._z[l])

    def _backward(self, a, y, scale):
        """Gradients of ``scale * loss`` for the activations ``a``."""
        delta = a[-1] - y
        if self.acts[-1] != "identity" and self.loss != "cross_entropy":
            delta *= self._prime(len(self.W) - 1, a[-1])
        delta *= scale
        gW, gb = [None] * len(self.W), [None] * len(self.W)
        for l in range(len(self.W) - 1, -1, -1):
            gW[l] = a[l].T @ delta
            gb[l] = delta.sum(axis=0)
            if l > 0:
                delta = (delta @ self.W[l].T) * self._prime(l - 1, a[l])
        return gW, gb

    def cost_and_gradients(self, X, y):
        """``(J, dJ/dW, dJ/db)`` for the half-SSE cost ``0.5 * sum((y - yhat)**2)``,
        or with ``loss="cross_entropy"`` (softmax output) ``-mean(sum(y log p, 1))``."""
        a = self._forward(X)
        if self.loss == "cross_entropy":
            J = -float(np.sum(y * np.log(a[-1]))) / len(X)
            return J, *self._backward(a, y, X.dtype.type(1.0 / len(X)))
        r = a[-1] - y
        return 0.5 * float(np.sum(r * r)), *self._backward(a, y, 1.0)

    def sgd_epoch(self, X, y, batch_size, learning_rate, rng):
        """One epoch: shuffled mini-batches, ``W -= lr * gradient of the batch mean``."""
        lr = X.dtype.type(learning_rate)
        order = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            idx = order[start : start + batch_size]
            a = self._forward(X[idx])
            scale = X.dtype.type(BATCH_SCALE[self.loss] / len(idx))
            gW, gb = self._backward(a, y[idx], scale)
            for l in range(len(self.W)):
                self.W[l] -= lr * gW[l]
                if self.b is not None:
                    self.b[l] -= lr * gb[l]

    def adam_epoch(self, X, y, batch_size, learning_rate, rng, betas=(0.9, 0.999), eps=1e-8):
        """One epoch of shuffled mini-batches, each array stepped by Adam as
        ``torch.optim.Adam`` steps it (no weight decay); the moments and the step
        count carry over to the next epoch. The step allocates nothing: it works in
        place, in the batch's own gradient and a scratch array per parameter."""
        dt = X.dtype.type
        params = self.W + (self.b or [])
        if self.adam_state is None:
            self.adam_state = [0] + [[np.zeros_like(p) for p in params] for _ in range(3)]
        beta1, beta2 = betas
        keep1, keep2, b2, eps = dt(1.0 - beta1), dt(1.0 - beta2), dt(beta2), dt(eps)
        _, ms, vs, scratch = self.adam_state
        order = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            idx = order[start : start + batch_size]
            a = self._forward(X[idx])
            gW, gb = self._backward(a, y[idx], dt(BATCH_SCALE[self.loss] / len(idx)))
            self.adam_state[0] += 1
            t = self.adam_state[0]
            step_size = dt(learning_rate / (1.0 - beta1**t))
            root_correction = dt(math.sqrt(1.0 - beta2**t))
            for p, g, m, v, s in zip(params, gW + (gb if self.b else []), ms, vs, scratch):
                # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                np.multiply(g, keep2, out=s)
                s *= g
                v *= b2
                v += s
                # exp_avg.lerp_(grad, 1 - beta1); then g is free for the denominator
                g -= m
                g *= keep1
                m += g
                # denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                np.sqrt(v, out=g)
                g /= root_correction
                g += eps
                # param.addcdiv_(exp_avg, denom, value=-step_size)
                np.multiply(m, step_size, out=s)
                s /= g
                p -= s
