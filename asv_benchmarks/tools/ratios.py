"""Time every workload of the asv suite in one process, without asv.

Prints, per workload and dtype, the median seconds of the plain NumPy loop a user
writes (``numpy-plain``, where the workload has one), the NumPy reference, fastbp
and the importable peers, and fastbp's ratio against the faster of the two NumPy
opponents (higher is better for fastbp), all taking turns in one process; then the
single-thread ``np.dot`` GEMM rate on 2048 x 2048 matrices and the fraction of it
that the W3 matmuls reach (called alone, and counted over the whole pass), and
the sigmoid kernel against a plain copy of its input. Every thread pool is pinned to one thread.

    python tools/ratios.py                      # everything (about a minute)
    python tools/ratios.py --only "W1|sigmoid"  # a subset (regular expression)
    python tools/ratios.py --only W5            # the Adam epochs (about two minutes)
    python tools/ratios.py --plot ratios.png    # also a bar chart (matplotlib)
"""

import os

for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import functools  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402

#: Workload label -> (samples, function (impl, dtype) -> arguments of common.prepared).
WORKLOADS = {
    "W1 cost_and_gradients": (7, lambda impl, dt: ("w1", impl, dt, False)),
    "W1 flat (BFGS call)": (7, lambda impl, dt: ("w1", impl, dt, True)),
    "W2 SGD epoch, batch 32": (3, lambda impl, dt: ("w2", impl, dt, 32)),
    "W2 SGD epoch, batch 128": (3, lambda impl, dt: ("w2", impl, dt, 128)),
    **{
        f"W5 Adam epoch, batch {bs}": (3, lambda impl, dt, b=bs: ("w5", impl, dt, b))
        for bs in common.W5_BATCH_SIZES
    },
    **{
        f"W4 {act} epoch, batch {bs}": (3, lambda impl, dt, a=act, b=bs: ("w4", impl, dt, a, b))
        for act in common.W4_ACTIVATIONS
        for bs in common.W4_BATCH_SIZES
    },
    "W3 cost_and_gradients": (5, lambda impl, dt: ("w3", impl, dt)),
    **{
        f"{kernel} {shape}": (7, lambda impl, dt, k=kernel, s=shape: ("kernel", impl, k, s, dt))
        for kernel in common.KERNELS
        for shape in common.KERNEL_SHAPES
    },
}
W3 = "W3 cost_and_gradients"
OPPONENTS = common.NUMPY_OPPONENTS


def _impls(label, peers):
    if label.startswith("W"):
        return OPPONENTS + [common.FASTBP] + (peers if label[:2] != "W1" else [])
    return [common.REFERENCE, common.FASTBP]  # kernels: no plain loop to write


def measure(only, dtypes, peers):
    """Rows ``(workload, dtype, {impl: seconds})``; every implementation of a row
    takes turns with the others, sample by sample."""
    rows = []
    for label, (samples, args) in WORKLOADS.items():
        if only and not re.search(only, label):
            continue
        for dt in dtypes:
            impls = _impls(label, peers)
            try:
                calls = [common.prepared(*args(impl, dt)) for impl in impls]
            except NotImplementedError as exc:
                print(f"{label:28} {dt:8} skipped: {exc}")
                continue
            seconds = dict(zip(impls, common.median_seconds(calls, repeat=samples)))
            rows.append((label, dt, seconds))
            best = min(seconds[i] for i in OPPONENTS if i in seconds)
            cells = " ".join(f"{i}={_fmt(t)}" for i, t in seconds.items())
            print(f"{label:28} {dt:8} {best / seconds[common.FASTBP]:6.2f}x  {cells}",
                  flush=True)
    return rows


