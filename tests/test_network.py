"""Whole-network cost and gradients equal the reference; the seed example's numbers."""

import itertools
import re
import warnings

import numba
import numpy as np
import pytest
from conftest import (
    DTYPES,
    NETWORK_KINDS,
    TOLERANCES,
    assert_close,
    fresh_ir,
    layouts,
    random_targets,
)

import fastbp
from fastbp import kernels, reference
from fastbp.datasets import seed_example, seed_weights

SEED_COST = 0.05214963371099622
SEED_GRADIENT = [
    -0.006762446463396889, 0.0023755508174569946, 0.0019872341511100317,
    -0.00347964630861673, 0.0011859627246720084, 0.001133029265232649,
    -0.10131066916812509, -0.08408981854360008, -0.06564024831117586,
]

CASES = [(*kind, bias, l2, dtype) for kind, bias, l2, dtype
         in itertools.product(NETWORK_KINDS, [True, False], [0.0, 0.25], DTYPES)]


def _case_network(activation, out_act, loss, bias, l2, dtype, case):
    """A network of depth 1 to 4 with odd layer sizes, varying with ``case``."""
    rng = np.random.default_rng(case)
    depth = 1 + case % 4
    sizes = [int(s) for s in rng.integers(1, 12, size=depth + 1)]
    net = fastbp.Network(sizes, activation=activation, output_activation=out_act, bias=bias,
                         loss=loss, l2=l2, dtype=dtype, seed=case)
    if bias:
        net.biases = [0.1 * rng.standard_normal(b.shape) for b in net.biases]
    n = int(rng.integers(1, 40))
    X = rng.standard_normal((n, sizes[0]))
    y = random_targets(rng, n, sizes[-1], out_act, loss)
    return net, X, y


@pytest.mark.parametrize("case", range(len(CASES)))
def test_whole_gradient_matches_reference(case):
    activation, out_act, loss, bias, l2, dtype = CASES[case]
    net, X, y = _case_network(activation, out_act, loss, bias, l2, dtype, case)
    Xd, yd = X.astype(dtype), y.astype(dtype)
    J_ref, gW_ref, gb_ref = reference.cost_and_gradients(
        net.weights, net.biases, Xd, yd, net.activations, loss, l2)
    J, gW, gb = net.cost_and_gradients(X, y)
    rtol = TOLERANCES[np.dtype(dtype)]["rtol"]
    assert J == pytest.approx(J_ref, rel=rtol, abs=1e-30)
    assert net.cost(X, y) == pytest.approx(J_ref, rel=rtol, abs=1e-30)
    for g, g_ref in zip(gW, gW_ref):
        assert_close(g, g_ref, dtype)
    if bias:
        for g, g_ref in zip(gb, gb_ref):
            assert_close(g, g_ref, dtype)
    else:
        assert gb is None and gb_ref is None
    assert_close(net.forward(X), reference.forward(net.weights, net.biases, Xd, net.activations),
                 dtype)


