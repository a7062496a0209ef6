"""Mini-batch optimizers: ``fit``'s options made into an update rule's
hyperparameters and state.

An optimizer is made from ``fit``'s options, validates them, and holds the state
its rule carries from step to step (velocity, moments). Every engine steps with
the one compiled rule (:mod:`fastbp.kernels._optimizers`): the compiled epoch
through :attr:`Optimizer.rule` and the arrays ``Optimizer.hyper`` and
``Optimizer.state``, the others through :meth:`Optimizer.step`.
"""

import numpy as np

from .kernels import UPDATE_RULES, _optimizers
from .kernels import _validation as v


class Optimizer:
    """Base class: one rule, its hyperparameters and its state."""

    #: key of ``kernels.UPDATE_RULES``
    rule_name = None
    #: the ``fit`` options it takes, with their defaults
    defaults = {}

    def __init__(self, **options):
        self.options = {**self.defaults, **options}
        #: the float64 hyperparameters the compiled update reads (and, for a step
        #: count, advances), and the state rows ``(n_state, n_params)``: made by start
        self.hyper = self.state = None

    @property
    def rule(self):
        return UPDATE_RULES[self.rule_name].code

    def start(self, params):
        """Fresh state for the flat parameters ``params`` (at the start of ``fit``)."""
        row = UPDATE_RULES[self.rule_name]
        self.state = np.zeros((max(len(row.state), 1), params.size), params.dtype)
        values = self._hyperparameters()
        self.hyper = np.array([values[name] for name in row.hyperparameters], np.float64)

    def step(self, params, grad):
        """Step ``params`` in place from ``grad`` by the compiled rule (``grad``
        may be overwritten)."""
        _optimizers.step_all(np.int64(self.rule), params, grad, self.hyper, self.state)

    def _hyperparameters(self):
        """Hyperparameter name -> value, for the names of the rule's row."""
        raise NotImplementedError


class SGD(Optimizer):
    """``p -= learning_rate * g``, or with ``momentum > 0`` classical momentum:
    ``v = momentum v - learning_rate g``, ``p += v``; with ``nesterov=True``
    Nesterov's (scikit-learn's form): the same ``v``, then
    ``p += momentum v - learning_rate g``."""

    defaults = {"learning_rate": 0.1, "momentum": 0.0, "nesterov": False}

    def __init__(self, learning_rate=0.1, momentum=0.0, nesterov=False):
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False; got {nesterov!r}")
        super().__init__(
            learning_rate=v.real_number(learning_rate, "learning_rate", low=0.0, low_open=True),
            momentum=v.real_number(momentum, "momentum", low=0.0, high=1.0, high_open=True),
            nesterov=bool(nesterov),
        )
        if self.options["momentum"] == 0.0:
            self.rule_name = "sgd"  # either momentum rule with mu = 0
        else:
            self.rule_name = "nesterov" if self.options["nesterov"] else "momentum"

    def _hyperparameters(self):
        return {"learning_rate": self.options["learning_rate"],
                "momentum": self.options["momentum"]}


class Adam(Optimizer):
    """Adam with bias correction, step for step as ``torch.optim.Adam``
    (``weight_decay=0``; an L2 term stays in the cost)."""

    rule_name = "adam"
    defaults = {"learning_rate": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}

    def __init__(self, learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-8):
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"betas must be a pair of numbers in [0, 1); got {betas!r}")
        super().__init__(
            learning_rate=v.real_number(learning_rate, "learning_rate", low=0.0, low_open=True),
            betas=tuple(v.real_number(b, f"betas[{i}]", low=0.0, high=1.0, high_open=True)
                        for i, b in enumerate(betas)),
            eps=v.real_number(eps, "eps", low=0.0, low_open=True),
        )

    def _hyperparameters(self):
        o = self.options
        return {"learning_rate": o["learning_rate"], "beta1": o["betas"][0],
                "beta2": o["betas"][1], "eps": o["eps"], "steps": 0.0}


#: ``fit`` method -> optimizer class, for the mini-batch methods.
OPTIMIZERS = {"sgd": SGD, "gd": SGD, "adam": Adam}


def add_optimizer(rule_name, defaults):
    """``fit(method=rule_name)`` for a new update rule (:mod:`fastbp.kernels.extend`):
    its options are its hyperparameters (each a finite real number), with their
    ``defaults``; a step count among them starts at 0."""
    row = UPDATE_RULES[rule_name]
    missing = sorted(set(row.hyperparameters) - set(defaults) - {"steps"})
    if missing:
        raise ValueError(f"the update rule {rule_name!r} needs a default for {missing}")

    class Added(Optimizer):
        def __init__(self, **options):
            super().__init__(**{k: v.real_number(options.get(k, d), k)
                                for k, d in self.defaults.items()})

        def _hyperparameters(self):
            return {**self.options, "steps": 0.0}

    Added.rule_name, Added.defaults = rule_name, dict(defaults)
    Added.__name__ = Added.__qualname__ = rule_name.title().replace("_", "")
    OPTIMIZERS[rule_name] = Added
    return Added
