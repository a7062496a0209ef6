"""The tables every layer is built from: activations, output heads (loss with
output activation) and optimizer update rules.

Each row gives a name, the integer code the compiled dispatch branches on, and
the properties that validation, the NumPy reference, the tests and the
benchmarks read. Adding one means: a row here, its compiled branches (unknown
codes raise in every dispatch) and its NumPy twin in :mod:`fastbp.reference`.
"""

from typing import NamedTuple

import numpy as np


class Activation(NamedTuple):
    code: int
    #: the values it can output: targets outside can never be fitted
    output_range: tuple
    #: a hidden layer may use it: applied element by element, with a derivative
    #: kernel. Softmax (it normalises each row) and exp (the Poisson head's
    #: output) are output activations only: their heads give ``dJ/dz`` directly.
    elementwise: bool = True


#: Activation name -> properties. Only element-wise ones may be hidden activations.
ACTIVATIONS = {
    "sigmoid": Activation(0, (0.0, 1.0)),
    "tanh": Activation(1, (-1.0, 1.0)),
    "relu": Activation(2, (0.0, np.inf)),
    "identity": Activation(3, (-np.inf, np.inf)),
    "softmax": Activation(4, (0.0, 1.0), elementwise=False),
    "exp": Activation(5, (0.0, np.inf), elementwise=False),
}
SIGMOID, TANH, RELU, IDENTITY, SOFTMAX, EXP = (ACTIVATIONS[name].code for name in ACTIVATIONS)
#: The activations a hidden layer (and the element-wise kernels) may use.
ELEMENTWISE = tuple(name for name, a in ACTIVATIONS.items() if a.elementwise)


class Head(NamedTuple):
    """An output head: a loss with the output activation(s) it is defined for.
    The compiled head code gives the data cost and ``dJ/dz[L]`` directly."""

    code: int
    loss: str
    #: the output activations it takes; ``None``: any element-wise one
    outputs: tuple | None
    #: the data cost is a mean over rows (else a sum over them)
    mean: bool
    #: what the targets must be: "any" real, "unit" (each in [0, 1]),
    #: "distribution" (each row non-negative, summing to 1) or "counts" (each >= 0)
    targets: str


HEADS = (
    Head(0, "half_sse", None, mean=False, targets="any"),
    Head(1, "mse", None, mean=True, targets="any"),
    Head(2, "cross_entropy", ("sigmoid",), mean=True, targets="unit"),
    Head(3, "cross_entropy", ("softmax",), mean=True, targets="distribution"),
    # half the Poisson deviance of yhat = exp(z), as scikit-learn's MLPRegressor
    Head(4, "poisson", ("exp",), mean=True, targets="counts"),
)
HALF_SSE, MSE, SIGMOID_CROSS_ENTROPY, SOFTMAX_CROSS_ENTROPY, POISSON = (h.code for h in HEADS)
LOSSES = tuple(dict.fromkeys(h.loss for h in HEADS))


def head(output_activation, loss):
    """The :class:`Head` of ``loss`` with ``output_activation``; ``ValueError`` for a
    pair no head defines (the names themselves are validated by the caller)."""
    for h in HEADS:
        if h.loss == loss and (output_activation in h.outputs if h.outputs
                               else ACTIVATIONS[output_activation].elementwise):
            return h
    allowed = sorted({o for h in HEADS if h.loss == loss for o in (h.outputs or ELEMENTWISE)})
    raise ValueError(f"loss={loss!r} needs output_activation in {allowed}; "
                     f"got {output_activation!r}")


#: Optimizer update rule name -> code of its compiled update (``_optimizers.py``).
UPDATE_RULES = {"sgd": 0, "momentum": 1, "adam": 2, "nesterov": 3}
SGD_RULE, MOMENTUM_RULE, ADAM_RULE, NESTEROV_RULE = UPDATE_RULES.values()
