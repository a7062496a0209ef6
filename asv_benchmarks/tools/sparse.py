"""Sparse input, text-like: ``fastbp.sklearn.MLPClassifier`` against scikit-learn's
on the same CSR matrix, and against fastbp fed ``X.toarray()``.

20 000 rows x 50 000 features at 0.1 % density (a million stored entries),
100 hidden units, 20 classes, Adam (scikit-learn's defaults: batches of 200,
shuffled), 10 epochs (``tol=0`` with ``n_iter_no_change`` past them, so every
fit runs all of them), float64. Every thread pool is pinned to ``--threads``
(one by default); each fit runs in a fresh process, in turn, ``--repeat``
times; the script prints the medians and the ratios. The densified fit
(8 GB of float64) runs ``--dense-epochs`` (1) and is reported per epoch. Peak
memory is NumPy's and SciPy's allocations during the fit (``tracemalloc``,
the data excluded), beside the CSR matrix's bytes and the weights'.

    python asv_benchmarks/tools/sparse.py
    python asv_benchmarks/tools/sparse.py --repeat 3 --no-dense
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import sparse_text  # noqa: E402

ROWS, FEATURES, DENSITY, HIDDEN, CLASSES, EPOCHS = 20_000, 50_000, 0.001, 100, 20, 10


def _child(kind, threads, epochs):
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    import tracemalloc
    import warnings

    from threadpoolctl import threadpool_limits

    X, y = sparse_text(ROWS, FEATURES, DENSITY, CLASSES)
    if kind == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from fastbp.sklearn import MLPClassifier
    if kind == "dense":
        X = X.toarray()
    params = dict(hidden_layer_sizes=(HIDDEN,), solver="adam", max_iter=epochs, tol=0.0,
                  n_iter_no_change=epochs + 1, random_state=0)
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPClassifier(**{**params, "max_iter": 1}).fit(X[:400], y[:400])  # first calls
        start = time.perf_counter()
        model = MLPClassifier(**params).fit(X, y)
        seconds = time.perf_counter() - start
        tracemalloc.start()
        MLPClassifier(**{**params, "max_iter": 1}).fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    csr = 0 if kind == "dense" else X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    weights = sum(W.nbytes for W in model.coefs_ + model.intercepts_)
    print(json.dumps({"seconds": seconds, "epochs": model.n_iter_, "peak": peak, "csr": csr,
                      "weights": weights, "score": model.score(X[:4000], y[:4000])}))


def _run(kind, threads, epochs):
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--threads", str(threads),
                          "--epochs", str(epochs)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dense-epochs", type=int, default=1)
    parser.add_argument("--no-dense", action="store_true")
    parser.add_argument("--child", choices=["fastbp", "sklearn", "dense"])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.threads, args.epochs)
    from load import cpu_name

    print(f"{ROWS} x {FEATURES} at {DENSITY:.1%}, {HIDDEN} hidden, {CLASSES} classes, Adam, "
          f"{EPOCHS} epochs, {args.threads} thread(s), {cpu_name()}")
    kinds = ["fastbp", "sklearn"] + ([] if args.no_dense else ["dense"])
    runs = {kind: [] for kind in kinds}
    for _ in range(args.repeat):
        for kind in kinds:
            runs[kind].append(_run(kind, args.threads,
                                   args.dense_epochs if kind == "dense" else EPOCHS))
    per_epoch = {}
    for kind, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        per_epoch[kind] = seconds / results[0]["epochs"]
        r = results[0]
        print(f"{kind:8s} {seconds:8.2f} s for {r['epochs']} epochs ({per_epoch[kind]:.3f} s an "
              f"epoch), score {r['score']:.3f}, peak {r['peak'] / 2**20:.0f} MiB (CSR "
              f"{r['csr'] / 2**20:.0f} MiB, weights {r['weights'] / 2**20:.0f} MiB)")
    print(f"scikit-learn / fastbp: {per_epoch['sklearn'] / per_epoch['fastbp']:.2f}x")
    if "dense" in per_epoch:
        print(f"fastbp on X.toarray() / fastbp on X, per epoch: "
              f"{per_epoch['dense'] / per_epoch['fastbp']:.2f}x")


if __name__ == "__main__":
    main()
