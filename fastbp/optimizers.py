"""Mini-batch optimizers: hyperparameters, state, and a NumPy twin of each
compiled update (:mod:`fastbp.kernels._optimizers`).

An optimizer is made from ``fit``'s options, validates them, and holds the state
its rule carries from step to step (velocity, moments). Both gradient engines
step with it: the compiled epoch through :attr:`Optimizer.rule` and the arrays
``Optimizer.hyper`` and ``Optimizer.state``, the reference one through
:meth:`Optimizer.step`. Adding one: a class here, registered in
:data:`OPTIMIZERS`, with its compiled update in ``kernels/_optimizers.py``.
"""

import numpy as np

from .kernels import UPDATE_RULES
from .kernels import _validation as v


class Optimizer:
    """Base class: one rule, its hyperparameters and its state."""

    #: key of ``kernels.UPDATE_RULES``
    rule_name = None
    #: the ``fit`` options it takes, with their defaults
    defaults = {}
    #: rows of parameter-shaped state it keeps
    n_state = 0

    def __init__(self, **options):
        self.options = {**self.defaults, **options}
        #: the float64 hyperparameters the compiled update reads (and, for a step
        #: count, advances), and the state rows ``(n_state, n_params)``: made by start
        self.hyper = self.state = None

    @property
    def rule(self):
        return UPDATE_RULES[self.rule_name]

    def start(self, params):
        """Fresh state for the flat parameters ``params`` (at the start of ``fit``)."""
        self.state = np.zeros((max(self.n_state, 1), params.size), params.dtype)
        self.hyper = np.array(self._hyperparameters(), np.float64)

    def step(self, params, grad):
        """Step ``params`` in place from ``grad`` in NumPy, as the compiled rule does."""
        raise NotImplementedError

    def _hyperparameters(self):
        raise NotImplementedError


class SGD(Optimizer):
    """``p -= learning_rate * g``, or with ``momentum > 0`` classical momentum:
    ``v = momentum v - learning_rate g``, ``p += v``; with ``nesterov=True``
    Nesterov's (scikit-learn's form): the same ``v``, then
    ``p += momentum v - learning_rate g``."""

    defaults = {"learning_rate": 0.1, "momentum": 0.0, "nesterov": False}
    n_state = 1

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
        return [self.options["learning_rate"], self.options["momentum"]]

    def step(self, params, grad):
        lr, mu = (params.dtype.type(x) for x in self.hyper[:2])
        grad *= lr  # in place: the buffer is rewritten by the next batch
        if self.rule_name == "sgd":
            params -= grad
            return
        velocity = self.state[0]
        velocity *= mu
        velocity -= grad
        if self.rule_name == "nesterov":
            params += mu * velocity - grad
        else:
            params += velocity


class Adam(Optimizer):
    """Adam with bias correction, step for step as ``torch.optim.Adam``
    (``weight_decay=0``; an L2 term stays in the cost)."""

    rule_name = "adam"
    defaults = {"learning_rate": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}
    n_state = 2

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
        return [o["learning_rate"], *o["betas"], o["eps"], 0.0]  # last: steps taken

    def step(self, params, grad):
        self.hyper[4] += 1.0
        lr, beta1, beta2, eps, t = self.hyper
        dt = params.dtype.type
        step_size = dt(lr / (1.0 - beta1**t))
        root_correction = dt(np.sqrt(1.0 - beta2**t))
        m, s = self.state
        m += dt(1.0 - beta1) * (grad - m)
        s *= dt(beta2)
        s += dt(1.0 - beta2) * grad * grad
        params -= step_size * m / (np.sqrt(s) / root_correction + dt(eps))


#: ``fit`` method -> optimizer class, for the mini-batch methods.
OPTIMIZERS = {"sgd": SGD, "gd": SGD, "adam": Adam}
