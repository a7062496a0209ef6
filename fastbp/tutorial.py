"""Drop-in names for code written against the "Neural Networks Demystified" class.

``from fastbp.tutorial import Neural_Network, computeNumericalGradient, trainer``
replaces the tutorial's definitions: same attributes, same methods, same numbers,
computed by the compiled kernels. Weights come from ``np.random.randn`` as in the
tutorial, so ``np.random.seed(0)`` reproduces its weights.

With ``Lambda = 0`` the cost and gradient are the unregularised formulas,
``J = 0.5 * sum((y - yHat)**2)``; with ``Lambda > 0`` the regularised ones,
``J = 0.5 * sum((y - yHat)**2) / n + (Lambda / 2) * (sum(W1**2) + sum(W2**2))``
with the squares summed over every weight, and gradients ``... / n + Lambda * W``.
"""

import numpy as np

from . import kernels
from .kernels import _validation as v
from .network import Network

__all__ = ["Neural_Network", "computeNumericalGradient", "trainer"]


class Neural_Network:
    """A 2-3-1 sigmoid network without biases, as in the tutorial."""

    def __init__(self, Lambda=0):
        self.inputLayerSize = 2
        self.outputLayerSize = 1
        self.hiddenLayerSize = 3
        self._net = Network(
            [self.inputLayerSize, self.hiddenLayerSize, self.outputLayerSize],
            bias=False, l2=Lambda,
        )
        self.W1 = np.random.randn(self.inputLayerSize, self.hiddenLayerSize)
        self.W2 = np.random.randn(self.hiddenLayerSize, self.outputLayerSize)

    # W1, W2 and Lambda live in the compiled network; assigning copies in.
    W1 = property(lambda self: self._net.weights[0],
                  lambda self, W: setattr(self._net, "weights", [W, self._net.weights[1]]))
    W2 = property(lambda self: self._net.weights[1],
                  lambda self, W: setattr(self._net, "weights", [self._net.weights[0], W]))

    @property
    def Lambda(self):
        return self._net.l2

    @Lambda.setter
    def Lambda(self, value):
        self._net.l2 = Network([1, 1], l2=value).l2  # validated like Network(l2=...)

    def _scale(self, X):
        return 1.0 / np.shape(X)[0] if self.Lambda > 0 else 1.0

    def forward(self, X):
        """Propagate ``X`` (n, 2); sets ``z2``, ``a2``, ``z3``, ``yHat``; returns ``yHat``."""
        X = v.as_array(X, "X", dtype=np.float64, finite=True)
        if X.shape[1] != self.inputLayerSize:
            raise ValueError(f"X must have {self.inputLayerSize} columns; got shape {X.shape}")
        self.z2 = X @ self.W1
        self.a2 = kernels.sigmoid(self.z2)
        self.z3 = self.a2 @ self.W2
        self.yHat = kernels.sigmoid(self.z3)
        return self.yHat

    def sigmoid(self, z):
        z = np.asarray(z, dtype=np.float64)
        return kernels.sigmoid(z.reshape(-1)).reshape(z.shape)[()]

    def sigmoidPrime(self, z):
        z = np.asarray(z, dtype=np.float64)
        return kernels.sigmoid_prime(z.reshape(-1)).reshape(z.shape)[()]

    def _cost_and_flat_gradient(self, X, y):
        return self._net.objective(X, y, self._scale(X)).cost_and_gradient()

    def costFunction(self, X, y):
        """The cost as a Python float (also sets the forward attributes)."""
        self.forward(X)
        return self._cost_and_flat_gradient(X, y)[0]

    def costFunctionPrime(self, X, y):
        """``(dJdW1, dJdW2)``."""
        self.forward(X)
        grad = self._cost_and_flat_gradient(X, y)[1].copy()
        n1 = self.W1.size
        return grad[:n1].reshape(self.W1.shape), grad[n1:].reshape(self.W2.shape)

    def getParams(self):
        """``W1.ravel()`` then ``W2.ravel()``."""
        return self._net.get_params()

    def setParams(self, params):
        self._net.set_params(params)

    def computeGradients(self, X, y):
        """The gradient as one vector, ordered like :meth:`getParams`."""
        return self._cost_and_flat_gradient(X, y)[1].copy()


def computeNumericalGradient(N, X, y):
    """Central differences (``e = 1e-4``) of ``N.costFunction`` over ``N.getParams()``."""
    params_initial = N.getParams()
    numgrad = np.zeros(params_initial.shape)
    perturb = np.zeros(params_initial.shape)
    e = 1e-4
    for p in range(len(params_initial)):
        perturb[p] = e
        N.setParams(params_initial + perturb)
        loss2 = float(N.costFunction(X, y))
        N.setParams(params_initial - perturb)
        loss1 = float(N.costFunction(X, y))
        numgrad[p] = (loss2 - loss1) / (2 * e)
        perturb[p] = 0
    N.setParams(params_initial)
    return numgrad


class trainer:
    """BFGS through ``scipy.optimize.minimize``, recording the cost per iteration."""

    def __init__(self, N):
        self.N = N

    def callbackF(self, params):
        self.N.setParams(params)
        self.J.append(self.N.costFunction(self.X, self.y))
        if self.testX is not None:
            self.testJ.append(self.N.costFunction(self.testX, self.testY))

    def costFunctionWrapper(self, params, X, y):
        self.N.setParams(params)
        if isinstance(self.N, Neural_Network):  # one fused pass for cost and gradient
            cost, grad = self.N._cost_and_flat_gradient(X, y)
            return cost, grad.copy()
        return self.N.costFunction(X, y), self.N.computeGradients(X, y)

    def train(self, trainX, trainY, testX=None, testY=None):
        """``train(X, y)`` or ``train(trainX, trainY, testX, testY)`` (fills ``testJ``)."""
        self.X, self.y = trainX, trainY
        self.testX, self.testY = testX, testY
        self.J, self.testJ = [], []
        import scipy.optimize  # imported on first use, as in fastbp.training

        params0 = self.N.getParams()
        options = {"maxiter": 200, "disp": False}
        _res = scipy.optimize.minimize(
            self.costFunctionWrapper, params0, jac=True, method="BFGS",
            args=(trainX, trainY), options=options, callback=self.callbackF,
        )
        self.N.setParams(_res.x)
        self.optimizationResults = _res
