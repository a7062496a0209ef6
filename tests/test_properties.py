"""Property-based checks over random depths, sizes, dtypes, activations and batches."""

import numpy as np
from conftest import NETWORK_KINDS, TOLERANCES, assert_close, random_targets
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbp
from fastbp import implementations, reference

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def networks(draw):
    depth = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 9), min_size=depth + 1, max_size=depth + 1))
    activation, out, loss = draw(st.sampled_from(NETWORK_KINDS))
    net = fastbp.Network(
        sizes, activation=activation, output_activation=out, loss=loss,
        bias=draw(st.booleans()), l2=draw(st.sampled_from([0.0, 0.1])),
        dtype=draw(st.sampled_from([np.float32, np.float64])), seed=draw(st.integers(0, 99)),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 50))
    X = rng.standard_normal((n, sizes[0])).astype(net.dtype)
    y = random_targets(rng, n, sizes[-1], out, loss).astype(net.dtype)
    return net, X, y


@SETTINGS
@given(networks())
def test_whole_gradient_equals_reference(case):
    net, X, y = case
    J_ref, gW_ref, gb_ref = reference.cost_and_gradients(
        net.weights, net.biases, X, y, net.activations, net.loss, net.l2)
    J, gW, gb = net.cost_and_gradients(X, y)
    rtol = 10 * TOLERANCES[net.dtype]["rtol"]
    assert abs(J - J_ref) <= rtol * abs(J_ref) + 1e-30
    for g, g_ref in zip(gW + (gb or []), gW_ref + (gb_ref or [])):
        assert_close(g, g_ref, net.dtype)


@SETTINGS
@given(st.sampled_from(sorted(implementations.KERNEL_INPUTS)), st.integers(1, 40),
       st.integers(1, 20),
       st.integers(1, 20), st.sampled_from([np.float32, np.float64]), st.integers(0, 1000))
def test_kernels_equal_reference(name, n, m, k, dtype, seed):
    args = implementations.kernel_inputs(name, n, m, k, dtype=dtype, seed=seed)
    expected = implementations.kernel("numpy-reference", name)(*args)
    assert_close(implementations.kernel("fastbp", name)(*args), expected, dtype)


@SETTINGS
@given(networks())
def test_set_params_get_params_is_identity(case):
    net, _, _ = case
    p = np.random.default_rng(0).standard_normal(net.n_params).astype(net.dtype)
    net.set_params(p)
    np.testing.assert_array_equal(net.get_params(), p)
    net.set_params(net.get_params())
    np.testing.assert_array_equal(net.get_params(), p)


@settings(max_examples=15, deadline=None)
@given(networks())
def test_save_then_load_is_identity(tmp_path_factory, case):
    net, X, _ = case
    path = tmp_path_factory.mktemp("io") / "net.npz"
    net.save(path)
    loaded = fastbp.load(path)
    assert repr(loaded) == repr(net)
    np.testing.assert_array_equal(loaded.get_params(), net.get_params())
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
