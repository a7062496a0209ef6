"""The tables every layer is built from: activations, output heads (loss with
output activation) and optimizer update rules.

Each row gives a name, the integer code the compiled dispatch branches on, and
the properties that validation, the NumPy reference, the tests and the
benchmarks read. Built-in pieces: a row here, its compiled record (beside its
math in ``_activations.py``, ``_heads.py`` or ``_optimizers.py``; the dispatches
are generated from the records) and its NumPy twin in :mod:`fastbp.reference`.
:mod:`fastbp.kernels.extend` adds a piece to all three in one call. No Numba
here: the reference reads these tables too.
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
ELEMENTWISE = [name for name, a in ACTIVATIONS.items() if a.elementwise]


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
    #: what ``Network.score`` reports: "accuracy" or "r2"
    score: str
    #: the head's own name (a loss may have several heads)
    name: str


#: Every output head (a list: :mod:`fastbp.kernels.extend` appends).
HEADS = [
    Head(0, "half_sse", None, False, "any", "r2", "half_sse"),
    Head(1, "mse", None, True, "any", "r2", "mse"),
    Head(2, "cross_entropy", ("sigmoid",), True, "unit", "accuracy", "sigmoid_cross_entropy"),
    Head(3, "cross_entropy", ("softmax",), True, "distribution", "accuracy",
         "softmax_cross_entropy"),
    # half the Poisson deviance of yhat = exp(z), as scikit-learn's MLPRegressor
    Head(4, "poisson", ("exp",), True, "counts", "r2", "poisson"),
]
HALF_SSE, MSE, SIGMOID_CROSS_ENTROPY, SOFTMAX_CROSS_ENTROPY, POISSON = (h.code for h in HEADS)
LOSSES = list(dict.fromkeys(h.loss for h in HEADS))


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


class UpdateRule(NamedTuple):
    """An optimizer update rule: its code, the float64 hyperparameters it reads (in
    order; a step count among them is advanced by the rule) and the rows of
    parameter-shaped state it keeps."""

    code: int
    hyperparameters: tuple
    state: tuple


#: Optimizer update rule name -> its row (compiled in ``_optimizers.py``).
UPDATE_RULES = {
    "sgd": UpdateRule(0, ("learning_rate",), ()),
    "momentum": UpdateRule(1, ("learning_rate", "momentum"), ("velocity",)),
    "adam": UpdateRule(2, ("learning_rate", "beta1", "beta2", "eps", "steps"),
                       ("first_moment", "second_moment")),
    "nesterov": UpdateRule(3, ("learning_rate", "momentum"), ("velocity",)),
}
SGD_RULE, MOMENTUM_RULE, ADAM_RULE, NESTEROV_RULE = (r.code for r in UPDATE_RULES.values())


# -- growing the tables (fastbp.kernels.extend): in place, so every view sees it ---------


def add_activation(name, row):
    """Add ``row`` (its code replaced by a fresh one) as the activation ``name``;
    its code."""
    code = max(a.code for a in ACTIVATIONS.values()) + 1
    ACTIVATIONS[name] = row._replace(code=code)
    if row.elementwise:
        ELEMENTWISE.append(name)
    return code


def add_head(row):
    """Add ``row`` (its code replaced by a fresh one) to :data:`HEADS`; its code."""
    code = max(h.code for h in HEADS) + 1
    HEADS.append(row._replace(code=code))
    if row.loss not in LOSSES:
        LOSSES.append(row.loss)
    return code


def add_rule(name, row):
    """Add ``row`` (its code replaced by a fresh one) as the update rule ``name``;
    its code."""
    code = max(r.code for r in UPDATE_RULES.values()) + 1
    UPDATE_RULES[name] = row._replace(code=code)
    return code
