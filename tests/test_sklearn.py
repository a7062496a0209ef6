"""fastbp.sklearn: scikit-learn's estimator checks, labels of every kind, and the
same training as sklearn.neural_network's MLPs from the same settings."""

import pickle
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Stopping at max_iter warns, as it should; the checks train on tiny data sets.
no_convergence_warning = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")
# The interface checks train hundreds of networks: with the kernels run as plain
# Python they take minutes, and they test the estimator, which the compiled run covers.
compiled_only = pytest.mark.skipif(numba.config.DISABLE_JIT,
                                   reason="trains many networks; run with the compiler")


@compiled_only
@no_convergence_warning
@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# scikit-learn checks its own MLPs' weights with lbfgs (the classifier) and sgd (the
# regressor): integer weights equal repeated rows for full batches, which the
# checks' small data sets make of sgd's and adam's too.
@compiled_only
@no_convergence_warning
@pytest.mark.parametrize("estimator", [
    MLPClassifier(solver="lbfgs"), MLPRegressor(solver="lbfgs"),
    MLPRegressor(solver="sgd", tol=1e-2, random_state=42),
    MLPClassifier(solver="sgd", tol=1e-2, random_state=42),
], ids=["classifier-lbfgs", "regressor-lbfgs", "regressor-sgd", "classifier-sgd"])
def test_sample_weights_equal_repeated_rows_as_sklearn_checks_them(estimator):
    check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)


#: fastbp's parameters that scikit-learn's MLPs do not take
FASTBP_EXTRAS = ("dtype", "class_weight")


def _blobs(n=120, n_classes=3, seed=0):
    X, y = make_classification(n_samples=n, n_features=5, n_informative=4, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, class_sep=2.0,
                               random_state=seed)
    return X, y


@no_convergence_warning
@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog"]),
    np.array(["a", "b", "c"]),
    np.array([False, True]),
    np.array([-3, 7, 11, 40]),
])
def test_labels_of_any_type(labels):
    X, codes = _blobs(n_classes=len(labels))
    y = labels[codes]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    assert clf.out_activation_ == ("logistic" if len(labels) == 2 else "softmax")
    assert clf.n_outputs_ == (1 if len(labels) == 2 else len(labels))
    pred = clf.predict(X)
    assert pred.dtype == y.dtype and set(pred) <= set(labels)
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))


@no_convergence_warning
def test_multilabel_indicator_targets_get_one_sigmoid_per_label():
    X, codes = _blobs(n=150, n_classes=3)
    Y = np.stack([codes == 0, codes != 1, codes == 2], axis=1).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    pred = clf.predict(X)
    assert pred.shape == Y.shape and set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    assert clf.score(X, Y) > 0.9  # every label of a row right


def test_dataframe_input_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = _blobs()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    with pytest.warns(ConvergenceWarning):
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
        reg.fit(frame, pd.Series(y.astype(float)))
    np.testing.assert_array_equal(reg.feature_names_in_, frame.columns)
    assert reg.n_features_in_ == X.shape[1]
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_array = reg.predict(X)
    np.testing.assert_array_equal(reg.predict(frame), from_array)
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(frame.rename(columns={"f0": "other"}))


