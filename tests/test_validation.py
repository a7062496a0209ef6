"""Bad input raises TypeError/ValueError naming the argument, before any compiled code."""

import numpy as np
import pytest

import fastbp
from fastbp import kernels, tutorial


@pytest.fixture
def net():
    return fastbp.Network([3, 4, 2], seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 3)), rng.random((5, 2))


BAD_X = [
    (np.ones(3), ValueError, "X must be a 2-D"),
    (np.ones((2, 3, 1)), ValueError, "X must be a 2-D"),
    (np.ones((0, 3)), ValueError, "X must not be empty"),
    (np.ones((5, 4)), ValueError, "X must have 3 columns"),
    (np.full((5, 3), np.nan), ValueError, "X contains NaN"),
    (np.full((5, 3), np.inf), ValueError, "X contains NaN"),
    (np.ones((5, 3), complex), TypeError, "X must hold real numbers"),
    (np.array([["a", "b", "c"]] * 5), TypeError, "X must hold real numbers"),
    (np.array([[object()] * 3] * 5), TypeError, "X must hold real numbers"),
    ("abc", TypeError, "X must be an array"),
    ([[1, 2, 3], [1, 2]], ValueError, "X could not be converted"),
]


@pytest.mark.parametrize("X,exc,match", BAD_X)
@pytest.mark.parametrize("method", ["forward", "predict", "cost", "gradients", "fit"])
def test_bad_X(net, data, method, X, exc, match):
    _, y = data
    call = getattr(net, method)
    with pytest.raises(exc, match=match):
        call(X) if method in ("forward", "predict") else call(X, y[: len(X)] if len(X) else y)


BAD_Y = [
    (np.ones((5, 3)), ValueError, "y must have 2 columns"),
    (np.ones((4, 2)), ValueError, "same number of rows"),
    (np.ones(5), ValueError, "y must be a 2-D"),
    (np.full((5, 2), np.nan), ValueError, "y contains NaN"),
    (np.ones((5, 2), complex), TypeError, "y must hold real numbers"),
]


@pytest.mark.parametrize("y,exc,match", BAD_Y)
@pytest.mark.parametrize("method", ["cost", "gradients", "cost_and_gradients", "fit", "score"])
def test_bad_y(net, data, method, y, exc, match):
    X, _ = data
    with pytest.raises(exc, match=match):
        getattr(net, method)(X, y)


def test_float64_overflowing_float32_is_caught(data):
    net = fastbp.Network([3, 2], dtype=np.float32)
    X, y = data
    X[0, 0] = 1e300
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.cost(X, y)


