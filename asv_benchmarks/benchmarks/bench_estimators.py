"""fastbp.sklearn against sklearn.neural_network where users call them: the
per-call cost of ``predict`` and ``predict_proba`` on one row (scikit-learn's
input validation included, as both pay it), fitted on digits, one thread each.
``track_overhead_ratio`` is fastbp's median time over scikit-learn's, measured
in the same process sample for sample (at most 1 wanted)."""

import warnings

from .common import median_seconds, use_threads
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