@no_convergence_warning
def test_pipeline_grid_search_and_cross_validation():
    X, y = _blobs(n=90)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=50, random_state=0))
    search = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (8,)],
                                 "mlpclassifier__alpha": [1e-4, 1e-2]}, cv=3)
    search.fit(X, y)
    assert set(search.best_params_) == {"mlpclassifier__hidden_layer_sizes",
                                        "mlpclassifier__alpha"}
    scores = cross_val_score(MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs",
                                          max_iter=100, random_state=0),
                             X, X @ np.arange(1.0, 6.0), cv=3)
    assert scores.shape == (3,) and (scores > 0.9).all()


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("shuffle", [False, True])
def test_partial_fit_equals_fit_over_the_same_epochs(Estimator, shuffle):
    X, y = _blobs(n=100)
    params = dict(hidden_layer_sizes=(7, 5), solver="sgd", batch_size=30, shuffle=shuffle,
                  random_state=3, learning_rate_init=0.05, n_iter_no_change=100)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        whole = Estimator(max_iter=6, **params).fit(X, y)
    step = Estimator(**params)
    for _ in range(6):
        # a fitted estimator also survives pickling between the epochs
        step = pickle.loads(pickle.dumps(step.partial_fit(X, y, classes=np.unique(y))
                                         if Estimator is MLPClassifier else
                                         step.partial_fit(X, y)))
    assert step.n_iter_ == 1 and whole.n_iter_ == 6 == len(step.loss_curve_)  # sklearn's counts
    np.testing.assert_allclose(step.loss_curve_, whole.loss_curve_, rtol=1e-12)
    for a, b in zip(step.coefs_ + step.intercepts_, whole.coefs_ + whole.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(step.predict(X), whole.predict(X))


def test_partial_fit_api():
    X, y = _blobs()
    with pytest.raises(ValueError, match="classes must be passed"):
        MLPClassifier(solver="sgd").partial_fit(X, y)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, y)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPRegressor(solver="adam"), "partial_fit")
    clf = MLPClassifier(hidden_layer_sizes=(4,)).partial_fit(X, y, classes=[0, 1, 2, 9])
    assert clf.predict_proba(X).shape == (len(X), 4)  # classes not seen yet count too
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(X, y + 20)


def _sklearn_twin(ours, **extra):
    """sklearn.neural_network's estimator with the same parameters."""
    params = {k: val for k, val in ours.get_params().items() if k not in FASTBP_EXTRAS}
    twin = getattr(neural_network, type(ours).__name__)
    return twin(**{**params, **extra})


