"""fastbp's default threads against its own single thread, on an idle machine
and beside busy competitors, and scikit-learn's ``GridSearchCV(n_jobs=...)``
around ``fastbp.sklearn``.

**Threads** (the default part): each workload runs in a fresh process, where
fastbp's default (Numba's count, every core the process may use; BLAS
unlimited) and one thread (``threadpool_limits(1)``, which limits Numba's
threads as it limits BLAS's; CPU/wall shows it) take turns sample by sample, first on the idle
machine, then while ``--competitors`` processes (a Python spin loop each, pinned
one per CPU, round robin, to the CPUs this process may use) run beside it; the
script starts and stops them itself. Prints medians and the ratios:
``idle 1/default`` (the threads' gain, higher is better) and
``loaded default/1`` (what the default costs under load, at most 1.2 wanted).

**Grid search** (``--grid``): digits, ``MLPClassifier(hidden_layer_sizes=(64,),
max_iter=40)``, four alphas x three folds, each ``n_jobs`` in a fresh process
(import and first calls included in the time, as a user's script pays them),
fastbp against scikit-learn; also fastbp's ``mean_fit_time`` inside
``n_jobs=1`` against the same fit run alone, and ``warm``: the same search run
again in that process (joblib's workers started, imported and their first calls
made, as in a notebook's second search).

    python asv_benchmarks/tools/load.py                  # W2 b32, b128, W4 b16, predict
    python asv_benchmarks/tools/load.py --only W2 --competitors 4
    python asv_benchmarks/tools/load.py --grid
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
#: label -> arguments of common.prepared (float32: the dtype users train in)
WORKLOADS = {
    "W2 SGD epoch b32": ("w2", "fastbp", "float32", 32),
    "W2 SGD epoch b128": ("w2", "fastbp", "float32", 128),
    "W4 sigmoid epoch b16": ("w4", "fastbp", "float32", "sigmoid", 16),
    "predict 1M x 784-128-10": ("predict",),
}
SPIN = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


def _predict_call():
    import numpy as np

    import fastbp

    net = fastbp.Network([784, 128, 10], dtype=np.float32, seed=0)
    X = np.random.default_rng(0).random((1_000_000, 784), dtype=np.float32)
    net.predict(X[:10_000])
    return lambda: net.predict(X)


def _competitors(n):
    cpus = sorted(os.sched_getaffinity(0))
    return [subprocess.Popen([sys.executable, "-c", SPIN, str(cpus[i % len(cpus)])])
            for i in range(n)]


def _stop(procs):
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def _turns(calls, repeat):
    """Median wall seconds and CPU/wall of each ``(call, threads)``, taking turns."""
    import numba
    from threadpoolctl import threadpool_limits

    samples = [[] for _ in calls]
    for _ in range(repeat):
        for (call, n_threads), out in zip(calls, samples):
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
            with threadpool_limits(n_threads) if n_threads else _nothing():  # Numba's too
                wall, cpu = time.perf_counter(), time.process_time()
                call()
                wall = time.perf_counter() - wall
                out.append((wall, (time.process_time() - cpu) / wall))
    return [(statistics.median(w for w, _ in s), statistics.median(c for _, c in s))
            for s in samples]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def child(label, repeat, competitors):
    sys.path.insert(0, str(HERE))
    from benchmarks import common

    common.use_threads(os.cpu_count())  # importing common pinned everything to one
    args = WORKLOADS[label]
    call = _predict_call() if args[0] == "predict" else common.prepared(*args)
    pair = [(call, 0), (call, 1)]  # 0: fastbp's default
    idle = _turns(pair, repeat)
    procs = _competitors(competitors)
    try:
        time.sleep(0.5)
        loaded = _turns(pair, repeat)
    finally:
        _stop(procs)
    return {"idle": idle, "loaded": loaded}


GRID = """
import time
start = time.perf_counter()
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from {module} import MLPClassifier
X, y = load_digits(return_X_y=True)
X = X / 16.0
est = MLPClassifier(hidden_layer_sizes=(64,), max_iter=40, random_state=0)
search = GridSearchCV(est, {{"alpha": [1e-5, 1e-4, 1e-3, 1e-2]}}, cv=3, n_jobs={n_jobs})
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    search.fit(X, y)
    total = time.perf_counter() - start
    fit_mean = float(np.mean(search.cv_results_["mean_fit_time"]))
    t = time.perf_counter()
    search.fit(X, y)  # again: joblib's workers are started, imported and warm now
    warm = time.perf_counter() - t
    times = []
    for _ in range(5):
        t = time.perf_counter()
        MLPClassifier(hidden_layer_sizes=(64,), max_iter=40, random_state=0).fit(X[:1198], y[:1198])
        times.append(time.perf_counter() - t)
