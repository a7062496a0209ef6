"""Cold start: seconds to a user's first results, each in a fresh process.

Three first steps, each timed in a new interpreter (its start-up excluded):

- ``seed``: ``import fastbp`` and the seed network's first ``cost_and_gradients``;
- ``sgd32``: ``import fastbp`` and a first float32 SGD epoch of a 784-128-10
  network on 60 000 rows, batch 32 (the epoch's own time is printed too);
- ``demo``: ``python -m fastbp``, end to end (interpreter start-up included).

Each from three states of the kernel cache:

- ``no cache``: ``FASTBP_NO_CACHE=1``, every kernel compiled in the process;
- ``fresh install``: an empty cache folder plus the kernels an install compiles at
  build time (``fastbp.precompile``, run once here into a folder of its own, and
  copied into the empty cache before each process, as a fresh install's first
  import does);
- ``warm``: the cache that run left behind.

Run from the repository root: ``python asv_benchmarks/tools/coldstart.py``
(``--repeat N``, ``--only seed,demo``). Prints medians.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SCRIPTS = {
    "seed": """
import time
start = time.perf_counter()
import fastbp
from fastbp.datasets import seed_example
fastbp.Network([2, 3, 1], bias=False).cost_and_gradients(*seed_example())
print(time.perf_counter() - start)
""",
    "sgd32": """
import time
start = time.perf_counter()
import numpy as np
import fastbp
imported = time.perf_counter() - start
rng = np.random.default_rng(0)
X, y = rng.random((60000, 784), np.float32), rng.random((60000, 10), np.float32)
net = fastbp.Network([784, 128, 10], dtype=np.float32, seed=0)
epoch = time.perf_counter()
net.fit(X, y, epochs=1, batch_size=32, learning_rate=0.1)
seconds = time.perf_counter() - epoch
print(seconds, imported + seconds)
""",
}


def run(case, env):
    if case == "demo":
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fastbp"], env=env, check=True,
                       capture_output=True, timeout=900)
        return [time.perf_counter() - start]
    out = subprocess.run([sys.executable, "-c", SCRIPTS[case]], env=env, check=True,
                         capture_output=True, text=True, timeout=900)
    return [float(x) for x in out.stdout.split()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="seed,sgd32,demo")
    args = parser.parse_args(argv)
    cases = args.only.split(",")
    base = {k: v for k, v in os.environ.items()
            if k not in ("NUMBA_CACHE_DIR", "FASTBP_NO_CACHE", "NUMBA_DISABLE_JIT")}
    with tempfile.TemporaryDirectory() as work:
        prebuilt = os.path.join(work, "prebuilt")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fastbp.precompile"], check=True,
                       env={**base, "NUMBA_CACHE_DIR": prebuilt}, capture_output=True)
        print(f"precompile (what a build adds): {time.perf_counter() - start:.1f} s")
        rows = []
        for case in cases:
            times = {"no cache": [], "fresh install": [], "warm": []}
            for i in range(args.repeat):
                times["no cache"].append(run(case, {**base, "FASTBP_NO_CACHE": "1"}))
                cache = os.path.join(work, f"cache-{case}-{i}")
                shutil.copytree(prebuilt, cache)
                env = {**base, "NUMBA_CACHE_DIR": cache}
                times["fresh install"].append(run(case, env))
                times["warm"].append(run(case, env))
            rows.append((case, {k: [statistics.median(col) for col in zip(*v)]
                                for k, v in times.items()}))
    print(f"medians of {args.repeat} fresh processes, seconds")
    print(f"{'case':8s} {'no cache':>18s} {'fresh install':>18s} {'warm':>18s}")
    for case, medians in rows:
        cells = [" / ".join(f"{x:.2f}" for x in medians[k]) for k in medians]
        print(f"{case:8s} " + " ".join(f"{c:>18s}" for c in cells))
    if "sgd32" in cases:
        print("sgd32: the epoch call / import plus the epoch (data generation excluded)")


if __name__ == "__main__":
    main()
