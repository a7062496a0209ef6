"""Every update rule of ``kernels.UPDATE_RULES``, compiled, against its reference
(:data:`fastbp.reference.UPDATE_RULES`): called directly, so that a rule the
passes special-case (plain sgd) is checked too, over whole and split parameter
ranges as the threaded passes split them, and through :meth:`Optimizer.step`."""

import numpy as np
import pytest
from conftest import DTYPES, RULE_CASES, assert_close
from fastbp.kernels import UPDATE_RULES, _optimizers

import fastbp
from fastbp import reference
from fastbp.optimizers import OPTIMIZERS

#: an optimizer configuration per rule (an optimizer with a rule of its own runs
#: with its defaults); a rule without one fails below
BUILT_IN = [
    ("sgd", {"learning_rate": 0.3}),
    ("sgd", {"learning_rate": 0.3, "momentum": 0.7}),
    ("sgd", {"learning_rate": 0.3, "momentum": 0.7, "nesterov": True}),
    ("adam", {"learning_rate": 0.01, "betas": (0.8, 0.95), "eps": 1e-3}),
]
CONFIGS = BUILT_IN + [case for case in RULE_CASES if case[0] not in ("sgd", "adam")]


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
def test_compiled_rule_equals_its_reference(method, options, dtype, split):
    rng = np.random.default_rng(1)
    n = 11  # odd: no vector width divides it
    start = rng.standard_normal(n).astype(dtype)
    compiled = _optimizer(method, options, start)
    stepped = _optimizer(method, options, start)
    row = UPDATE_RULES[compiled.rule_name]
    hyper = dict(zip(row.hyperparameters, compiled.hyper.tolist()))
    state = {name: np.zeros(n, dtype) for name in row.state}
    p_compiled, p_stepped, p_reference = start.copy(), start.copy(), start.copy()
    for _ in range(3):  # the state carries from step to step
        grad = rng.standard_normal(n).astype(dtype)
        _optimizers.begin_step(compiled.rule, compiled.hyper)
        bounds = [(0, n)] if split is None else [(0, split), (split, n)]
        for lo, hi in bounds:
            _optimizers.apply_update(compiled.rule, p_compiled, grad, compiled.hyper,
                                     compiled.state, lo, hi)
        stepped.step(p_stepped, grad.copy())
        if "steps" in hyper:
            hyper["steps"] += 1
        reference.UPDATE_RULES[compiled.rule_name](p_reference, grad, hyper, state)
        assert_close(p_compiled, p_reference, dtype)
        for i, name in enumerate(row.state):
            assert_close(compiled.state[i], state[name], dtype)
        np.testing.assert_array_equal(p_compiled, p_stepped)
        np.testing.assert_array_equal(compiled.hyper, stepped.hyper)
    assert not np.array_equal(p_compiled, start)


def test_every_rule_has_a_reference():
    assert set(reference.UPDATE_RULES) == set(UPDATE_RULES)


def test_an_unknown_rule_code_is_refused():
    params = np.zeros(3)
    with pytest.raises(ValueError, match="unknown update rule"):
        unknown = max(r.code for r in UPDATE_RULES.values()) + 1
        _optimizers.apply_update(unknown, params, params.copy(), np.zeros(5), np.zeros((1, 3)),
                                 0, 3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method, options", CONFIGS)
def test_fit_takes_the_same_steps_on_both_backends(method, options, dtype):
    # every optimizer, through fit: the compiled epoch against the reference engine
    rng = np.random.default_rng(2)
    X, y = rng.random((23, 4)), rng.random((23, 2))
    fits = []
    for backend in ("numba", "numpy"):
        net = fastbp.Network([4, 5, 2], seed=0, dtype=dtype, backend=backend)
        net.fit(X, y, method=method, epochs=3, batch_size=5, shuffle=False, **options)
        fits.append(net.get_params())
    assert_close(fits[0], fits[1], dtype)
    assert not np.array_equal(fits[0], fastbp.Network([4, 5, 2], seed=0, dtype=dtype).get_params())
