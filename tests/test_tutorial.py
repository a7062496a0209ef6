"""The tutorial drop-in gives the tutorial's numbers."""

import numpy as np
import pytest
from test_network import SEED_COST, SEED_GRADIENT

from fastbp import tutorial
from fastbp.datasets import seed_example


def _tutorial_network(Lambda=0):
    np.random.seed(0)  # the tutorial seeds NumPy's legacy generator  # noqa: NPY002
    return tutorial.Neural_Network(Lambda)


def _notebook(N, X, y, Lambda):
    """The notebook's formulas in plain NumPy, for comparison."""
    z2 = X @ N.W1
    a2 = 1 / (1 + np.exp(-z2))
    z3 = a2 @ N.W2
    yhat = 1 / (1 + np.exp(-z3))

    def prime(z):
        return np.exp(-z) / (1 + np.exp(-z)) ** 2

    n = X.shape[0] if Lambda > 0 else 1
    J = 0.5 * np.sum((y - yhat) ** 2) / n + Lambda / 2 * (np.sum(N.W1**2) + np.sum(N.W2**2))
    delta3 = -(y - yhat) * prime(z3)
    dJdW2 = a2.T @ delta3 / n + Lambda * N.W2
    delta2 = (delta3 @ N.W2.T) * prime(z2)
    dJdW1 = X.T @ delta2 / n + Lambda * N.W1
    return (z2, a2, z3, yhat), J, dJdW1, dJdW2


def test_seed_numbers_and_attributes():
    X, y = seed_example()
    N = _tutorial_network()
    J = N.costFunction(X, y)
    assert isinstance(J, float) and J == pytest.approx(SEED_COST, rel=1e-13)
    np.testing.assert_allclose(N.computeGradients(X, y), SEED_GRADIENT, rtol=1e-12)
    (z2, a2, z3, yhat), _, dJdW1, dJdW2 = _notebook(N, X, y, 0)
    for name, expected in [("z2", z2), ("a2", a2), ("z3", z3), ("yHat", yhat)]:
        np.testing.assert_allclose(getattr(N, name), expected, rtol=1e-14, err_msg=name)
    g1, g2 = N.costFunctionPrime(X, y)
    np.testing.assert_allclose(g1, dJdW1, rtol=1e-12)
    np.testing.assert_allclose(g2, dJdW2, rtol=1e-12)
    assert N.inputLayerSize == 2 and N.hiddenLayerSize == 3 and N.outputLayerSize == 1


def test_regularised_formulas():
    X, y = seed_example()
    N = _tutorial_network(Lambda=1e-3)
    _, J, dJdW1, dJdW2 = _notebook(N, X, y, 1e-3)
    assert N.costFunction(X, y) == pytest.approx(J, rel=1e-13)
    g1, g2 = N.costFunctionPrime(X, y)
    np.testing.assert_allclose(g1, dJdW1, rtol=1e-12)
    np.testing.assert_allclose(g2, dJdW2, rtol=1e-12)


def test_weights_assignment_and_params():
    N = _tutorial_network()
    W1 = N.W1.copy()
    N.W1 = N.W1 + 1.0
    np.testing.assert_array_equal(N.W1, W1 + 1.0)
    p = N.getParams()
    np.testing.assert_array_equal(p, np.concatenate([N.W1.ravel(), N.W2.ravel()]))
    N.setParams(p * 2)
    np.testing.assert_array_equal(N.W2, 2 * p[6:].reshape(3, 1))
    assert N.sigmoid(0) == 0.5 and N.sigmoidPrime(0.0) == 0.25
    np.testing.assert_allclose(N.sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])


@pytest.mark.parametrize("Lambda", [0, 1e-4])
def test_numerical_gradient_matches(Lambda):
    X, y = seed_example()
    N = _tutorial_network(Lambda)
    g = N.computeGradients(X, y)
    num = tutorial.computeNumericalGradient(N, X, y)
    assert np.linalg.norm(g - num) / np.linalg.norm(g + num) < 1e-8


def test_trainer_reaches_the_targets():
    X, y = seed_example()
    N = _tutorial_network()
    T = tutorial.trainer(N)
    T.train(X, y)
    np.testing.assert_allclose(N.forward(X), y, atol=0.01)
    res = T.optimizationResults
    assert res.success and len(T.J) == res.nit and T.J[-1] < 1e-6
    assert T.J[0] > T.J[-1]


def test_trainer_with_test_data_records_test_cost():
    X, y = seed_example()
    N = _tutorial_network(Lambda=1e-4)
    T = tutorial.trainer(N)
    T.train(X[:2], y[:2], X[2:], y[2:])
    assert len(T.testJ) == len(T.J) > 0