@pytest.mark.parametrize("case", range(0, len(CASES), 7))
def test_numpy_backend_equals_numba_backend(case):
    activation, out_act, loss, bias, l2, dtype = CASES[case]
    net, X, y = _case_network(activation, out_act, loss, bias, l2, dtype, case)
    twin = fastbp.Network(net.layer_sizes, activation=activation,
                          output_activation=net.activations[-1], bias=bias, loss=loss, l2=l2,
                          dtype=dtype, backend="numpy")
    twin.set_params(net.get_params())
    J, gW, gb = net.cost_and_gradients(X, y)
    J2, gW2, gb2 = twin.cost_and_gradients(X, y)
    assert J == pytest.approx(J2, rel=TOLERANCES[np.dtype(dtype)]["rtol"])
    for g, g2 in zip(gW + (gb or []), gW2 + (gb2 or [])):
        assert_close(g, g2, dtype)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_seed_example_exact_numbers(backend):
    X, y = seed_example()
    net = fastbp.Network([2, 3, 1], bias=False, backend=backend)
    net.weights = seed_weights()
    J, gW, gb = net.cost_and_gradients(X, y)
    assert gb is None
    assert J == pytest.approx(SEED_COST, rel=1e-13)
    assert_close(np.concatenate([g.ravel() for g in gW]), np.array(SEED_GRADIENT))
    assert fastbp.gradient_check(net, X, y) < 1e-8


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_network_accepts_any_input_layout(layout):
    net = fastbp.Network([4, 6, 3], seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((9, 4)), rng.random((9, 3))
    expected = net.cost_and_gradients(X, y)
    got = net.cost_and_gradients(layouts(X)[layout], layouts(y)[layout])
    assert got[0] == expected[0]
    for a, b in zip(got[1] + got[2], expected[1] + expected[2]):
        np.testing.assert_array_equal(a, b)


def test_params_layout_and_round_trip():
    net = fastbp.Network([3, 4, 2], seed=1)
    p = net.get_params()
    W0, W1 = net.weights
    b0, b1 = net.biases
    np.testing.assert_array_equal(p, np.concatenate([W0.ravel(), b0, W1.ravel(), b1]))
    q = np.arange(p.size, dtype=float)
    net.set_params(q)
    np.testing.assert_array_equal(net.get_params(), q)
    np.testing.assert_array_equal(net.weights[1], q[16:24].reshape(4, 2))
    p[0] = 99.0  # get_params returns a copy
    assert net.get_params()[0] == 0.0


def test_seeded_initialisation_is_reproducible():
    a = fastbp.Network([5, 7, 2], seed=3).get_params()
    b = fastbp.Network([5, 7, 2], seed=3).get_params()
    c = fastbp.Network([5, 7, 2], seed=4).get_params()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("loss", ["half_sse", "mse", "cross_entropy"])
def test_chunked_forward_and_cost_equal_one_pass(monkeypatch, loss):
    net = fastbp.Network([3, 5, 2], loss=loss, l2=0.1, seed=0)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((23, 3)), rng.random((23, 2))
    ref_J = reference.cost(net.weights, net.biases, X, y, net.activations, loss, 0.1)
    ref_y = reference.forward(net.weights, net.biases, X, net.activations)
    monkeypatch.setattr(fastbp.objective, "CHUNK_ROWS", 5)
    assert net.cost(X, y) == pytest.approx(ref_J, rel=1e-12)
    assert_close(net.forward(X), ref_y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_is_kept_end_to_end(dtype):
    net = fastbp.Network([3, 4, 2], dtype=dtype, seed=0)
    X = np.ones((5, 3))  # float64 input to a float32 network is cast, not promoted
    y = np.zeros((5, 2))
    assert net.forward(X).dtype == dtype
    assert net.get_params().dtype == dtype
    J, gW, gb = net.cost_and_gradients(X, y)
    assert isinstance(J, float)
    assert all(g.dtype == dtype for g in gW + gb)


def test_one_dimensional_target_for_one_output():
    net = fastbp.Network([2, 3, 1], seed=0)
    X, y = seed_example()
    assert net.cost(X, y[:, 0]) == net.cost(X, y)


def test_gradient_check_detects_a_wrong_gradient(monkeypatch):
    X, y = seed_example()
    net = fastbp.Network([2, 3, 1], seed=0)
    assert fastbp.gradient_check(net, X, y) < 1e-8
    engine = type(net.objective(X, y))
    original = engine.cost_and_gradient

    def broken(*args, **kwargs):
        J, g = original(*args, **kwargs)
        return J, g * 1.01

    monkeypatch.setattr(engine, "cost_and_gradient", broken)
    assert fastbp.gradient_check(net, X, y) > 1e-3


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_objective_follows_the_parameters(dtype, backend):
    # what BFGS calls per iteration: bound once, then called as the parameters move
    rng = np.random.default_rng(3)
    net = fastbp.Network([4, 5, 3, 2], l2=0.1, dtype=dtype, backend=backend, seed=2)
    objective = net.objective(rng.standard_normal((7, 4)), rng.random((7, 2)), 0.5)
    X, y = objective.X, objective.y
    for _ in range(3):
        assert objective.cost() == pytest.approx(
            reference.cost(net.weights, net.biases, X, y, net.activations, net.loss, 0.0) * 0.5
            + 0.05 * sum(np.sum(W.astype(float) ** 2) for W in net.weights),
            rel=TOLERANCES[np.dtype(dtype)]["rtol"])
        J, grad = objective.cost_and_gradient()
        J_ref, gW_ref, gb_ref = reference.cost_and_gradients(
            net.weights, net.biases, X, y, net.activations, net.loss, net.l2, 0.5)
        assert isinstance(J, float)
        assert J == pytest.approx(J_ref, rel=TOLERANCES[np.dtype(dtype)]["rtol"])
        assert_close(grad, np.concatenate([a.ravel() for pair in zip(gW_ref, gb_ref)
                                           for a in pair]), dtype)
        net.set_params(net.get_params() - 0.3 * grad)


def test_objective_is_immune_to_later_changes_of_its_inputs():
    # the compiled pass is chosen for the inputs' types once; reshaping the caller's
    # arrays afterwards must not reach it
    rng = np.random.default_rng(4)
    net = fastbp.Network([3, 4, 2], seed=1)
    X, y = rng.standard_normal((5, 3)), rng.random((5, 2))
    J0, g0 = net.objective(X, y).cost_and_gradient()
    expected = (J0, g0.copy())
    objective = net.objective(X, y)
    objective.cost_and_gradient()  # the second call runs the bound pass
    with warnings.catch_warnings():
        # NumPy 2.5 deprecates setting .shape in place, but callers still can
        warnings.simplefilter("ignore", DeprecationWarning)
        X.shape, y.shape = (15,), (10,)
        J, grad = objective.cost_and_gradient()
        grad.shape = (1, grad.size)
    J, grad = objective.cost_and_gradient()
    assert J == expected[0]
    np.testing.assert_array_equal(grad.ravel(), expected[1])


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="inspects compiled code")
@pytest.mark.parametrize("name", kernels.ELEMENTWISE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_pass_loops_vectorise(dtype, name):
    # loops over blocks of the flat workspace: indexing a view from 0 spares them
    # Numba's negative-index handling, which kept them scalar at 2-7x the time
    acts, code = kernels._activations, kernels.ACTIVATIONS[name].code
    work, bias = np.zeros(64, dtype), np.zeros(8, dtype)
    vector = rf"<\d+ x {'float' if dtype is np.float32 else 'double'}>"
    for func, args in [(acts.add_bias_and_activate, (work[:32].reshape(4, 8), bias)),
                       (acts.backprop_through, (work[:32], work[32:]))]:
        ir = fresh_ir(func, *args, literal=code, own_body=True)
        assert re.search(vector, ir), func.py_func.__name__
