"""Every kernel equals the NumPy reference: dtypes, shapes, layouts, out= and accumulate=."""

import numpy as np
import pytest
from conftest import DTYPES, assert_close, layouts
from fastbp.kernels import _linalg

import fastbp
from fastbp import implementations

FAST = implementations.IMPLEMENTATIONS["fastbp"]
REF = implementations.IMPLEMENTATIONS["numpy-reference"]

# (n examples, m units, k units in the next layer); batch 1, 1x1, odd and larger.
SHAPES = [(1, 1, 1), (1, 5, 3), (7, 3, 2), (65, 33, 17)]
NAMES = sorted(implementations.KERNEL_INPUTS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", NAMES)
def test_kernel_matches_reference(name, shape, dtype):
    args = implementations.kernel_inputs(name, *shape, dtype=dtype)
    expected = getattr(REF, name)(*args)
    actual = getattr(FAST, name)(*args)
    assert_close(actual, expected, dtype)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", ["activation", "activation_prime"])
@pytest.mark.parametrize("activation", fastbp.kernels.ELEMENTWISE)
def test_every_activation_and_its_derivative_match_the_reference(activation, kernel, dtype,
                                                                  layout):
    # every row of the table, from the one generic entry point: odd shapes, every layout
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (7, 3), (65, 33)]:
        z = (3 * rng.standard_normal(shape)).astype(dtype)
        expected = getattr(REF, kernel)(z, activation)
        assert_close(getattr(FAST, kernel)(layouts(z)[layout], activation), expected, dtype)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_kernel_accepts_any_memory_layout(name, dtype, layout):
    args = implementations.kernel_inputs(name, 7, 3, 2, dtype=dtype)
    expected = getattr(REF, name)(*args)
    varied = tuple(layouts(a)[layout] for a in args)
    assert_close(getattr(FAST, name)(*varied), expected, dtype)


@pytest.mark.parametrize("out_layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_kernel_writes_into_out(name, dtype, out_layout):
    args = implementations.kernel_inputs(name, 7, 3, 2, dtype=dtype)
    expected = getattr(REF, name)(*args)
    if expected.ndim == 2:
        out = layouts(np.full(expected.shape, np.nan, dtype))[out_layout]
    else:
        out = np.full(expected.shape, np.nan, dtype)
    result = getattr(FAST, name)(*args, out=out)
    assert result is out
    assert_close(out, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["weight_gradient", "bias_gradient"])
def test_gradient_kernels_accumulate(name, dtype, rng):
    args = implementations.kernel_inputs(name, 9, 4, 3, dtype=dtype)
    start = getattr(REF, name)(*args) * 0 + rng.standard_normal(1).astype(dtype)
    expected = getattr(REF, name)(*args, out=start.copy(), accumulate=True)
    out = start.copy()
    getattr(FAST, name)(*args, out=out, accumulate=True)
    assert_close(out, expected, dtype)
    assert_close(expected, start + getattr(REF, name)(*args), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side", ["loops", "blas"])
def test_products_either_side_of_the_blas_threshold(dtype, side):
    # n x 5 x 7 products: the largest that stays in the loops, the smallest past them.
    n = _linalg.SMALL_PRODUCT // 35 + (side == "blas")
    assert (n * 35 > _linalg.SMALL_PRODUCT) == (side == "blas")
    for name in ["weight_gradient", "hidden_delta"]:
        args = implementations.kernel_inputs(name, n, 5, 7, dtype=dtype)
        assert_close(getattr(FAST, name)(*args), getattr(REF, name)(*args), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_products_take_the_blas_path(dtype):
    for name in ["weight_gradient", "hidden_delta"]:
        args = implementations.kernel_inputs(name, 300, 70, 40, dtype=dtype)
        assert_close(getattr(FAST, name)(*args), getattr(REF, name)(*args), dtype)
    args = implementations.kernel_inputs("weight_gradient", 300, 70, 40, dtype=dtype)
    out = np.ones((70, 40), dtype)
    FAST.weight_gradient(*args, out=out, accumulate=True)
    assert_close(out, 1 + REF.weight_gradient(*args), dtype)


@pytest.mark.parametrize("activation", fastbp.kernels.ELEMENTWISE)
@pytest.mark.parametrize("name", ["output_delta", "hidden_delta"])
def test_deltas_for_every_activation(name, activation):
    for dtype in DTYPES:
        args = implementations.kernel_inputs(name, 7, 3, 2, dtype=dtype)
        expected = getattr(REF, name)(*args, activation=activation)
        assert_close(getattr(FAST, name)(*args, activation=activation), expected, dtype)


def test_int_and_bool_inputs_become_float64():
    z = np.array([[-2, 0, 3]])
    assert FAST.sigmoid(z).dtype == np.float64
    assert_close(FAST.sigmoid(z), REF.sigmoid(z.astype(float)))
    assert FAST.relu(np.array([[True, False]])).dtype == np.float64


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_may_alias_the_input(dtype):
    z = implementations.kernel_inputs("sigmoid", 5, 4, dtype=dtype)[0]
    expected = REF.sigmoid(z)
    FAST.sigmoid(z, out=z)
    assert_close(z, expected, dtype)
    d, W, zz = implementations.kernel_inputs("hidden_delta", 6, 6, 6, dtype=dtype)
    expected = REF.hidden_delta(d, W, zz)
    FAST.hidden_delta(d, W, zz, out=d)  # out overlaps an input that the product reads
    assert_close(d, expected, dtype)


@pytest.mark.parametrize("name", fastbp.kernels.ELEMENTWISE)
def test_nan_propagates_like_the_reference(name):
    # a NaN must reach the loss, where training detects it
    z = np.array([[np.nan, -1.0, 0.0, 2.0]])
    got, want = FAST.activation(z, name), REF.activation(z, name)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert_close(got[~np.isnan(want)], want[~np.isnan(want)])


@pytest.mark.parametrize("activation", fastbp.kernels.ELEMENTWISE)
def test_nan_weight_reaches_the_cost(activation):
    net = fastbp.Network([2, 4, 4, 1], activation=activation, output_activation="identity",
                         seed=0)
    net._params[0] = np.nan  # set_params refuses NaN; training could produce one
    X, y = np.ones((3, 2)), np.ones((3, 1))
    assert np.isnan(net.cost(X, y))
    assert np.isnan(net.cost_and_gradients(X, y)[0])


@pytest.mark.parametrize("activation", fastbp.kernels.ELEMENTWISE)
def test_nan_weight_reaches_the_same_gradients_as_the_reference(activation):
    # the NaN flows back through every hidden unit, dead relu units included
    # (NaN * 0 is NaN, as in the reference's product with the derivative)
    nan_at = {}
    for backend in ("numba", "numpy"):
        net = fastbp.Network([2, 4, 4, 1], activation=activation,
                             output_activation="identity", seed=0, backend=backend)
        net.weights[-1][0, 0] = np.nan
        _, gW, gb = net.cost_and_gradients(np.ones((3, 2)), np.ones((3, 1)))
        nan_at[backend] = [np.isnan(g) for g in gW + gb]
    for fast, ref in zip(nan_at["numba"], nan_at["numpy"]):
        np.testing.assert_array_equal(fast, ref)