@no_convergence_warning
@pytest.mark.parametrize("Estimator, task", [
    (MLPClassifier, "binary"), (MLPClassifier, "multiclass"), (MLPClassifier, "multilabel"),
    (MLPRegressor, "one output"), (MLPRegressor, "two outputs"),
])
@pytest.mark.parametrize("solver, schedule", [
    ("sgd", {}),  # Nesterov's momentum, scikit-learn's default
    ("sgd", {"nesterovs_momentum": False}),
    ("sgd", {"learning_rate": "invscaling", "power_t": 0.3, "learning_rate_init": 0.05}),
    ("adam", {}),
])
def test_same_steps_as_sklearn(Estimator, task, solver, schedule):
    """Same initial weights, batches (no shuffling; 120 rows in batches of 40 so
    every batch gets sklearn's L2 scaling) and update rules as sklearn: the same
    weights and losses after a few epochs, up to rounding."""
    X, codes = _blobs(n=120, n_classes=3)
    y = {"binary": codes == 1, "multiclass": codes,
         "multilabel": np.stack([codes == 0, codes != 2], axis=1).astype(int),
         "one output": X @ np.arange(5.0), "two outputs": X[:, :2] * [1.0, -2.0]}[task]
    # Adam's epsilon sits where sklearn's weighs 1 / sqrt(1 - beta_2**t) less: a tiny
    # one keeps that from mattering
    ours = Estimator(hidden_layer_sizes=(6, 4), solver=solver, alpha=0.3, batch_size=40,
                     learning_rate_init=0.01, max_iter=8, shuffle=False, random_state=1,
                     activation="tanh", epsilon=1e-14).set_params(**schedule)
    ours.fit(X, y)
    twin = _sklearn_twin(ours).fit(X, y)
    rtol = 1e-10 if solver == "sgd" else 1e-6
    if task != "two outputs":  # there sklearn's reported loss averages over the outputs
        np.testing.assert_allclose(ours.loss_curve_, twin.loss_curve_, rtol=rtol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, twin.coefs_ + twin.intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


@no_convergence_warning
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("early_stopping, schedule", [
    (False, "constant"), (True, "constant"), (False, "adaptive"), (True, "adaptive")])
def test_stops_as_sklearn(Estimator, early_stopping, schedule):
    """The same validation split, scores, losses and stopping epoch as sklearn, and
    with early stopping the weights of the best epoch kept."""
    X, codes = _blobs(n=200, n_classes=2, seed=4)
    y = codes if Estimator is MLPClassifier else X @ np.arange(5.0) + 0.5 * codes
    ours = Estimator(hidden_layer_sizes=(5,), solver="sgd", early_stopping=early_stopping,
                     validation_fraction=0.2, batch_size=20, shuffle=False, max_iter=150,
                     n_iter_no_change=4, tol=1e-3, learning_rate_init=0.02, random_state=0,
                     activation="logistic", learning_rate=schedule)
    ours.fit(X, y)
    twin = _sklearn_twin(ours).fit(X, y)
    assert ours.n_iter_ == twin.n_iter_ < 150
    assert ours.t_ == twin.t_
    np.testing.assert_allclose(ours.loss_curve_, twin.loss_curve_, rtol=1e-10)
    if early_stopping:
        assert len(ours.validation_scores_) == ours.n_iter_ and ours.best_loss_ is None
        np.testing.assert_allclose(ours.validation_scores_, twin.validation_scores_, rtol=1e-8)
        assert ours.best_validation_score_ == max(ours.validation_scores_)
    else:
        assert ours.validation_scores_ is None
        assert ours.best_loss_ == min(ours.loss_curve_) == pytest.approx(twin.best_loss_)
    np.testing.assert_allclose(ours.predict(X), twin.predict(X), rtol=1e-7, atol=1e-9)


def test_lbfgs():
    X, y = make_regression(n_samples=80, n_features=4, noise=1.0, random_state=0)
    # tol (scikit-learn's default) stops it by the gradient after about 60 iterations
    # on any CPU; scipy's ftol alone took 416 to 560, as the CPU's rounding fell
    reg = MLPRegressor(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=500, tol=1e-4,
                       random_state=0).fit(X, y / 100)
    assert reg.score(X, y / 100) > 0.99
    assert 1 <= reg.n_iter_ == len(reg.loss_curve_) <= 500
    assert reg.best_loss_ == min(reg.loss_curve_) <= reg.loss_curve_[0]
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPRegressor(solver="lbfgs", max_iter=2, random_state=0).fit(X, y / 100)
    # each iteration takes at least one evaluation, and the first is before them
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        reg = MLPRegressor(solver="lbfgs", max_fun=5, random_state=0).fit(X, y / 100)
    assert reg.n_iter_ <= 5


def _sklearn_gradient(est, X, Y):
    """The largest component of the gradient of scikit-learn's lbfgs objective (mean
    loss plus ``alpha / (2n) * sum(W**2)``) at ``est``'s weights; relu hidden layers,
    an identity or logistic output, for which the output delta is ``P - Y``."""
    n = X.shape[0]
    acts = [X]
    for W, b in zip(est.coefs_[:-1], est.intercepts_[:-1]):
        acts.append(np.maximum(acts[-1] @ W + b, 0.0))
    out = acts[-1] @ est.coefs_[-1] + est.intercepts_[-1]
    if est.out_activation_ == "logistic":
        out = 1.0 / (1.0 + np.exp(-out))
    delta = (out - Y) / n
    largest = 0.0
    for i in reversed(range(len(est.coefs_))):
        grad_W = acts[i].T @ delta + est.alpha * est.coefs_[i] / n
        largest = max(largest, np.abs(grad_W).max(), np.abs(delta.sum(axis=0)).max())
        delta = (delta @ est.coefs_[i].T) * (acts[i] > 0)
    return largest


@pytest.mark.parametrize("Estimator", [MLPRegressor, MLPClassifier])
def test_lbfgs_stops_by_tol_as_sklearn(Estimator):
    """From the same initial weights, fastbp and sklearn both stop at the first
    iterate whose gradient, in scikit-learn's units, is within ``tol`` (every one
    before is over 1.5 tol, the last under 0.95 tol)."""
    X, codes = _blobs(n=120, n_classes=2, seed=1)
    y = X @ np.arange(1.0, 6.0) / 10 if Estimator is MLPRegressor else codes
    Y = y.reshape(len(y), 1).astype(float)
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", alpha=0.01, tol=1e-2,
                  max_iter=400, random_state=0)
    for est in (Estimator(**params), _sklearn_twin(Estimator(**params))):
        est.fit(X, y)
        assert 2 <= est.n_iter_ < 400
        assert _sklearn_gradient(est, X, Y) <= est.tol
        for stop in range(1, est.n_iter_):
            with pytest.warns(ConvergenceWarning):
                before = clone(est).set_params(max_iter=stop).fit(X, y)
            assert _sklearn_gradient(before, X, Y) > est.tol, stop


