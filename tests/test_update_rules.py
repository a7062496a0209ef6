"""Every update rule of ``kernels.UPDATE_RULES``, compiled, against the NumPy twin
its optimizer (:mod:`fastbp.optimizers`) steps with: called directly, so that a
rule the passes special-case (plain sgd) is checked too, over whole and split
parameter ranges as the threaded passes split them."""

import numpy as np
import pytest
from conftest import DTYPES, assert_close
from fastbp.kernels import UPDATE_RULES, _optimizers

from fastbp.optimizers import OPTIMIZERS

#: an optimizer configuration per rule; a rule added without one fails below
CONFIGS = [
    ("sgd", {"learning_rate": 0.3}),
    ("sgd", {"learning_rate": 0.3, "momentum": 0.7}),
    ("sgd", {"learning_rate": 0.3, "momentum": 0.7, "nesterov": True}),
    ("adam", {"learning_rate": 0.01, "betas": (0.8, 0.95), "eps": 1e-3}),
]


def _optimizer(method, options, params):
    optimizer = OPTIMIZERS[method](**options)
    optimizer.start(params)
    return optimizer


def test_every_rule_has_a_configuration():
    rng = np.random.default_rng(0)
    params = rng.standard_normal(5)
    covered = {_optimizer(m, o, params).rule_name for m, o in CONFIGS}
    assert covered == set(UPDATE_RULES)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method, options", CONFIGS)
@pytest.mark.parametrize("split", [None, 4])
def test_compiled_rule_equals_its_numpy_twin(method, options, dtype, split):
    rng = np.random.default_rng(1)
    n = 11  # odd: no vector width divides it
    start = rng.standard_normal(n).astype(dtype)
    compiled = _optimizer(method, options, start)
    twin = _optimizer(method, options, start)
    p_compiled, p_twin = start.copy(), start.copy()
    for _ in range(3):  # the state carries from step to step
        grad = rng.standard_normal(n).astype(dtype)
        _optimizers.begin_step(compiled.rule, compiled.hyper)
        bounds = [(0, n)] if split is None else [(0, split), (split, n)]
        for lo, hi in bounds:
            _optimizers.apply_update(compiled.rule, p_compiled, grad, compiled.hyper,
                                     compiled.state, lo, hi)
        twin.step(p_twin, grad.copy())
        assert_close(p_compiled, p_twin, dtype)
        assert_close(compiled.state, twin.state, dtype)
        np.testing.assert_array_equal(compiled.hyper, twin.hyper)
    assert not np.array_equal(p_compiled, start)


def test_an_unknown_rule_code_is_refused():
    params = np.zeros(3)
    with pytest.raises(ValueError, match="unknown update rule"):
        _optimizers.apply_update(max(UPDATE_RULES.values()) + 1, params, params.copy(),
                                 np.zeros(5), np.zeros((1, 3)), 0, 3)
