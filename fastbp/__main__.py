"""``python -m fastbp``: train the seed example and compare speed with the reference.

Hours of sleep and of study the night before -> test score, a 2-3-1 sigmoid
network trained with BFGS. Prints predictions beside targets, the gradient
check's relative error and how much faster fastbp computes the gradient than
plain NumPy (the notebook's own matrix code) and the NumPy reference, all timed
in this run.
"""

import argparse
import functools
import importlib.util
import os
import sys
import timeit

import numpy as np

import fastbp
from fastbp.datasets import seed_example, seed_weights


def notebook_cost_and_gradient(W1, W2, X, y):
    """The seed notebook's ``costFunction`` and ``costFunctionPrime`` in plain NumPy:
    what a user runs without fastbp."""
    a2 = 1 / (1 + np.exp(-(X @ W1)))
    yhat = 1 / (1 + np.exp(-(a2 @ W2)))
    delta3 = -(y - yhat) * yhat * (1 - yhat)
    delta2 = (delta3 @ W2.T) * a2 * (1 - a2)
    return 0.5 * np.sum((y - yhat) ** 2), X.T @ delta2, a2.T @ delta3


def median_seconds(call, repeat=7, number=2000):
    """Median seconds of one call of ``call()``."""
    call()
    return float(np.median(timeit.repeat(call, repeat=repeat, number=number))) / number


def gradient_seconds(net, X, y, repeat=7, number=2000):
    """Median seconds of one cost-and-gradient call as BFGS makes it (validated
    arrays, warm JIT)."""
    return median_seconds(net.objective(X, y).cost_and_gradient, repeat, number)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastbp", description=__doc__.split("\n")[0])
    parser.add_argument("--plot", metavar="PATH", help="save the loss curve as a PNG")
    parser.add_argument("--no-digits", action="store_true",
                        help="skip the digits classifier (run when scikit-learn is installed)")
    args = parser.parse_args(argv)

    X, y = seed_example()
    nets = {}
    for backend in ("numba", "numpy"):
        nets[backend] = fastbp.Network([2, 3, 1], bias=False, backend=backend)
        nets[backend].weights = seed_weights()
    net = nets["numba"]
    print(f"fastbp {fastbp.__version__}: 2-3-1 sigmoid network, hours (sleep, study) -> score")
    print(f"initial cost J = {net.cost(X, y):.17g}")
    print(f"gradient check (central differences): relative error "
          f"{fastbp.gradient_check(net, X, y):.2e}")

    fast = gradient_seconds(net, X, y)
    reference = gradient_seconds(nets["numpy"], X, y)
    W1, W2 = seed_weights()
    plain = median_seconds(lambda: notebook_cost_and_gradient(W1, W2, X, y))
    print(f"cost and gradient as BFGS calls it: fastbp {fast * 1e6:.2f} us, plain NumPy "
          f"{plain * 1e6:.2f} us, NumPy reference {reference * 1e6:.2f} us\n"
          f"  -> fastbp is {min(plain, reference) / fast:.1f}x faster than the faster NumPy "
          "(medians, this run)")

    net.fit(X, y, method="bfgs", max_iter=200)
    print(f"BFGS: {net.n_iter_} iterations, final cost {net.loss_curve_[-1]:.3g}")
    print("  sleep  study | predicted  target")
    hours = X * [10, 5]  # undo the normalisation for display
    for (sleep, study), pred, target in zip(hours, net.predict(X)[:, 0] * 100, y[:, 0] * 100):
        print(f"  {sleep:5.0f}  {study:5.0f} | {pred:9.2f}  {target:6.0f}")
    if args.plot:
        save_loss_plot(net.loss_curve_, args.plot)
        print(f"loss curve saved to {args.plot}")
    if not args.no_digits and importlib.util.find_spec("sklearn") is not None:
        digits_comparison()
    return 0


#: The digits classifier both libraries train: sklearn's defaults but for these.
DIGITS_SETTINGS = {"hidden_layer_sizes": (64,), "solver": "adam", "max_iter": 50,
                   "random_state": 0}


def digits_comparison(repeat=3):
    """Train one classifier on scikit-learn's bundled handwritten digits (8x8
    images, 1797 samples) with fastbp and with scikit-learn, same settings; print
    test accuracy and the median training time of each. float64 only: each dtype
    compiles its own kernels, and the demo should stay quick on a first run."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from fastbp.sklearn import MLPClassifier as FastMLPClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.25,
                                                        random_state=0)
    print(f"\ndigits (8x8 images, 10 classes; {len(X_train)} to train, {len(X_test)} to test): "
          f"64-64-10 MLP, {DIGITS_SETTINGS['solver']}, {DIGITS_SETTINGS['max_iter']} epochs")
    print("  dtype     library       accuracy  training time (median of "
          f"{repeat}, after one untimed fit)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 50 epochs, by choice
        for dtype in (np.float64,):
            Xd, Xt = X_train.astype(dtype), X_test.astype(dtype)
            times = {}
            models = {"fastbp": functools.partial(FastMLPClassifier, **DIGITS_SETTINGS,
                                                  dtype=dtype),
                      "scikit-learn": functools.partial(MLPClassifier, **DIGITS_SETTINGS)}
            for name, make in models.items():
                model = make().fit(Xd, y_train)  # first fit: compiles the kernels
                fit = functools.partial(_fit_fresh, make, Xd, y_train)
                times[name] = median_seconds(fit, repeat, 1)
                print(f"  {np.dtype(dtype).name:8s}  {name:12s}  {model.score(Xt, y_test):8.4f}"
                      f"  {times[name] * 1e3:8.1f} ms")
            print(f"  -> fastbp trains {times['scikit-learn'] / times['fastbp']:.1f}x faster "
                  "(this run)")


def _fit_fresh(make, X, y):
    return make().fit(X, y)


def save_loss_plot(losses, path):
    """Save the loss curve as a PNG (needs matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        sys.exit("--plot needs matplotlib: pip install matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(np.arange(1, len(losses) + 1), losses)
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost J")
    ax.set_title("fastbp: seed example, BFGS")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
