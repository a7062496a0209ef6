"""Compile every kernel a user's first calls need, into the on-disk cache.

``python -m fastbp.precompile`` fills the cache of this install (see README,
"Compilation cache and threads"): worth a line in a container image or a cluster
worker's set-up, so no process there compiles. Building the package
(``pip install .``) runs it on the build's own copy of the kernels and ships the
result, which the first import copies into the cache: a fresh install's first
call then loads its kernels instead of compiling them.

What it compiles, for float32 and float64: the serial passes (cost and
gradient, cost, forward, the SGD/momentum/Adam epoch) of networks with every
activation and output head, the threaded passes (each mode), and the public
kernels of :mod:`fastbp.kernels` on 1-D and 2-D arrays. Nothing else is
cached, so what it leaves out still compiles on first use.
"""

import argparse
import functools
import sys
import time

import numba
import numpy as np

#: Threads the precompiling process needs for the threaded passes to be used.
THREADS = 2


def precompile(dtypes=("float32", "float64")):
    """Run one small call of each compiled path, per dtype; return the seconds taken."""
    from . import Network, kernels
    from .threads import _fast_layer

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    threaded = numba.config.NUMBA_NUM_THREADS >= THREADS and _fast_layer()
    if threaded:
        numba.set_num_threads(THREADS)
    for dtype in map(np.dtype, dtypes):
        X = rng.random((64, 48)).astype(dtype)
        y = rng.random((64, 3)).astype(dtype)
        labels = np.eye(3, dtype=dtype)[rng.integers(0, 3, len(X))]
        for seed_bias in (False, True):  # the seed network, as the README calls it
            Network([2, 3, 1], bias=seed_bias, dtype=dtype).cost_and_gradients(X[:3, :2], y[:3, :1])
        for sizes, rows in (((48, 4, 3), 16), ((48, 640, 3), 64)):  # serial, then threaded
            for activation, output, loss, target in (
                    ("sigmoid", "sigmoid", "half_sse", y), ("tanh", "identity", "mse", y),
                    ("relu", "softmax", "cross_entropy", labels)):
                network = functools.partial(Network, sizes, activation=activation,
                                            output_activation=output, loss=loss, dtype=dtype,
                                            seed=0)
                Xr, yr = X[:rows], target[:rows]
                net = network()
                net.cost_and_gradients(Xr, yr)
                net.cost(Xr, yr)
                net.predict(Xr)
                for method, options in (("sgd", {}), ("sgd", {"momentum": 0.9}), ("adam", {})):
                    network().fit(Xr, yr, method=method, epochs=1, batch_size=rows // 2,
                                  learning_rate=1e-3, **options)
        # a scipy.sparse X (CSR, int32 indices: scipy's own), serial passes
        import scipy.sparse

        X_sparse = scipy.sparse.csr_matrix(X * (X > 0.9))
        for method in ("sgd", "adam"):
            net = Network((48, 4, 3), activation="relu", output_activation="softmax",
                          loss="cross_entropy", dtype=dtype, seed=0)
            net.fit(X_sparse, labels, method=method, epochs=1, batch_size=16)
        net.cost_and_gradients(X_sparse, labels)
        net.cost(X_sparse, labels)
        net.predict(X_sparse)
        for z in (X[0], X):
            for name in kernels.ELEMENTWISE:
                kernels.activation(z, name)
                kernels.activation_prime(z, name)
        kernels.softmax(X)
        delta = kernels.output_delta(X, X, X)
        kernels.hidden_delta(delta, X.T @ X, X)
        kernels.weight_gradient(X, delta)
        kernels.bias_gradient(delta)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastbp.precompile",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", action="append", choices=("float32", "float64"),
                        help="compile for this dtype only (repeatable; default: both)")
    args = parser.parse_args(argv)
    from .kernels import _cache, _jit

    if not (_jit.CACHE and _cache.WRITABLE):
        where = f"{_jit.cache_folder()} is read-only" if _jit.CACHE else (
            "FASTBP_NO_CACHE is set, or no cache folder can be used")
        print(f"no cache to fill ({where}): nothing would be kept", file=sys.stderr)
        return 1
    seconds = precompile(tuple(args.dtype or ("float32", "float64")))
    print(f"compiled into {_jit.cache_folder()} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
