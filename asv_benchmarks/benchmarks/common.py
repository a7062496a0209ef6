"""Workloads shared by the benchmark modules and ``tools/ratios.py``.

Each ``*_call(impl, dtype, ...)`` builds one workload for one implementation and
returns a zero-argument callable that runs it once. :func:`prepared` memoises
the callable and calls it once before handing it out, which compiles the Numba
specialisation for exactly the dtype and memory layout that is then timed; asv
re-runs ``setup`` before every sample, so the memoisation keeps that cheap.

The implementations come from :mod:`fastbp.implementations`, the same registry the
equivalence tests use; optional peers (PyTorch, scikit-learn) live in
:mod:`.peers` and are listed only where they are importable.
"""

import functools
import os
import statistics
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

import fastbp
from fastbp.datasets import seed_example, seed_weights
from fastbp.implementations import IMPLEMENTATIONS, NETWORK_BACKENDS, kernel_inputs

from . import peers
from .plain import PlainNetwork

REFERENCE, FASTBP, PLAIN = "numpy-reference", "fastbp", "numpy-plain"
IMPLS = list(IMPLEMENTATIONS)
#: Implementations of whole-network workloads: the plain NumPy loop a user
#: writes, the registry (reference and fastbp), and the importable peers.
NETWORK_IMPLS = [PLAIN] + IMPLS + peers.AVAILABLE
#: What fastbp's speed is quoted against: the faster of these two in each run.
NUMPY_OPPONENTS = [PLAIN, REFERENCE]
DTYPES = ["float32", "float64"]

#: Thread counts of the benchmarks with a ``threads`` parameter: one, and every core.
THREADS = sorted({1, os.cpu_count() or 1})


def use_threads(n):
    """Pin every thread pool of this process to ``n`` threads: Numba's (what fastbp's
    passes use), BLAS and OpenMP (threadpoolctl) and PyTorch's, when imported."""
    numba.set_num_threads(n)
    threadpool_limits(n)
    if "torch" in peers.AVAILABLE:
        import torch

        torch.set_num_threads(n)


KERNELS = ["sigmoid", "hidden_delta", "weight_gradient"]
#: Activation shapes (examples x units); the next layer has as many units.
KERNEL_SHAPES = {"256x128": (256, 128), "4096x1024": (4096, 1024)}

W2_SIZES = (784, 128, 10)
W2_EXAMPLES = 60000
W2_BATCH_SIZES = [32, 128]
W2_LEARNING_RATE = 0.1
#: W5: Adam over the W2 data, softmax output, categorical cross-entropy.
W5_BATCH_SIZES = [32, 128]
W5_LEARNING_RATE = 1e-3
W5_BETAS = (0.9, 0.999)
W5_EPS = 1e-8
W3_SIZES = (1024, 1024, 1024, 10)
W3_EXAMPLES = 4096
W4_SIZES = (32, 64, 64, 1)
W4_EXAMPLES = 100000
W4_BATCH_SIZES = [16, 64]
#: Every element-wise activation of fastbp's table but identity (a linear network).
W4_ACTIVATIONS = [a for a in fastbp.kernels.ELEMENTWISE if a != "identity"]
W4_LEARNING_RATE = 0.01


# -- kernels ---------------------------------------------------------------------


def kernel_call(impl, name, shape, dtype):
    """One call of kernel ``name`` writing into a preallocated ``out=``."""
    fn = getattr(IMPLEMENTATIONS[impl], name)
    n, m = KERNEL_SHAPES[shape]
    args = kernel_inputs(name, n, m, dtype=dtype)
    out = np.empty_like(fn(*args))
    return functools.partial(fn, *args, out=out)


# -- W1: the seed network ----------------------------------------------------------


def seed_network(impl, dtype):
    """Network([2, 3, 1], bias=False) with the seed's legacy-generator weights."""
    net = fastbp.Network([2, 3, 1], bias=False, dtype=dtype, backend=NETWORK_BACKENDS[impl])
    net.weights = seed_weights()
    return net


def _plain(net):
    """The plain NumPy twin of ``net``, from the same weights."""
    return PlainNetwork(net.weights, net.biases, net.activations[0], net.activations[-1],
                        net.loss)