@compiled_only
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_digits_accuracy_matches_sklearn():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    params = dict(hidden_layer_sizes=(64,), solver="adam", max_iter=50, random_state=0)
    ours = MLPClassifier(**params).fit(X_train, y_train).score(X_test, y_test)
    theirs = neural_network.MLPClassifier(**params).fit(X_train, y_train).score(X_test, y_test)
    assert ours >= theirs - 0.01, (ours, theirs)


@no_convergence_warning
def test_float32():
    X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, dtype=np.float32,
                       random_state=0).fit(X, y)
    assert all(W.dtype == np.float32 for W in reg.coefs_ + reg.intercepts_)
    assert reg.predict(X).dtype == np.float32
    assert reg.predict(X).shape == (60,)
    # by default the dtype follows the input, as scikit-learn's does
    for dtype, want in ((np.float32, np.float32), (np.float64, np.float64), (int, np.float64)):
        ours = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
        ours.fit(X.astype(dtype), y)
        theirs = _sklearn_twin(ours).fit(X.astype(dtype), y)
        assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == want
        assert ours.predict(X.astype(dtype)).dtype == theirs.predict(X.astype(dtype)).dtype
        ours.partial_fit(X, y)  # float64 rows: a continued fit keeps its dtype
        assert ours.coefs_[0].dtype == want


@pytest.mark.parametrize("params", [
    dict(hidden_layer_sizes=(3, 0)), dict(hidden_layer_sizes="big"), dict(activation="sigmoid"),
    dict(solver="bfgs"), dict(alpha=-1.0), dict(batch_size=0), dict(batch_size="all"),
    dict(learning_rate_init=0.0), dict(max_iter=2.5), dict(momentum=1.5), dict(beta_1=1.0),
    dict(epsilon=0.0), dict(n_iter_no_change=0), dict(shuffle="yes"), dict(dtype=np.int64),
    dict(solver="lbfgs", max_fun=0), dict(solver="lbfgs", max_fun=2.0),
    dict(solver="lbfgs", tol=-1e-4), dict(solver="lbfgs", tol="small"),
    dict(learning_rate="optimal"), dict(power_t=-0.5), dict(warm_start=1),
    dict(nesterovs_momentum="yes"),
])
def test_invalid_parameters_are_refused_at_fit(params):
    X, y = _blobs(n=20)
    clf = MLPClassifier(**params)  # constructing never validates (sklearn's convention)
    with pytest.raises(ValueError):
        clf.fit(X, y)


def test_assigned_coefficients_are_used():
    X, y = _blobs(n=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0).fit(X, y)
    reg.coefs_ = [np.zeros_like(W) for W in reg.coefs_]
    np.testing.assert_allclose(reg.predict(X), reg.intercepts_[-1][0])


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_verbose_prints_each_iteration(solver, capsys):
    X, y = _blobs(n=30)
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(3,), solver=solver, max_iter=3, verbose=True,
                      early_stopping=solver == "sgd", random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines if line.startswith("Iteration")] == [
        "Iteration 1", "Iteration 2", "Iteration 3"]
    assert sum(line.startswith("Validation score: ") for line in lines) == (solver == "sgd") * 3