@pytest.mark.parametrize("dtype,big", [(np.float32, 1e37), (np.float64, 1e305)])
@pytest.mark.parametrize("rows", [5, 3000])  # below and above the size where the check changes
def test_huge_finite_inputs_are_accepted_and_nan_is_found(dtype, big, rows):
    # Their squares and sums overflow; the finiteness test must neither warn nor reject.
    net = fastbp.Network([3, 2], dtype=dtype, activation="identity")
    X = np.full((rows, 3), big, dtype)
    y = np.zeros((rows, 2), dtype)
    assert net.forward(X).shape == (rows, 2)
    X[rows // 2, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.forward(X)
    X[rows // 2, 1] = -np.inf
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.forward(X)
    y[-1, -1] = np.nan
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        net.cost(np.ones((rows, 3), dtype), y)


def test_cross_entropy_targets_must_be_probabilities(data):
    X, y = data
    with pytest.raises(ValueError, match=r"y must lie in \[0, 1\]"):
        fastbp.Network([3, 2], loss="cross_entropy").cost(X, y + 1)


def test_masked_arrays_are_refused(net, data):
    X, y = data
    masked = np.ma.masked_array(X, mask=np.zeros_like(X, bool))
    with pytest.raises(TypeError, match="X must not be a masked array"):
        net.cost(masked, y)
    with pytest.raises(TypeError, match="z must not be a masked array"):
        kernels.sigmoid(masked)


def test_bool_and_int_inputs_are_cast(net):
    X = np.array([[True, False, True]])
    y = np.array([[0, 1]])
    assert net.cost(X, y) == net.cost(X.astype(float), y.astype(float))


def test_read_only_inputs_work(net, data):
    X, y = data
    X.flags.writeable = False
    y.flags.writeable = False
    assert np.isfinite(net.cost(X, y))
    z = np.ones((2, 2))
    z.flags.writeable = False
    assert kernels.sigmoid(z).shape == (2, 2)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"layer_sizes": [3]}, ValueError, "at least two"),
    ({"layer_sizes": []}, ValueError, "at least two"),
    ({"layer_sizes": [3, 0, 1]}, ValueError, r"layer_sizes\[1\] must be a positive"),
    ({"layer_sizes": [3, -2]}, ValueError, r"layer_sizes\[1\]"),
    ({"layer_sizes": [3, 2.5]}, TypeError, r"layer_sizes\[1\]"),
    ({"layer_sizes": [3, True]}, TypeError, r"layer_sizes\[1\]"),
    ({"layer_sizes": 3}, TypeError, "layer_sizes must be a sequence"),
    ({"layer_sizes": "32"}, TypeError, "layer_sizes must be a sequence"),
    ({"activation": "softmax"}, ValueError, "activation must be one of"),
    ({"output_activation": "gelu"}, ValueError, "output_activation must be one of"),
    ({"loss": "hinge"}, ValueError, "loss must be one of"),
    ({"backend": "cuda"}, ValueError, "backend must be one of"),
    ({"dtype": np.float16}, TypeError, "dtype must be numpy.float32"),
    ({"dtype": "int64"}, TypeError, "dtype must be numpy.float32"),
    ({"dtype": "nonsense"}, TypeError, "dtype must be numpy.float32"),
    ({"l2": -1.0}, ValueError, "l2 must be a finite number"),
    ({"l2": np.nan}, ValueError, "l2 must be a finite number"),
    ({"l2": "0.1"}, TypeError, "l2 must be a real number"),
    ({"bias": 1}, TypeError, "bias must be True or False"),
    ({"seed": -1}, ValueError, "seed must be non-negative"),
    ({"seed": 1.5}, TypeError, "seed must be None"),
    ({"loss": "cross_entropy", "output_activation": "identity"}, ValueError,
     r"needs output_activation in \['sigmoid', 'softmax'\]"),
    ({"loss": "mse", "output_activation": "softmax"}, ValueError,
     r"loss='mse' needs output_activation in \['identity', 'relu', 'sigmoid', 'tanh'\]"),
    ({"activation": "softmax", "loss": "cross_entropy"}, ValueError,
     "activation must be one of"),
])
def test_bad_network_arguments(kwargs, exc, match):
    kwargs = {"layer_sizes": [3, 4, 2], **kwargs}
    with pytest.raises(exc, match=match):
        fastbp.Network(kwargs.pop("layer_sizes"), **kwargs)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"method": "newton"}, ValueError, "method must be one of"),
    ({"method": "bfgs", "learning_rate": 0.1}, TypeError,
     r"fit\(method='bfgs'\) takes no option 'learning_rate'"),
    ({"epoch": 3}, TypeError, r"fit\(method='sgd'\) takes no option 'epoch'"),
    ({"method": "adam", "betas": 0.9}, TypeError, "betas must be a pair"),
    ({"method": "adam", "betas": (0.9, 1.0)}, ValueError, r"betas\[1\] must be"),
    ({"method": "adam", "eps": 0.0}, ValueError, "eps must be"),
    ({"method": "adam", "momentum": 0.9}, TypeError, "takes no option 'momentum'"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate must be"),
    ({"learning_rate": -0.1}, ValueError, "learning_rate must be"),
    ({"learning_rate": np.inf}, ValueError,
     r"learning_rate must be a finite number in \(0.0, inf\); got inf"),
    ({"learning_rate": "fast"}, TypeError, "learning_rate must be a real"),
    ({"epochs": 0}, ValueError, "epochs must be a positive integer"),
    ({"epochs": 2.0}, TypeError, "epochs must be a positive integer"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ({"batch_size": None}, TypeError, "batch_size must be a positive integer"),
    ({"momentum": 1.0}, ValueError, r"momentum must be a finite number in \[0.0, 1.0\)"),
    ({"momentum": -0.5}, ValueError, "momentum must be"),
    ({"method": "lbfgs", "max_iter": 0}, ValueError, "max_iter must be"),
    ({"tol": -1.0}, ValueError, r"tol must be a finite number in \[0.0, inf\)"),
    ({"method": "lbfgs", "tol": -1e-5}, ValueError, r"tol must be a finite number in \[0.0"),
    ({"method": "bfgs", "tol": "small"}, TypeError, "tol must be a real number"),
    ({"method": "lbfgs", "max_fun": 0}, ValueError, "max_fun must be a positive integer"),
    ({"method": "lbfgs", "max_fun": 5.0}, TypeError, "max_fun must be a positive integer"),
    ({"method": "bfgs", "max_fun": 5}, TypeError, r"method='bfgs'\) takes no option 'max_fun'"),
    ({"max_fun": 5}, TypeError, r"fit\(method='sgd'\) takes no option 'max_fun'"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be True or False"),
    ({"seed": "a"}, TypeError, "seed must be None"),
    ({"callback": 3}, TypeError, "callback must be callable"),
])
def test_bad_fit_arguments(net, data, kwargs, exc, match):
    X, y = data
    before = net.get_params()
    with pytest.raises(exc, match=match):
        net.fit(X, y, **kwargs)
    np.testing.assert_array_equal(net.get_params(), before)


def test_bad_params_and_weights(net):
    with pytest.raises(ValueError, match="params must have length 26"):
        net.set_params(np.zeros(25))
    with pytest.raises(ValueError, match="params must be a 1-D"):
        net.set_params(np.zeros((26, 1)))
    with pytest.raises(ValueError, match="params contains NaN"):
        net.set_params(np.full(26, np.nan))
    with pytest.raises(ValueError, match=r"weights\[0\] must have shape \(3, 4\)"):
        net.weights = [np.zeros((4, 3)), np.zeros((4, 2))]
    with pytest.raises(ValueError, match="weights must be a list of 2"):
        net.weights = [np.zeros((3, 4))]
    with pytest.raises(ValueError, match="bias=False"):
        fastbp.Network([2, 1], bias=False).biases = [np.zeros(1)]


@pytest.mark.parametrize("eps", [0.0, -1e-4, 2.0, np.nan])
def test_bad_eps(net, data, eps):
    with pytest.raises(ValueError, match="eps must be"):
        fastbp.gradient_check(net, *data, eps=eps)


def test_kernels_reject_mismatched_shapes_and_dtypes():
    a = np.ones((4, 3))
    with pytest.raises(ValueError, match="same number of rows"):
        kernels.weight_gradient(a, np.ones((5, 2)))
    with pytest.raises(ValueError, match="y, yhat and z must have one shape"):
        kernels.output_delta(a, a, np.ones((4, 2)))
    with pytest.raises(ValueError, match="expected delta_next"):
        kernels.hidden_delta(np.ones((4, 2)), np.ones((3, 5)), a)
    with pytest.raises(TypeError, match="inputs must share one float dtype"):
        kernels.weight_gradient(a, np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match="z must hold real numbers"):
        kernels.sigmoid(np.ones(3, complex))
    with pytest.raises(ValueError, match="a_prev must be a 2-D"):
        kernels.weight_gradient(np.ones(3), np.ones((3, 1)))
    with pytest.raises(ValueError, match="activation must be one of"):
        kernels.hidden_delta(a, np.ones((3, 3)), a, activation="swish")
    with pytest.raises(ValueError, match="z must not be empty"):
        kernels.sigmoid(np.ones((0, 3)))


class _Subclass(np.ndarray):
    pass


def _kernel_input_cases():
    base = np.arange(12.0).reshape(4, 3)
    read_only = base.copy()
    read_only.flags.writeable = False
    return {
        "c64": [base, base + 1],
        "c32": [base.astype(np.float32)] * 2,
        "fortran": [np.asfortranarray(base), base],
        "strided": [base[::2], base[:2]],
        "read_only": [read_only, base],
        "int": [base.astype(int), base],
        "float16": [base.astype(np.float16)] * 2,
        "mixed": [base, base.astype(np.float32)],
        "subclass": [base.view(_Subclass), base],
        "masked": [np.ma.masked_array(base), base],
        "one_d": [base.ravel(), base],
        "zero_d": [np.array(1.0), base],
        "empty": [np.ones((0, 3)), base],
        "list": [base.tolist(), base],
    }


@pytest.mark.parametrize("case", list(_kernel_input_cases()))
@pytest.mark.parametrize("ndim", [2, None])
def test_fast_input_path_agrees_with_the_full_checks(monkeypatch, case, ndim):
    """The shortcut for inputs that need no conversion gives what the full checks
    give: the same objects, or a copy or error wherever the full checks make one."""
    from fastbp.kernels import _validation

    inputs = dict(zip("ab", _kernel_input_cases()[case]))

    def run():
        try:
            return _validation.as_arrays(ndim=ndim, **inputs)
        except (TypeError, ValueError) as exc:
            return type(exc), str(exc)

    fast = run()
    monkeypatch.setattr(_validation, "already_normal", lambda values, ndim: False)
    full = run()
    if isinstance(full, tuple):
        assert fast == full
        return
    for name, arr in full.items():
        assert (fast[name] is inputs[name]) == (arr is inputs[name])
        assert type(fast[name]) is np.ndarray and fast[name].dtype == arr.dtype
        assert fast[name].flags.c_contiguous and fast[name].flags.writeable
        np.testing.assert_array_equal(fast[name], arr)


def test_kernels_reject_bad_out():
    z = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\)"):
        kernels.sigmoid(z, out=np.empty((3, 2)))
    with pytest.raises(TypeError, match="out must have dtype float64"):
        kernels.sigmoid(z, out=np.empty((2, 3), np.float32))
    ro = np.empty((2, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        kernels.sigmoid(z, out=ro)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        kernels.sigmoid(z, out=[[0.0] * 3] * 2)
    with pytest.raises(ValueError, match="accumulate=True needs an out"):
        kernels.bias_gradient(z, accumulate=True)


def test_tutorial_validates(data):
    N = tutorial.Neural_Network()
    with pytest.raises(ValueError, match="X must have 2 columns"):
        N.forward(np.ones((3, 3)))
    with pytest.raises(ValueError, match="params must have length 9"):
        N.setParams(np.ones(8))
    with pytest.raises(ValueError, match="l2 must be"):
        N.Lambda = -1
