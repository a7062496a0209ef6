"""The three kernels backpropagation spends its time in, one call each."""

from .common import DTYPES, IMPLS, KERNEL_SHAPES, KERNELS, prepared


class Kernels:
    """``sigmoid``, ``hidden_delta`` (``(delta @ W.T) * f'(z)``) and
    ``weight_gradient`` (``a.T @ delta``) on square layers, writing into ``out=``."""

    params = [IMPLS, DTYPES, KERNELS, list(KERNEL_SHAPES)]
    param_names = ["impl", "dtype", "kernel", "shape"]
    timeout = 300

    def setup(self, impl, dtype, kernel, shape):
        self.call = prepared("kernel", impl, kernel, shape, dtype)

    def time_kernel(self, impl, dtype, kernel, shape):
        self.call()
