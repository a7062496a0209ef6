"""``numpy-plain``: the NumPy a competent user writes from the matrix form, with no
validation and nothing else per batch. The honest opponent of every speed figure,
beside :mod:`fastbp.reference` (the readable oracle of the tests).

An SGD epoch is a shuffled index, an ``X[idx]`` gather, ``1 / (1 + np.exp(-z))``,
``a * (1 - a)``, ``a.T @ delta`` and in-place ``W -= lr * g``.
"""

import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


#: name -> (f(z), f'(z) written from a = f(z)); identity's derivative is 1.
ACTIVATIONS = {
    "sigmoid": (_sigmoid, lambda a: a * (1 - a)),
    "tanh": (np.tanh, lambda a: 1 - a * a),
    "relu": (lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(a.dtype)),
    "identity": (lambda z: z, None),
}


class PlainNetwork:
    """Weights ``W[l]`` (n[l-1], n[l]) and biases, trained by plain NumPy loops."""

    def __init__(self, weights, biases, hidden="sigmoid", output="sigmoid", loss="half_sse"):
        self.W = [np.array(W) for W in weights]
        self.b = None if biases is None else [np.array(b) for b in biases]
        self.acts = [hidden] * (len(weights) - 1) + [output]
        self.loss = loss

    def _forward(self, X):
        a = [X]
        for l, W in enumerate(self.W):
            z = a[-1] @ W
            if self.b is not None:
                z += self.b[l]
            a.append(ACTIVATIONS[self.acts[l]][0](z))
        return a

    def _backward(self, a, y, scale):
        """Gradients of ``scale * loss`` for the activations ``a``."""
        delta = a[-1] - y
        if self.acts[-1] != "identity":
            delta *= ACTIVATIONS[self.acts[-1]][1](a[-1])
        delta *= scale
        gW, gb = [None] * len(self.W), [None] * len(self.W)
        for l in range(len(self.W) - 1, -1, -1):
            gW[l] = a[l].T @ delta
            gb[l] = delta.sum(axis=0)
            if l > 0:
                delta = (delta @ self.W[l].T) * ACTIVATIONS[self.acts[l - 1]][1](a[l])
        return gW, gb

    def cost_and_gradients(self, X, y):
        """``(J, dJ/dW, dJ/db)`` for the half-SSE cost ``0.5 * sum((y - yhat)**2)``."""
        a = self._forward(X)
        r = a[-1] - y
        return 0.5 * float(np.sum(r * r)), *self._backward(a, y, 1.0)

    def sgd_epoch(self, X, y, batch_size, learning_rate, rng):
        """One epoch: shuffled mini-batches, ``W -= lr * gradient of the batch mean``."""
        lr = X.dtype.type(learning_rate)
        order = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            idx = order[start : start + batch_size]
            a = self._forward(X[idx])
            # half_sse: 0.5 sum r^2 / m; mse: sum r^2 / m
            scale = X.dtype.type((1.0 if self.loss == "half_sse" else 2.0) / len(idx))
            gW, gb = self._backward(a, y[idx], scale)
            for l in range(len(self.W)):
                self.W[l] -= lr * gW[l]
                if self.b is not None:
                    self.b[l] -= lr * gb[l]
