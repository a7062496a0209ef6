"""Speedups: the median time of the faster NumPy opponent (the plain loop a user
writes, or the reference) over that of fastbp, all measured in the same process,
sample for sample in turn (higher is better for fastbp). Kernels have no plain
loop: their opponent is the reference."""

from .common import (
    DTYPES,
    FASTBP,
    NUMPY_OPPONENTS,
    REFERENCE,
    THREADS,
    W4_ACTIVATIONS,
    W4_BATCH_SIZES,
    median_seconds,
    prepared,
    use_threads,
)


class _Speedup:
    params = [DTYPES]
    param_names = ["dtype"]
    unit = "speedup"
    timeout = 900
    samples = 7
    workload = ()

    def setup(self, dtype, *args):
        if self.param_names[-1] == "threads":  # both sides on that many threads
            *args, threads = args
            use_threads(threads)
        workload = self.workload(FASTBP, dtype, *args)
        opponents = [REFERENCE] if workload[0] == "kernel" else NUMPY_OPPONENTS
        self.calls = [prepared(*self.workload(impl, dtype, *args))
                      for impl in opponents + [FASTBP]]

    def teardown(self, *args):
        use_threads(1)

    def track_speedup(self, dtype, *args):
        *opponents, fast = median_seconds(self.calls, repeat=self.samples)
        return min(opponents) / fast


class SpeedupW1(_Speedup):
    """W1, the seed network: one public cost_and_gradients call."""

    @staticmethod
    def workload(impl, dtype):
        return "w1", impl, dtype, False


class SpeedupW1Flat(_Speedup):
    """W1 as each BFGS iteration calls it: inputs validated once, one flat gradient."""

    @staticmethod
    def workload(impl, dtype):
        return "w1", impl, dtype, True


class SpeedupW2Batch32(_Speedup):
    """W2: one SGD epoch at batch 32."""

    params = [DTYPES, THREADS]
    param_names = ["dtype", "threads"]
    samples = 3

    @staticmethod
    def workload(impl, dtype):
        return "w2", impl, dtype, 32


class SpeedupW2Batch128(SpeedupW2Batch32):
    """W2: one SGD epoch at batch 128."""

    @staticmethod
    def workload(impl, dtype):
        return "w2", impl, dtype, 128


class SpeedupW5Batch32(_Speedup):
    """W5: one Adam epoch (softmax output, cross-entropy) at batch 32."""

    params = [DTYPES, THREADS]
    param_names = ["dtype", "threads"]
    samples = 3

    @staticmethod
    def workload(impl, dtype):
        return "w5", impl, dtype, 32


class SpeedupW5Batch128(SpeedupW5Batch32):
    """W5: one Adam epoch (softmax output, cross-entropy) at batch 128."""

    @staticmethod
    def workload(impl, dtype):
        return "w5", impl, dtype, 128


class SpeedupW4(_Speedup):
    """W4: one SGD epoch of the 32-64-64-1 regressor on 100000 rows."""

    params = [DTYPES, W4_ACTIVATIONS, W4_BATCH_SIZES, THREADS]
    param_names = ["dtype", "activation", "batch_size", "threads"]
    samples = 3

    @staticmethod
    def workload(impl, dtype, activation="sigmoid", batch_size=16):
        return "w4", impl, dtype, activation, batch_size


class SpeedupW3(_Speedup):
    """W3: one full-batch cost_and_gradients, 4096 x 1024-1024-1024-10."""

    params = [DTYPES, THREADS]
    param_names = ["dtype", "threads"]
    samples = 5

    @staticmethod
    def workload(impl, dtype):
        return "w3", impl, dtype


class SpeedupSigmoid4096x1024(_Speedup):
    """The sigmoid kernel on 4096 x 1024 activations."""

    @staticmethod
    def workload(impl, dtype):
        return "kernel", impl, "sigmoid", "4096x1024", dtype