def test_import_fastbp_does_not_import_sklearn():
    code = "import sys, fastbp; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@no_convergence_warning
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_warm_start_as_sklearn(Estimator, solver):
    """A warm-started fit goes on from the weights, epochs, rows seen and losses of
    the fit before, with a fresh optimizer: scikit-learn's steps."""
    X, codes = _blobs(n=120, n_classes=3)
    y = codes if Estimator is MLPClassifier else X @ np.arange(5.0)
    ours = Estimator(hidden_layer_sizes=(6,), solver=solver, batch_size=40, max_iter=4,
                     shuffle=False, random_state=3, learning_rate_init=0.01,
                     learning_rate="invscaling", warm_start=True, epsilon=1e-14)
    twin = _sklearn_twin(ours)
    for model in (ours, twin):
        model.fit(X, y)
        model.set_params(max_iter=3).fit(X, y)
    assert ours.n_iter_ == twin.n_iter_ == 3 and ours.t_ == twin.t_ == 7 * 120
    assert len(ours.loss_curve_) == 7
    np.testing.assert_allclose(ours.loss_curve_, twin.loss_curve_, rtol=1e-7)
    for a, b in zip(ours.coefs_ + ours.intercepts_, twin.coefs_ + twin.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-7 * np.abs(b).max())
    cold = clone(ours).set_params(warm_start=False).fit(X, y)
    assert cold.n_iter_ == 3 == len(cold.loss_curve_) and cold.t_ == 3 * 120


def test_warm_start_refuses_other_classes_as_sklearn():
    X, codes = _blobs(n=60, n_classes=3)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, codes)
        with pytest.raises(ValueError, match="warm_start can only be used where `y` has "
                                             "the same classes"):
            clf.fit(X, np.where(codes == 2, 5, codes))


