"""The NumPy reference's gradients agree with central finite differences."""

import itertools

import numpy as np
import pytest

from fastbp import reference

CASES = list(itertools.product(
    ["sigmoid", "tanh", "relu", "identity"], ["half_sse", "mse", "cross_entropy"],
    [True, False], [0.0, 0.3],
))


def _random_network(rng, sizes, bias):
    weights = [rng.standard_normal((a, b)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [0.1 * rng.standard_normal(b) for b in sizes[1:]] if bias else None
    return weights, biases


@pytest.mark.parametrize("activation,loss,bias,l2", CASES)
def test_reference_gradient_matches_central_differences(activation, loss, bias, l2):
    rng = np.random.default_rng(abs(hash((activation, loss, bias, l2))) % 2**32)
    sizes = [3, 5, 4, 2]
    acts = [activation, activation, "sigmoid" if loss == "cross_entropy" else activation]
    weights, biases = _random_network(rng, sizes, bias)
    X = rng.standard_normal((6, sizes[0]))
    y = rng.random((6, sizes[-1]))
    _, gW, gb = reference.cost_and_gradients(weights, biases, X, y, acts, loss, l2)
    params = weights + (biases or [])
    grads = gW + (gb or [])
    eps = 1e-6
    for p, g in zip(params, grads):
        numerical = np.empty_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            plus = reference.cost(weights, biases, X, y, acts, loss, l2)
            p[idx] = old - eps
            minus = reference.cost(weights, biases, X, y, acts, loss, l2)
            p[idx] = old
            numerical[idx] = (plus - minus) / (2 * eps)
        err = np.linalg.norm(g - numerical) / max(np.linalg.norm(g + numerical), 1e-300)
        assert err < 1e-7, (err, activation, loss)
