"""A pytest plugin that adds one activation, one output head and one update rule
through :mod:`fastbp.kernels.extend`, each in one place, before the tests are
collected; then it keeps only the tests whose parameters name one of them.

``tests/test_extend.py`` runs the table-driven test files under it: every test
that enumerates the tables must pick the new pieces up with no code of its own.
``FASTBP_EXTRA_PIECES_REPORT`` names a JSON file that receives, per piece, the
tests it selected.
"""

import json
import os

import numpy as np
from fastbp.kernels import extend
from fastbp.kernels.extend import kernel

# -- softsign: an element-wise activation ----------------------------------------------
# (arithmetic only, so that its loops vectorise as the table-driven IR tests demand;
# libm's log1p and exp, as a softplus would call them, do not)


@kernel
def _softsign(x, one):
    """``x / (1 + |x|)``."""
    return x / (one + abs(x))


@kernel
def _softsign_prime(z, one):
    d = one + abs(z)
    return one / (d * d)


@kernel
def _softsign_prime_from_output(a, one):
    """``1 / (1 + |z|)^2 = (1 - |a|)^2`` for ``a = softsign(z)``."""
    d = one - abs(a)
    return d * d


def _reference_softsign(z):
    return z / (1 + np.abs(z))


def _reference_softsign_prime(z):
    return 1 / (1 + np.abs(z)) ** 2


# -- the Poisson negative log-likelihood (without its constant) on an exp output ------------


@kernel
def _poisson_nll(a, z, y):
    return a - y * z


# -- RMSprop ----------------------------------------------------------------------------------


@kernel
def _rmsprop_prepare(hyper, params):
    dt = params.dtype.type
    return dt(hyper[0]), dt(hyper[1]), dt(1.0 - hyper[1]), dt(hyper[2])


@kernel
def _rmsprop_step(p, g, s, c):
    lr, rho, keep, eps = c
    s = rho * s + keep * g * g
    return p - lr * g / (np.sqrt(s) + eps), s


def _reference_rmsprop(params, grad, hyper, state):
    dt = params.dtype.type
    s = state["mean_square"]
    s[...] = dt(hyper["rho"]) * s + dt(1.0 - hyper["rho"]) * grad * grad
    params -= dt(hyper["learning_rate"]) * grad / (np.sqrt(s) + dt(hyper["eps"]))


# Added when the plugin is imported: ``-p`` plugins load before the conftest,
# whose table-driven lists (NETWORK_KINDS) must see the new rows.
PIECES = ("softsign", "poisson_nll", "rmsprop")
if True:
    extend.activation("softsign", output_range=(-1.0, 1.0), f=_softsign,
                      prime=_softsign_prime, prime_from_output=_softsign_prime_from_output,
                      reference=(_reference_softsign, _reference_softsign_prime))
    extend.head("poisson_nll", loss="poisson_nll", output="exp", entry_cost=_poisson_nll,
                targets="counts", reference=lambda yhat, z, y: yhat - y * z)
    extend.update_rule("rmsprop", hyperparameters=("learning_rate", "rho", "eps"),
                       state=("mean_square",), prepare=_rmsprop_prepare, step=_rmsprop_step,
                       defaults={"learning_rate": 0.01, "rho": 0.9, "eps": 1e-8},
                       reference=_reference_rmsprop)


def _names(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _names(item)


def pytest_collection_modifyitems(config, items):
    selected = {piece: [] for piece in PIECES}
    kept = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        named = set(_names(list(params.values())))
        hits = [piece for piece in PIECES if piece in named]
        for piece in hits:
            selected[piece].append(item.nodeid)
        if hits:
            kept.append(item)
    items[:] = kept
    report = os.environ.get("FASTBP_EXTRA_PIECES_REPORT")
    if report:
        with open(report, "w") as f:
            json.dump(selected, f)