@no_convergence_warning
def test_partial_fit_carries_the_schedule_on_as_sklearn():
    X, codes = _blobs(n=80, n_classes=2)
    ours = MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", batch_size=20, shuffle=False,
                         random_state=0, learning_rate="invscaling", power_t=0.4,
                         learning_rate_init=0.1)
    twin = _sklearn_twin(ours)
    for _ in range(4):
        for model in (ours, twin):
            model.partial_fit(X, codes, classes=[0, 1])
    assert ours.t_ == twin.t_ == 4 * 80
    for a, b in zip(ours.coefs_ + ours.intercepts_, twin.coefs_ + twin.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_scikit_learns_signature_and_errors_naming_the_class(Estimator):
    import inspect

    twin = getattr(neural_network, Estimator.__name__)
    ours = inspect.signature(Estimator).parameters
    theirs = inspect.signature(twin).parameters
    extras = [name for name in FASTBP_EXTRAS if name in ours]
    assert list(ours)[: len(theirs)] == list(theirs) and list(ours)[len(theirs):] == extras
    assert extras == (["dtype", "class_weight"] if Estimator is MLPClassifier else ["dtype"])
    for name, p in theirs.items():
        assert ours[name].default == p.default and ours[name].kind == p.kind, name
    with pytest.raises(TypeError, match=f"^{Estimator.__name__}.__init__"):
        Estimator(sample_weights=1)


def test_regressor_loss():
    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    reg = MLPRegressor(loss="squared_error", hidden_layer_sizes=(4,), solver="lbfgs",
                       max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert reg.fit(X, y / 100).predict(X).shape == (40,)
    with pytest.raises(ValueError, match=r"loss must be one of \['poisson', 'squared_error'\]"):
        MLPRegressor(loss="absolute_error").fit(X, y)


@no_convergence_warning
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("outputs", [1, 2])
def test_poisson_takes_sklearns_steps(solver, outputs):
    """loss="poisson": an exp output and half the Poisson deviance, scikit-learn's
    weights and losses from the same settings (counts with zeros among them)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((90, 4))
    y = rng.poisson(np.exp(0.4 * X[:, :outputs] - 0.2)).astype(float)
    assert (y == 0).any()
    y = y.ravel() if outputs == 1 else y
    w = rng.uniform(0.5, 2.0, 90)
    ours = MLPRegressor(loss="poisson", hidden_layer_sizes=(5,), solver=solver, alpha=0.01,
                        batch_size=30, learning_rate_init=0.01, max_iter=6, shuffle=False,
                        random_state=2, activation="tanh", epsilon=1e-14)
    for weights in (None, w):
        # with weights and several batches scikit-learn's L2 term differs (see above)
        ours.set_params(alpha=0.01 if weights is None or solver == "lbfgs" else 0.0)
        ours.fit(X, y, sample_weight=weights)
        twin = _sklearn_twin(ours).fit(X, y, sample_weight=weights)
        assert ours.out_activation_ == twin.out_activation_ == "exp"
        rtol = 1e-6 if solver == "adam" else 1e-9
        for a, b in zip(ours.coefs_ + ours.intercepts_, twin.coefs_ + twin.intercepts_):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
        if solver == "lbfgs":
            assert ours.loss_ == pytest.approx(twin.loss_, rel=rtol)
        elif weights is None:  # weighted, scikit-learn weighs its batches by rows
            np.testing.assert_allclose(ours.loss_curve_, twin.loss_curve_, rtol=rtol)
        np.testing.assert_allclose(ours.predict(X), twin.predict(X), rtol=1e-7)
        assert (ours.predict(X) > 0).all()
    with pytest.raises(ValueError, match="y must not be negative for loss='poisson'"):
        MLPRegressor(loss="poisson").fit(X, -np.abs(y))
    with pytest.raises(ValueError, match="differs from the loss of the previous fit"):
        ours.set_params(warm_start=True, loss="squared_error").fit(X, y)


def test_a_diverging_fit_raises_or_with_early_stopping_keeps_the_best_epoch(monkeypatch):
    from fastbp.kernels import _network as serial

    from fastbp import objective

    real, calls = serial.minibatch_epoch, []

    def diverging(*args):  # the fourth epoch's loss overflows
        calls.append(1)
        loss = real(*args)
        return float("inf") if len(calls) % 10 == 4 else loss

    monkeypatch.setattr(objective, "SLICE_WORK", 10**12)  # one call an epoch
    monkeypatch.setattr(serial, "minibatch_epoch", diverging)
    X, y = make_regression(n_samples=200, n_features=4, random_state=0)
    y = y / 100
    settings = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.01,
                    batch_size=20, max_iter=9, random_state=0)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        MLPRegressor(**settings).fit(X, y)
    calls.clear()
    with pytest.warns(ConvergenceWarning, match="became inf in epoch 4") as record:
        reg = MLPRegressor(early_stopping=True, **settings).fit(X, y)
    assert "best epoch" in str(record[0].message)
    assert np.isnan(reg.loss_curve_[-1]) and np.isnan(reg.validation_scores_[-1])
    assert len(reg.loss_curve_) == len(reg.validation_scores_) == reg.n_iter_ == 4
    assert reg.best_validation_score_ == max(reg.validation_scores_[:3])
    monkeypatch.setattr(serial, "minibatch_epoch", real)
    three = MLPRegressor(early_stopping=True, **{**settings, "max_iter": 3})
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        three.fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), three.predict(X))  # the best of three


@no_convergence_warning
@pytest.mark.parametrize("Estimator, task", [
    (MLPClassifier, "binary"), (MLPClassifier, "multiclass"), (MLPRegressor, "one output")])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("batches", ["one", "three"])
def test_sample_weight_takes_sklearns_steps(Estimator, task, solver, batches):
    """With the same settings and weights, scikit-learn's weights after a few
    epochs (or lbfgs iterations). Its L2 term in a batch is divided by the
    batch's weight, fastbp's by the batch size times the mean weight: the same
    for one batch an epoch, and without an L2 term for any batches."""
    if solver == "lbfgs" and batches == "three":
        pytest.skip("lbfgs takes no batches")
    X, codes = _blobs(n=120, n_classes=3)
    y = {"binary": codes == 1, "multiclass": codes, "one output": X @ np.arange(5.0)}[task]
    w = np.random.default_rng(0).uniform(0.0, 3.0, 120)
    w[:7] = 0.0
    one = batches == "one"
    ours = Estimator(hidden_layer_sizes=(6,), solver=solver, batch_size=120 if one else 40,
                     alpha=0.3 if one else 0.0, learning_rate_init=0.01, max_iter=6,
                     shuffle=False, random_state=1, activation="tanh",
                     epsilon=1e-14).fit(X, y, sample_weight=w)
    twin = _sklearn_twin(ours).fit(X, y, sample_weight=w)
    rtol = 1e-6 if solver == "adam" else 1e-9
    for a, b in zip(ours.coefs_ + ours.intercepts_, twin.coefs_ + twin.intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    if solver == "lbfgs":
        assert ours.loss_ == pytest.approx(twin.loss_, rel=rtol)
    elif batches == "one":  # scikit-learn then records the weighted mean too
        np.testing.assert_allclose(ours.loss_curve_, twin.loss_curve_, rtol=rtol)
    unweighted = clone(ours).fit(X, y)
    assert not np.allclose(unweighted.coefs_[0], ours.coefs_[0])


@no_convergence_warning
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_sample_weight_with_early_stopping_as_sklearn(Estimator):
    """The same split of rows and weights, the validation score weighted as
    scikit-learn's, the same stopping epoch."""
    X, codes = _blobs(n=200, n_classes=2, seed=4)
    y = codes if Estimator is MLPClassifier else X @ np.arange(5.0) + 0.5 * codes
    w = np.random.default_rng(2).integers(0, 4, 200).astype(float)
    ours = Estimator(hidden_layer_sizes=(5,), solver="sgd", early_stopping=True, alpha=0.0,
                     validation_fraction=0.2, batch_size=20, shuffle=False, max_iter=150,
                     n_iter_no_change=4, tol=1e-3, learning_rate_init=0.02, random_state=0,
                     activation="logistic").fit(X, y, sample_weight=w)
    twin = _sklearn_twin(ours).fit(X, y, sample_weight=w)
    assert ours.n_iter_ == twin.n_iter_ < 150
    np.testing.assert_allclose(ours.validation_scores_, twin.validation_scores_, rtol=1e-8)
    np.testing.assert_allclose(ours.predict(X), twin.predict(X), rtol=1e-7, atol=1e-9)


def test_partial_fit_takes_sample_weight():
    X, codes = _blobs(n=90, n_classes=3)
    w = np.random.default_rng(1).uniform(0.5, 2.0, 90)
    ours = MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", batch_size=30, shuffle=False,
                         alpha=0.0, random_state=0)
    twin = _sklearn_twin(ours)
    for est in (ours, twin):
        est.partial_fit(X, codes, w, classes=[0, 1, 2])
        est.partial_fit(X, codes, sample_weight=w)
    for a, b in zip(ours.coefs_, twin.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@no_convergence_warning
@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 5.0, 2: 0.5}])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_class_weight_weighs_each_row_by_its_class(class_weight, solver):
    from sklearn.utils import compute_sample_weight

    X, codes = _blobs(n=150, n_classes=3, seed=2)
    keep = np.r_[np.flatnonzero(codes != 1), np.flatnonzero(codes == 1)[:10]]  # unbalanced
    X, codes = X[keep], codes[keep]
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=20, random_state=0)
    by_class = MLPClassifier(class_weight=class_weight, **params).fit(X, codes)
    w = compute_sample_weight(class_weight, codes)
    by_rows = MLPClassifier(**params).fit(X, codes, sample_weight=w)
    for a, b in zip(by_class.coefs_, by_rows.coefs_):
        np.testing.assert_array_equal(a, b)
    both = MLPClassifier(class_weight=class_weight, **params).fit(X, codes, sample_weight=w)
    squared = MLPClassifier(**params).fit(X, codes, sample_weight=w * w)
    np.testing.assert_allclose(both.coefs_[0], squared.coefs_[0], rtol=1e-12)
    assert not np.allclose(MLPClassifier(**params).fit(X, codes).coefs_[0], by_class.coefs_[0])


def test_class_weight_refusals():
    X, codes = _blobs(n=30)
    with pytest.raises(ValueError, match="class_weight='balanced' is not supported for "
                                         "partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, codes, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="class_weight must be None, 'balanced' or a dict"):
        MLPClassifier(class_weight="even").fit(X, codes)
    with pytest.raises(ValueError, match="sample_weight must not be negative"):
        MLPClassifier().fit(X, codes, sample_weight=-np.ones(30))
