"""fastbp.sklearn against sklearn.neural_network where users call them: the
per-call cost of ``predict`` and ``predict_proba`` on one row (scikit-learn's
input validation included, as both pay it), fitted on digits, one thread each.
``track_overhead_ratio`` is fastbp's median time over scikit-learn's, measured
in the same process sample for sample (at most 1 wanted). And ``fit`` on a
sparse, text-like problem (``SparseText``)."""

import warnings

from .common import median_seconds, sparse_text, use_threads
from .peers import require


def _fitted(module):
    from sklearn.datasets import load_digits

    if module == "fastbp":
        from fastbp.sklearn import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=40, random_state=0)
        return model.fit(X / 16.0, y), X[:1] / 16.0


class OneRowPrediction:
    params = [["predict", "predict_proba"]]
    param_names = ["method"]
    unit = "ratio"
    timeout = 300

    def setup(self, method):
        require("sklearn-mlp")
        use_threads(1)
        self.calls = []
        for module in ("fastbp", "sklearn"):
            model, row = _fitted(module)
            call = getattr(model, method)
            self.calls.append(lambda call=call, row=row: call(row))

    def track_overhead_ratio(self, method):
        ours, theirs = median_seconds(self.calls, repeat=15)
        return ours / theirs

    def time_fastbp(self, method):
        self.calls[0]()

    def time_sklearn(self, method):
        self.calls[1]()


class SparseText:
    """``MLPClassifier(hidden_layer_sizes=(100,))`` with Adam for 2 epochs on a CSR
    matrix of 4000 rows x 20 000 features at 0.1 % (20 classes), one thread:
    fastbp on it, scikit-learn on it, and fastbp on ``X.toarray()``.
    ``tools/sparse.py`` runs the full-size problem (20 000 x 50 000, 10 epochs)
    that the README reports."""

    params = [["fastbp", "sklearn", "fastbp-dense"]]
    param_names = ["impl"]
    number, repeat, timeout = 1, 3, 600

    def setup(self, impl):
        require("sklearn-mlp")
        use_threads(1)
        if impl == "sklearn":
            from sklearn.neural_network import MLPClassifier
        else:
            from fastbp.sklearn import MLPClassifier
        X, self.y = sparse_text(4000, 20_000)
        self.X = X.toarray() if impl == "fastbp-dense" else X
        self.model = MLPClassifier(hidden_layer_sizes=(100,), max_iter=2, tol=0.0,
                                   n_iter_no_change=3, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.fit(self.X[:400], self.y[:400])  # the first calls

    def time_fit(self, impl):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.fit(self.X, self.y)
