"""fastbp on one thread and on every core, against the plain NumPy loop and the
peers at the same thread count, in one table.

Each thread count runs in its own process with every pool pinned to it before
anything is imported (``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``) and then by ``common.use_threads``;
within a process the implementations take turns sample by sample
(``common.median_seconds``). Prints median seconds and fastbp's ratio against
the plain loop, then fastbp's own speed-up from 1 thread to all.

    python tools/threads.py                 # W2, W5, W4, W3 at 1 and os.cpu_count() threads
    python tools/threads.py --threads 1 2 4
    python tools/threads.py --apart --only W2   # one process per implementation
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
#: label -> (samples, arguments of common.prepared after the implementation)
WORKLOADS = {
    "W2 SGD epoch b32": (3, ("w2", "{impl}", "{dtype}", 32)),
    "W2 SGD epoch b128": (3, ("w2", "{impl}", "{dtype}", 128)),
    "W5 Adam epoch b32": (3, ("w5", "{impl}", "{dtype}", 32)),
    "W5 Adam epoch b128": (3, ("w5", "{impl}", "{dtype}", 128)),
    "W4 sigmoid epoch b16": (3, ("w4", "{impl}", "{dtype}", "sigmoid", 16)),
    "W4 sigmoid epoch b64": (3, ("w4", "{impl}", "{dtype}", "sigmoid", 64)),
    "W3 cost_and_gradients": (5, ("w3", "{impl}", "{dtype}")),
}
IMPLS = ["numpy-plain", "fastbp", "torch-cpu", "sklearn-mlp"]


def measure(dtypes, impls, only):
    """In this process (thread pools already pinned): {label: {impl: seconds}}."""
    import re

    sys.path.insert(0, str(HERE))
    from benchmarks import common

    n_threads = int(os.environ["NUMBA_NUM_THREADS"])
    common.use_threads(n_threads)  # importing common pinned everything to one
    out = {}
    for label, (samples, args) in WORKLOADS.items():
        if not re.search(only, label):
            continue
        for dtype in dtypes:
            calls, names = [], []
            for impl in [i for i in impls if i in common.NETWORK_IMPLS]:
                filled = [a.format(impl=impl, dtype=dtype) if isinstance(a, str) else a
                          for a in args]
                try:
                    calls.append(common.prepared(*filled))
                    names.append(impl)
                except NotImplementedError:
                    continue
            times = common.median_seconds(calls, repeat=samples)
            out[f"{label} {dtype}"] = dict(zip(names, times))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count()])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--impls", nargs="+", default=IMPLS)
    parser.add_argument("--only", default="", help="workloads matching this regular expression")
    parser.add_argument("--apart", action="store_true",
                        help="each implementation in a process of its own (no turns)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.dtypes, args.impls, args.only)))
        return
    results = {}
    groups = [[i] for i in args.impls] if args.apart else [args.impls]
    for t in args.threads:
        env = {**os.environ, **{k: str(t) for k in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
                                                     "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
        results[t] = {}
        for group in groups:
            run = subprocess.run([sys.executable, __file__, "--child", "--dtypes", *args.dtypes,
                                  "--only", args.only, "--impls", *group],
                                 env=env, capture_output=True, text=True, check=True)
            for label, row in json.loads(run.stdout.strip().splitlines()[-1]).items():
                results[t].setdefault(label, {}).update(row)
    print(f"{'workload':34} {'threads':>7} " + " ".join(f"{i:>12}" for i in IMPLS)
          + "  fastbp vs plain")
    for label in results[args.threads[0]]:
        for t in args.threads:
            row = results[t][label]
            cells = " ".join(f"{row[i]:>11.4f}s" if i in row else f"{'-':>12}" for i in IMPLS)
            both = "numpy-plain" in row and "fastbp" in row
            ratio = f"{row['numpy-plain'] / row['fastbp']:.2f}x" if both else "-"
            print(f"{label:34} {t:>7} {cells}  {ratio}")
        first, last = results[args.threads[0]][label], results[args.threads[-1]][label]
        if "fastbp" in first and len(args.threads) > 1:
            print(f"{'':34} fastbp {args.threads[-1]} threads vs {args.threads[0]}: "
                  f"{first['fastbp'] / last['fastbp']:.2f}x")


if __name__ == "__main__":
    main()
