"""Whole-network workloads W1-W5: time and peak memory.

Every workload is timed for ``numpy-plain`` (the loop a user writes), the NumPy
reference, fastbp and the importable peers; fastbp's ratios are quoted against
the faster of the first two.
"""

from . import peers
from .common import (
    DTYPES,
    IMPLS,
    NETWORK_IMPLS,
    PLAIN,
    THREADS,
    W2_BATCH_SIZES,
    W4_ACTIVATIONS,
    W4_BATCH_SIZES,
    W5_BATCH_SIZES,
    mnist_like,
    prepared,
    require_fit,
    use_threads,
    w2_call,
    w3_call,
    wide_batch,
)

#: W1 calls per timed sample. A benchmark with a setup gets one call per sample
#: from asv, and one call of a few microseconds times mostly the clock and cold
#: caches; the reported time is for all of them (divide by 100 for one call).
W1_CALLS = 100


class W1SeedNetwork:
    """The seed example: Network([2, 3, 1], bias=False) on three examples,
    ``W1_CALLS`` calls per sample."""

    params = [DTYPES, [PLAIN] + IMPLS]
    param_names = ["dtype", "impl"]

    def setup(self, dtype, impl):
        self.public = prepared("w1", impl, dtype, False)
        self.flat = prepared("w1", impl, dtype, True)  # plain: the same call

    def time_cost_and_gradients(self, dtype, impl):
        call = self.public
        for _ in range(W1_CALLS):
            call()

    def time_flat_cost_and_gradient(self, dtype, impl):
        """The pre-validated flat call each BFGS iteration makes."""
        call = self.flat
        for _ in range(W1_CALLS):
            call()


class _MnistShapedEpoch:
    """One epoch of a 784-128-10 network over 60000 MNIST-shaped examples."""

    workload = None  # key of common.prepared
    params = [DTYPES, W2_BATCH_SIZES, NETWORK_IMPLS, THREADS]
    param_names = ["dtype", "batch_size", "impl", "threads"]
    number = 1
    repeat = (2, 5, 20.0)
    warmup_time = 0
    timeout = 900

    def setup(self, dtype, batch_size, impl, threads):
        use_threads(threads)
        self.epoch = prepared(self.workload, impl, dtype, batch_size)

    def teardown(self, *args):
        use_threads(1)


class W2SGDEpoch(_MnistShapedEpoch):
    """One SGD epoch, 784-128-10 sigmoid."""

    workload = "w2"

    def time_sgd_epoch(self, dtype, batch_size, impl, threads):
        self.epoch()


class W5AdamEpoch(_MnistShapedEpoch):
    """One Adam epoch over the W2 data, 784-128-10 (sigmoid hidden layer, softmax
    output, mean categorical cross-entropy), learning rate 1e-3."""

    workload = "w5"
    params = [DTYPES, W5_BATCH_SIZES, NETWORK_IMPLS, THREADS]

    def time_adam_epoch(self, dtype, batch_size, impl, threads):
        self.epoch()


class W4TabularEpoch:
    """One SGD epoch, 32-64-64-1 regressor (identity output, mse), 100000 rows."""

    params = [DTYPES, W4_ACTIVATIONS, W4_BATCH_SIZES, NETWORK_IMPLS, THREADS]
    param_names = ["dtype", "activation", "batch_size", "impl", "threads"]
    number = 1
    repeat = (2, 5, 20.0)
    warmup_time = 0
    timeout = 900

    def setup(self, dtype, activation, batch_size, impl, threads):
        use_threads(threads)
        self.epoch = prepared("w4", impl, dtype, activation, batch_size)

    def teardown(self, *args):
        use_threads(1)

    def time_sgd_epoch(self, dtype, activation, batch_size, impl, threads):
        self.epoch()


class W3WideBatch:
    """One full-batch cost_and_gradients: 4096 examples, 1024-1024-1024-10."""

    params = [DTYPES, NETWORK_IMPLS, THREADS]
    param_names = ["dtype", "impl", "threads"]
    number = 1
    repeat = (3, 10, 20.0)
    warmup_time = 0
    timeout = 600

    def setup(self, dtype, impl, threads):
        use_threads(threads)
        self.call = prepared("w3", impl, dtype)

    def teardown(self, *args):
        use_threads(1)

    def time_cost_and_gradients(self, dtype, impl, threads):
        self.call()


class PeakMemW2:
    """Process peak RSS over one SGD epoch (batch 128). It includes the data:
    60000 x 784 inputs, 188 MB in float32, 376 MB in float64."""

    params = [DTYPES, NETWORK_IMPLS]
    param_names = ["dtype", "impl"]
    batch_size = 128
    timeout = 900

    def setup(self, dtype, impl):
        if impl in peers.PEERS:
            peers.require(impl)
        else:
            require_fit()
            # compile on a tiny problem of the same dtype and layout: little memory
            w2_call(impl, dtype, self.batch_size, mnist_like(dtype, 256))()
        self.data = mnist_like(dtype)

    def peakmem_sgd_epoch(self, dtype, impl):
        w2_call(impl, dtype, self.batch_size, self.data)()


class PeakMemW3:
    """Process peak RSS over one W3 cost_and_gradients (the 4096 x 1024 inputs
    are 16 MB in float32, 32 MB in float64; the weights 8 or 17 MB)."""

    params = [DTYPES, NETWORK_IMPLS]
    param_names = ["dtype", "impl"]
    timeout = 600

    def setup(self, dtype, impl):
        if impl in peers.PEERS:
            peers.require(impl)
        else:
            w3_call(impl, dtype, wide_batch(dtype, 8))()
        self.data = wide_batch(dtype)

    def peakmem_cost_and_gradients(self, dtype, impl):
        w3_call(impl, dtype, self.data)()