def _fmt(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def w3_matmuls_call(dtype, impl):
    """The matmuls of one W3 pass alone, with the pass's shapes and order (``a @ W``
    forward, then per layer ``a.T @ delta`` and ``delta @ W.T``) on random data,
    through fastbp's product kernels (``impl="fastbp"``, as the fused pass calls
    them) or through ``np.dot`` (``"np.dot"``); no element-wise work in between."""
    import numpy as np
    from fastbp.kernels import _linalg

    keep = _linalg.NO_ACCUMULATE
    nn, tn, nt = {
        "fastbp": (lambda a, b, c: _linalg.gemm_nn(a, b, c, keep),
                   lambda a, b, c: _linalg.gemm_tn(a, b, c, keep),
                   lambda a, b, c: _linalg.gemm_nt(a, b, c, keep)),
        "np.dot": (lambda a, b, c: np.dot(a, b, out=c),
                   lambda a, b, c: np.dot(a.T, b, out=c),
                   lambda a, b, c: np.dot(a, b.T, out=c)),
    }[impl]

    rng = np.random.default_rng(0)
    n, sizes = common.W3_EXAMPLES, common.W3_SIZES
    block = lambda *shape: rng.random(shape, dtype=np.dtype(dtype))  # noqa: E731
    acts = [block(n, sizes[0])] + [block(n, m) for m in sizes[1:]]  # x, then a[l] / delta[l]
    weights = [block(k, m) for k, m in zip(sizes[:-1], sizes[1:])]
    grads = [np.empty_like(w) for w in weights]
    scratch = block(n * max(sizes[1:-1]))

    def call():
        for l, W in enumerate(weights):
            nn(acts[l], W, acts[l + 1])
        for l in range(len(weights) - 1, -1, -1):
            tn(acts[l], acts[l + 1], grads[l])
            if l > 0:
                nt(acts[l + 1], weights[l], scratch[: n * sizes[l]].reshape(n, sizes[l]))

    call()
    return call


def gemm_report(dtypes, n=2048):
    """The rate of the W3 matmuls against ``np.dot`` on n x n matrices: counted over
    the whole pass, and for the matmuls called alone through fastbp's kernels and
    through ``np.dot``. All take turns sample by sample, so the machine's drift
    hits them alike."""
    flops = common.w3_matmul_flops()
    print(f"\nnp.dot {n} x {n}, one thread; W3 matmuls: {flops / 1e9:.1f} GFLOP per pass")
    for dt in dtypes:
        calls = [common.gemm_call(dt, n)]
        calls += [w3_matmuls_call(dt, impl) for impl in ("fastbp", "np.dot")]
        calls += [common.prepared("w3", impl, dt) for impl in (common.REFERENCE, common.FASTBP)]
        calls[0]()
        gemm, *seconds = common.median_seconds(calls, repeat=7)
        alone, alone_np, ref, fast = (flops / s / (2 * n**3 / gemm) for s in seconds)
        print(f"  {dt:8} np.dot {2 * n**3 / gemm / 1e9:6.1f} GFLOP/s; W3 matmuls alone: "
              f"fastbp {alone:4.0%}, np.dot {alone_np:4.0%}; "
              f"whole pass: fastbp {fast:4.0%}, reference {ref:4.0%}")


def copy_report(dtypes):
    """The sigmoid kernel against ``np.copyto`` of the same 4096 x 1024 array."""
    import numpy as np

    print("\nsigmoid 4096x1024 against a plain copy (np.copyto), one thread")
    for dt in dtypes:
        sigmoid = common.prepared("kernel", common.FASTBP, "sigmoid", "4096x1024", dt)
        z = sigmoid.args[0]
        out = np.empty_like(z)
        copy, sig = common.median_seconds([functools.partial(np.copyto, out, z), sigmoid], repeat=9)
        print(f"  {dt:8} copy {_fmt(copy):>9}   sigmoid {_fmt(sig):>9}   "
              f"sigmoid / copy {sig / copy:5.2f}")


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(dict.fromkeys(label for label, *_ in rows))
    dtypes = list(dict.fromkeys(dt for _, dt, *_ in rows))
    ratio = {(label, dt): min(t[i] for i in OPPONENTS if i in t) / t[common.FASTBP]
             for label, dt, t in rows}
    y = np.arange(len(labels))
    height = 0.8 / len(dtypes)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.5))
    for i, dt in enumerate(dtypes):
        ax.barh(y + i * height, [ratio.get((label, dt), np.nan) for label in labels],
                height, label=dt)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(y + height * (len(dtypes) - 1) / 2, labels)
    ax.invert_yaxis()
    ax.set_xlabel("speedup of fastbp over the faster of plain NumPy and the reference\n"
                  "(kernels, which have no plain loop: over the reference; one thread)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="regular expression selecting workloads")
    parser.add_argument("--dtype", choices=common.DTYPES, action="append",
                        help="dtype to run (repeatable; default: both)")
    parser.add_argument("--plot", metavar="PATH", help="save a bar chart of the ratios")
    parser.add_argument("--no-peers", action="store_true", help="skip PyTorch and sklearn")
    args = parser.parse_args(argv)
    dtypes = args.dtype or common.DTYPES
    peers = [] if args.no_peers else common.peers.AVAILABLE

    print(f"{'workload':28} {'dtype':8} {'ratio':>7}  (fastbp against the faster of "
          f"{' and '.join(OPPONENTS)}; medians)")
    rows = measure(args.only, dtypes, peers)
    if not args.only or re.search(args.only, W3):
        gemm_report(dtypes)
    if not args.only or re.search(args.only, "sigmoid 4096x1024"):
        copy_report(dtypes)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
