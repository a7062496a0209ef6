"""The NumPy reference's gradients agree with central finite differences."""

import itertools

import numpy as np
import pytest
from conftest import NETWORK_KINDS, random_targets

from fastbp import reference

CASES = [(*kind, bias, l2) for kind, bias, l2
         in itertools.product(NETWORK_KINDS, [True, False], [0.0, 0.3])]


def _random_network(rng, sizes, bias):
    weights = [rng.standard_normal((a, b)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [0.1 * rng.standard_normal(b) for b in sizes[1:]] if bias else None
    return weights, biases


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", CASES)
def test_reference_gradient_matches_central_differences(case, seed):
    activation, output, loss, bias, l2 = case
    rng = np.random.default_rng([CASES.index(case), seed])
    sizes = [3, 5, 4, 3]
    acts = [activation, activation, output]
    weights, biases = _random_network(rng, sizes, bias)
    X = rng.standard_normal((6, sizes[0]))
    y = random_targets(rng, 6, sizes[-1], output, loss)
    _, gW, gb = reference.cost_and_gradients(weights, biases, X, y, acts, loss, l2)
    params = weights + (biases or [])
    analytic = np.concatenate([g.ravel() for g in gW + (gb or [])])
    eps = 1e-6
    numerical = []
    for p in params:
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            plus = reference.cost(weights, biases, X, y, acts, loss, l2)
            p[idx] = old - eps
            minus = reference.cost(weights, biases, X, y, acts, loss, l2)
            p[idx] = old
            numerical.append((plus - minus) / (2 * eps))
    numerical = np.array(numerical)
    # A dead ReLU network has a zero gradient: then the differences must vanish too.
    scale = max(np.linalg.norm(analytic + numerical), 1e-3)
    err = np.linalg.norm(analytic - numerical) / scale
    assert err < 1e-7, (err, CASES[case])