print(total, fit_mean, sorted(times)[2], warm)
"""


def grid(repeat):
    print(f"{'GridSearchCV on digits':28} {'n_jobs':>6} {'seconds':>9} {'mean_fit':>9} "
          f"{'lone fit':>9} {'warm':>9}")
    totals = {}
    for module in ("fastbp.sklearn", "sklearn.neural_network"):
        for n_jobs in (1, 2):
            runs = []
            for _ in range(repeat):
                out = subprocess.run([sys.executable, "-c", GRID.format(module=module,
                                                                        n_jobs=n_jobs)],
                                     capture_output=True, text=True, check=True)
                runs.append([float(v) for v in out.stdout.split()])
            total, fit_mean, lone, warm = (statistics.median(r[i] for r in runs)
                                           for i in range(4))
            totals[module, n_jobs] = total, warm
            print(f"{module:28} {n_jobs:>6} {total:>8.2f}s {fit_mean * 1e3:>7.0f}ms "
                  f"{lone * 1e3:>7.0f}ms {warm:>8.2f}s")
    for module in ("fastbp.sklearn", "sklearn.neural_network"):
        (first1, warm1), (first2, warm2) = totals[module, 1], totals[module, 2]
        print(f"{module}: n_jobs=2 against 1: {first1 / first2:.2f}x faster in a fresh process, "
              f"{warm1 / warm2:.2f}x faster warm")


def cpu_name():
    """The CPU's model name, as /proc/cpuinfo gives it."""
    try:
        with open("/proc/cpuinfo") as f:
            return re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        import platform

        return platform.processor() or platform.machine()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="workloads matching this regular expression")
    parser.add_argument("--competitors", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--grid", action="store_true", help="the GridSearchCV part instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeat, args.competitors)))
        return
    if args.grid:
        grid(args.repeat)
        return
    print(f"{cpu_name()}, {os.cpu_count()} CPUs, "
          f"{args.competitors} competitors; medians of {args.repeat}; CPU/wall in brackets")
    print(f"{'workload':26} {'idle default':>16} {'idle 1':>16} {'1/default':>9} "
          f"{'loaded default':>16} {'loaded 1':>16} {'default/1':>9}")
    for label in WORKLOADS:
        if not re.search(args.only, label):
            continue
        run = subprocess.run([sys.executable, __file__, "--child", label, "--repeat",
                              str(args.repeat), "--competitors", str(args.competitors)],
                             capture_output=True, text=True, check=True)
        r = json.loads(run.stdout.strip().splitlines()[-1])
        (i0, ic0), (i1, ic1) = r["idle"]
        (l0, lc0), (l1, lc1) = r["loaded"]
        print(f"{label:26} {i0:>9.3f}s [{ic0:.1f}] {i1:>9.3f}s [{ic1:.1f}] {i1 / i0:>8.2f}x "
              f"{l0:>9.3f}s [{lc0:.1f}] {l1:>9.3f}s [{lc1:.1f}] {l0 / l1:>8.2f}x")


if __name__ == "__main__":
    main()