def w1_call(impl, dtype, flat=False):
    """``cost_and_gradients``, or with ``flat`` the call BFGS makes per iteration
    (inputs validated once, one flat gradient)."""
    X, y = seed_example(dtype)
    if impl == PLAIN:
        return functools.partial(_plain(seed_network(FASTBP, dtype)).cost_and_gradients, X, y)
    net = seed_network(impl, dtype)
    if flat:
        return net.objective(X, y).cost_and_gradient
    return functools.partial(net.cost_and_gradients, X, y)


# -- W2: MNIST-shaped SGD ------------------------------------------------------------


@functools.cache
def mnist_like(dtype, n=W2_EXAMPLES):
    """``n`` random examples: X (n, 784) in [0, 1), y (n, 10) one-hot."""
    rng = np.random.default_rng(0)
    X = rng.random((n, W2_SIZES[0]), dtype=np.dtype(dtype))
    y = np.eye(W2_SIZES[-1], dtype=dtype)[rng.integers(0, W2_SIZES[-1], n)]
    return X, y


def require_fit():
    if not hasattr(fastbp.Network, "fit"):
        raise NotImplementedError("fastbp.Network has no fit() in this version")


def sgd_epoch_call(impl, X, y, sizes, batch_size, learning_rate, activation="sigmoid",
                   output="sigmoid", loss="half_sse"):
    """One SGD epoch of ``impl`` over ``X``, ``y`` from the same initial weights on
    every call: ``Network.fit(epochs=1)`` for fastbp and the reference, the plain
    loop, or a peer."""
    if impl in peers.PEERS:
        return peers.sgd_epoch_call(impl, X, y, batch_size, sizes, learning_rate, activation,
                                    output, loss)
    require_fit()
    backend = NETWORK_BACKENDS.get(impl, "numba")
    net = fastbp.Network(sizes, activation=activation, output_activation=output, loss=loss,
                         dtype=X.dtype, backend=backend, seed=0)
    initial = net.get_params()
    if impl == PLAIN:
        def epoch():
            net.set_params(initial)
            plain = _plain(net)
            plain.sgd_epoch(X, y, batch_size, learning_rate, np.random.default_rng(0))
            return plain

        return epoch

    def epoch():
        net.set_params(initial)
        return net.fit(X, y, method="sgd", epochs=1, batch_size=batch_size,
                       learning_rate=learning_rate, seed=0)

    return epoch


def w2_call(impl, dtype, batch_size, data=None):
    """One SGD epoch over ``data`` (default :func:`mnist_like`)."""
    X, y = mnist_like(dtype) if data is None else data
    return sgd_epoch_call(impl, X, y, W2_SIZES, batch_size, W2_LEARNING_RATE)


# -- W5: MNIST-shaped Adam with a softmax output ---------------------------------------


def adam_epoch_call(impl, X, y, sizes, batch_size, learning_rate=W5_LEARNING_RATE,
                    betas=W5_BETAS, eps=W5_EPS, activation="sigmoid"):
    """One Adam epoch of ``impl`` over ``X``, ``y`` (one-hot) with a softmax output
    and the mean categorical cross-entropy, from the same initial weights and a
    fresh optimizer state on every call: ``Network.fit(method="adam", epochs=1)``
    for fastbp and the reference, the plain loop, or a peer."""
    if impl in peers.PEERS:
        return peers.adam_epoch_call(impl, X, y, batch_size, sizes, learning_rate, betas, eps,
                                     activation)
    require_fit()
    backend = NETWORK_BACKENDS.get(impl, "numba")
    net = fastbp.Network(sizes, activation=activation, output_activation="softmax",
                         loss="cross_entropy", dtype=X.dtype, backend=backend, seed=0)
    initial = net.get_params()
    if impl == PLAIN:
        def epoch():
            net.set_params(initial)
            plain = _plain(net)
            plain.adam_epoch(X, y, batch_size, learning_rate, np.random.default_rng(0), betas,
                             eps)
            return plain

        return epoch

    def epoch():
        net.set_params(initial)
        return net.fit(X, y, method="adam", epochs=1, batch_size=batch_size,
                       learning_rate=learning_rate, betas=betas, eps=eps, seed=0)

    return epoch


def w5_call(impl, dtype, batch_size, data=None):
    """One Adam epoch over ``data`` (default :func:`mnist_like`), 784-128-10 with a
    sigmoid hidden layer and a softmax output."""
    X, y = mnist_like(dtype) if data is None else data
    return adam_epoch_call(impl, X, y, W2_SIZES, batch_size)


