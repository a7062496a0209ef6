"""Speedups: median time of the NumPy reference over that of fastbp, both measured
in the same process, sample for sample in turn (higher is better for fastbp)."""

from .common import DTYPES, FASTBP, REFERENCE, median_seconds, prepared


class _Speedup:
    params = [DTYPES]
    param_names = ["dtype"]
    unit = "speedup"
    timeout = 900
    samples = 7
    workload = ()

    def setup(self, dtype):
        self.calls = [prepared(*self.workload(impl, dtype)) for impl in (REFERENCE, FASTBP)]

    def track_speedup(self, dtype):
        reference, fast = median_seconds(self.calls, repeat=self.samples)
        return reference / fast


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

    samples = 3

    @staticmethod
    def workload(impl, dtype):
        return "w2", impl, dtype, 32


class SpeedupW2Batch128(SpeedupW2Batch32):
    """W2: one SGD epoch at batch 128."""

    @staticmethod
    def workload(impl, dtype):
        return "w2", impl, dtype, 128


class SpeedupW3(_Speedup):
    """W3: one full-batch cost_and_gradients, 4096 x 1024-1024-1024-10."""

    samples = 5

    @staticmethod
    def workload(impl, dtype):
        return "w3", impl, dtype


class SpeedupSigmoid4096x1024(_Speedup):
    """The sigmoid kernel on 4096 x 1024 activations."""

    @staticmethod
    def workload(impl, dtype):
        return "kernel", impl, "sigmoid", "4096x1024", dtype
