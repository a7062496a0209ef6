"""The three kernels backpropagation spends its time in, one call each."""

from .common import DTYPES, IMPLS, KERNEL_SHAPES, KERNELS, prepared


class Kernels:
    """``sigmoid``, ``hidden_delta`` (``(delta @ W.T) * f'(z)``) and
    ``weight_gradient`` (``a.T @ delta``) on square layers, writing into ``out=``."""

    params = [KERNELS, list(KERNEL_SHAPES), DTYPES, IMPLS]
    param_names = ["kernel", "shape", "dtype", "impl"]
    timeout = 300

    def setup(self, kernel, shape, dtype, impl):
        self.call = prepared("kernel", impl, kernel, shape, dtype)

    def time_kernel(self, kernel, shape, dtype, impl):
        self.call()