# -- W4: a tabular regressor ---------------------------------------------------------


@functools.cache
def sparse_text(rows, features, density=0.001, classes=20, seed=0):
    """``(X, y)``: a text-like CSR matrix of non-negative values (term weights) and
    labels that depend on about 1 % of the features (learnable, not separable)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    X = sp.random(rows, features, density=density, format="csr", dtype=np.float64,
                  random_state=rng)
    topics = rng.standard_normal((features, classes)) * (rng.random((features, 1)) < 0.01)
    scores = X @ topics + 0.1 * rng.standard_normal((rows, classes))
    return X, scores.argmax(axis=1)


def tabular(dtype, n=W4_EXAMPLES):
    """X (n, 32) standard normal, y (n, 1) a smooth function of X plus noise."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, W4_SIZES[0]))
    y = np.tanh(X[:, :4] @ rng.standard_normal(4))[:, None] + 0.1 * rng.standard_normal((n, 1))
    return X.astype(dtype), y.astype(dtype)


def w4_call(impl, dtype, activation, batch_size):
    """One SGD epoch of the 32-64-64-1 regressor (identity output, mse)."""
    X, y = tabular(dtype)
    return sgd_epoch_call(impl, X, y, W4_SIZES, batch_size, W4_LEARNING_RATE, activation,
                          "identity", "mse")


# -- W3: wide full batch -----------------------------------------------------------


@functools.cache
def wide_batch(dtype, n=W3_EXAMPLES):
    """X (n, 1024) in [0, 1), y (n, 10) one-hot."""
    rng = np.random.default_rng(1)
    X = rng.random((n, W3_SIZES[0]), dtype=np.dtype(dtype))
    y = np.eye(W3_SIZES[-1], dtype=dtype)[rng.integers(0, W3_SIZES[-1], n)]
    return X, y


def w3_call(impl, dtype, data=None):
    """One full-batch forward and backward pass (``cost_and_gradients``)."""
    X, y = wide_batch(dtype) if data is None else data
    if impl in peers.PEERS:
        return peers.w3_call(impl, X, y, W3_SIZES)
    backend = NETWORK_BACKENDS.get(impl, "numba")
    net = fastbp.Network(W3_SIZES, dtype=dtype, backend=backend, seed=0)
    if impl == PLAIN:
        return functools.partial(_plain(net).cost_and_gradients, X, y)
    return functools.partial(net.cost_and_gradients, X, y)


def w3_matmul_flops(n=W3_EXAMPLES, sizes=W3_SIZES):
    """Floating-point operations of the matmuls in one W3 pass: forward
    ``a @ W``, gradients ``a.T @ delta`` and the hidden deltas ``delta @ W.T``."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    macs = 2 * sum(a * b for a, b in pairs) + sum(a * b for a, b in pairs[1:])
    return 2 * n * macs


# -- preparation and timing ----------------------------------------------------------

WORKLOADS = {"kernel": kernel_call, "w1": w1_call, "w2": w2_call, "w3": w3_call,
             "w4": w4_call, "w5": w5_call}


@functools.cache
def prepared(workload, *args):
    """The callable of ``WORKLOADS[workload](*args)``, already called once."""
    call = WORKLOADS[workload](*args)
    call()
    return call


def _sample(call, number):
    start = time.perf_counter()
    for _ in range(number):
        call()
    return (time.perf_counter() - start) / number


def median_seconds(calls, repeat=5, min_sample=0.05):
    """Median seconds per call of each callable in ``calls``.

    Each sample runs a callable often enough to last ``min_sample`` seconds; the
    callables take turns sample by sample, so drift affects them alike.
    """
    numbers = [max(1, int(min_sample / _sample(call, 1))) for call in calls]
    samples = [[] for _ in calls]
    for _ in range(repeat):
        for call, number, out in zip(calls, numbers, samples):
            out.append(_sample(call, number))
    return [statistics.median(s) for s in samples]


def gemm_call(dtype, n=2048):
    """One ``np.dot`` of two n x n matrices into a preallocated output (``2 n**3``
    floating-point operations): the machine's GEMM rate for comparison."""
    rng = np.random.default_rng(0)
    A, B = (rng.random((n, n)).astype(dtype) for _ in range(2))
    return functools.partial(np.dot, A, B, out=np.empty((n, n), dtype))


use_threads(1)  # every benchmark without a ``threads`` parameter runs on one thread
