"""Time and scratch memory of full-batch cost-and-gradient passes (what
``cost_and_gradients``, ``gd``, ``bfgs`` and ``lbfgs`` call), over row counts
that span one chunk or many.

Per case and thread count it prints the median time of ``cost_and_gradients``
(W1: of the flat objective call an optimizer makes), and the NumPy memory one
first call on a fresh network allocates beyond its inputs, traced by
:mod:`tracemalloc` (the gradient it returns included), with the scratch the
network keeps afterwards. Run: ``python asv_benchmarks/tools/fullbatch.py
[--threads 1 2] [--repeats 7] [--only W3]``.
"""

import argparse
import statistics
import time
import timeit
import tracemalloc

import numba
import numpy as np

import fastbp
from fastbp.datasets import seed_example, seed_weights

CASES = {  # name: (layer sizes, rows)
    "W3": ([1024, 1024, 1024, 10], 4096),
    "64-64-10": ([64, 64, 10], 100_000),
    "784-128-10": ([784, 128, 10], 60_000),
    "2-64-1": ([2, 64, 1], 1_000_000),
    "2-3-1": ([2, 3, 1], 1_000_000),
}


def data(sizes, rows, dtype):
    rng = np.random.default_rng(0)
    X = rng.random((rows, sizes[0]), dtype=np.dtype(dtype))
    y = rng.random((rows, sizes[-1]), dtype=np.dtype(dtype))
    return X, y


def w1_flat(dtype, repeats):
    """Median microseconds of the seed network's flat objective call."""
    X, y = seed_example(dtype)
    net = fastbp.Network([2, 3, 1], bias=False, dtype=dtype)
    net.weights = seed_weights()
    call = net.objective(X, y).cost_and_gradient
    call()
    loops = 200_000
    return statistics.median(timeit.repeat(call, number=loops, repeat=repeats)) / loops * 1e6


def case_time(sizes, rows, dtype, repeats):
    X, y = data(sizes, rows, dtype)
    net = fastbp.Network(sizes, dtype=dtype, seed=0)
    net.cost_and_gradients(X, y)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net.cost_and_gradients(X, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def case_memory(sizes, rows, dtype):
    """``(traced peak of a first call beyond its inputs, scratch kept)`` in bytes."""
    X, y = data(sizes, rows, dtype)
    fastbp.Network(sizes, dtype=dtype, seed=0).cost_and_gradients(X[:64], y[:64])  # compile
    net = fastbp.Network(sizes, dtype=dtype, seed=0)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    net.cost_and_gradients(X, y)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak, net._work.nbytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+",
                        default=[1, numba.config.NUMBA_NUM_THREADS])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", nargs="+", default=["W1", *CASES])
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    print(f"fastbp from {fastbp.__file__}")
    print(f"{'case':>11} {'rows':>9} {'dtype':>7} {'threads':>7} {'median':>11} "
          f"{'peak MB':>8} {'kept MB':>8}")
    for name in args.only:
        for dtype in args.dtypes:
            for n_threads in sorted(set(args.threads)):
                numba.set_num_threads(n_threads)
                if name == "W1":
                    us = w1_flat(dtype, args.repeats)
                    print(f"{'W1 flat':>11} {3:>9} {dtype:>7} {n_threads:>7} {us:>9.3f}us")
                    continue
                sizes, rows = CASES[name]
                t = case_time(sizes, rows, dtype, args.repeats)
                mem = "" if args.no_memory else "{:>8.1f} {:>8.1f}".format(
                    *(b / 2**20 for b in case_memory(sizes, rows, dtype)))
                print(f"{name:>11} {rows:>9} {dtype:>7} {n_threads:>7} {t * 1e3:>9.2f}ms {mem}",
                      flush=True)


if __name__ == "__main__":
    main()
