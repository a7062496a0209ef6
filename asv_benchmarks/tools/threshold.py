"""Where threads start to pay: one epoch of ``fit`` on the serial passes against
the threaded ones (every core), over networks and batches of growing work.

Prints, per case, the forward multiply-adds of one batch, the median epoch
times and their ratio; :data:`fastbp.threads.PARALLEL_MIN_WORK` is set from
where the ratio passes 1. Run: ``python asv_benchmarks/tools/threshold.py``.
"""

import time

import numpy as np

import fastbp
from fastbp import threads

CASES = [  # (layer sizes, batch size)
    ([8, 16, 1], 16), ([32, 64, 64, 1], 4), ([32, 64, 64, 1], 8), ([32, 64, 64, 1], 16),
    ([32, 64, 64, 1], 32), ([32, 64, 64, 1], 64), ([64, 64, 10], 16), ([64, 64, 10], 64),
    ([64, 64, 10], 200), ([784, 128, 10], 1), ([784, 128, 10], 4), ([784, 128, 10], 32),
]
ROWS = 4096
REPEATS = 7


def epoch_time(sizes, batch, min_work, X, y):
    threads.PARALLEL_MIN_WORK = min_work
    net = fastbp.Network(sizes, seed=0)
    net.fit(X, y, epochs=1, batch_size=batch)  # compile, warm up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        net.fit(X, y, epochs=1, batch_size=batch, seed=1)
        times.append(time.perf_counter() - start)
    return np.median(times)


def main():
    rng = np.random.default_rng(0)
    print(f"threads: {threads.pass_threads(10**6)}")
    print(f"{'layers':>16} {'batch':>5} {'multiply-adds':>13} {'serial':>9} {'threaded':>9} ratio")
    for sizes, batch in CASES:
        X, y = rng.standard_normal((ROWS, sizes[0])), rng.random((ROWS, sizes[-1]))
        work = batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        serial = epoch_time(sizes, batch, 10**18, X, y)
        threaded = epoch_time(sizes, batch, 0, X, y)
        print(f"{str(sizes):>16} {batch:>5} {work:>13} {serial * 1e3:>7.1f}ms "
              f"{threaded * 1e3:>7.1f}ms {serial / threaded:.2f}")


if __name__ == "__main__":
    main()
