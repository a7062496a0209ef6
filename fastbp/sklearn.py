"""scikit-learn estimators trained by fastbp: :class:`MLPClassifier` and :class:`MLPRegressor`.

They take the parameters of ``sklearn.neural_network``'s estimators of the same
names (where fastbp has the feature), start from the same initial weights for
the same ``random_state``, and step with the same update rules, so the fitted
models are close to scikit-learn's; the class docstrings list where they differ.
This is the only fastbp module that imports scikit-learn.
"""

import numbers
import threading
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d, compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import reference, threads
from .kernels import _validation as v
from .network import Network
from .training import ConvergenceWarning as FastbpConvergenceWarning

__all__ = ["MLPClassifier", "MLPRegressor"]

#: scikit-learn's activation names -> fastbp's
ACTIVATIONS = {"logistic": "sigmoid", "tanh": "tanh", "relu": "relu", "identity": "identity"}
#: fastbp's output activations -> scikit-learn's ``out_activation_`` names
OUT_ACTIVATIONS = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity",
                   "exp": "exp"}
SOLVERS = ("sgd", "adam", "lbfgs")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: MLPRegressor's ``loss`` -> (fastbp's loss, its output activation, fastbp's
#: loss divided by scikit-learn's)
REGRESSION_LOSSES = {"squared_error": ("mse", "identity", 2.0),
                     "poisson": ("poisson", "exp", 1.0)}
#: sgd with ``learning_rate="adaptive"`` stops once its step is at most this
#: (scikit-learn's ``SGDOptimizer.trigger_stopping``)
ADAPTIVE_MIN_STEP = 1e-6
#: the scipy.sparse formats taken as they are (others become CSR, as in scikit-learn)
SPARSE_FORMATS = ("csr", "csc")
#: rows per block of a prediction: bounds the memory of the hidden activations
PREDICT_ROWS = 4096

_COMMON_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units of each hidden layer; ``()`` for none.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Hidden-layer activation (``"logistic"`` is fastbp's ``"sigmoid"``).
    solver : {"adam", "sgd", "lbfgs"}, default="adam"
    alpha : float, default=1e-4
        L2 penalty as scikit-learn scales it: ``0.5 * alpha * sum(W**2) / m`` added
        to the mean loss of a batch of ``m`` rows (all rows for lbfgs). fastbp's
        ``l2`` is not divided by the batch, so it is set to ``alpha / batch_size``
        (``alpha / n_samples`` for lbfgs); the one difference is a last, smaller
        batch of an epoch, which gets ``alpha / batch_size`` instead of ``alpha / m``.
        With ``sample_weight`` scikit-learn divides by the weights' sum instead:
        lbfgs does the same, sgd and adam divide by ``batch_size`` times the
        rows' mean weight (the same for one batch an epoch, and where each
        batch's weights average the whole data's).
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)``; larger values are clipped, with a
        warning. Not used by lbfgs.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        sgd's step schedule, as scikit-learn's: ``"invscaling"`` sets the step
        to ``learning_rate_init / (t_ + 1) ** power_t`` after each epoch;
        ``"adaptive"`` keeps it until the stopping rule (see ``tol``) fires,
        then divides it by 5 instead of stopping, and stops once it is at most
        1e-6. A fresh ``fit`` (also with ``warm_start``) starts again from
        ``learning_rate_init``; ``partial_fit`` carries the step on.
    learning_rate_init : float, default=1e-3
        The initial step size of sgd and the step size of adam.
    power_t : float, default=0.5
        The exponent of ``"invscaling"``.
    max_iter : int, default=200
        Epochs for sgd and adam, iterations for lbfgs.
    shuffle : bool, default=True
        Shuffle the rows each epoch (sgd, adam).
    random_state : int, RandomState or None, default=None
        Draws the initial weights exactly as scikit-learn's MLP does (Glorot
        uniform), then the early-stopping split as it does, then the seed of
        fastbp's shuffling generator; the shuffled order is not scikit-learn's.
    tol : float, default=1e-4
        sgd and adam stop once the training loss (or, with ``early_stopping``,
        the validation score) has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs in a row: scikit-learn's rule. lbfgs stops
        once no component of the gradient of scikit-learn's loss (mean loss plus
        the L2 term) exceeds ``tol``: scipy's ``gtol``, as scikit-learn passes it.
    verbose : bool, default=False
        Print the loss (and validation score) after each epoch or iteration.
    warm_start : bool, default=False
        ``fit`` starts from the weights of the previous fit (of the same classes)
        and carries on ``n_iter_``, ``t_``, ``loss_curve_`` and the stopping
        rule's records; the optimizer starts afresh, as in scikit-learn.
    momentum : float, default=0.9
        sgd's momentum, in [0, 1).
    nesterovs_momentum : bool, default=True
        Nesterov's momentum (scikit-learn's form) rather than the classical one.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified for a single
        label column, as scikit-learn does), stop on the validation score
        (:meth:`score`) and keep the weights of the best epoch. sgd and adam only.
        A loss that becomes non-finite then ends the fit with a ConvergenceWarning,
        the diverged epoch recorded (NaN loss and score) and the best epoch's
        weights kept, as scikit-learn keeps them; without early stopping it
        raises scikit-learn's ValueError (non-finite weights).
    validation_fraction : float, default=0.1
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates, in [0, 1).
    epsilon : float, default=1e-8
        Adam's epsilon. fastbp adds it to the bias-corrected root of the second
        moment (as PyTorch does), scikit-learn to the uncorrected one: the same
        step up to a term of the order of ``epsilon``.
    n_iter_no_change : int or numpy.inf, default=10
    max_fun : int, default=15000
        lbfgs stops after this many loss evaluations (scipy's ``maxfun``).
    dtype : None, numpy.float64 or numpy.float32, default=None
        The dtype of the network: inputs are cast to it, weights are kept in it.
        None follows the input as scikit-learn does: float32 ``X`` trains (and
        predicts) in float32, any other in float64.

    ``fit(X, y, sample_weight=None)`` and ``partial_fit`` take weights as
    scikit-learn >= 1.7 defines them: the loss of a batch is the weighted mean,
    a weight of 0 drops a row and integer weights equal repeated rows (for
    lbfgs, and for sgd or adam in one batch an epoch); the early-stopping split
    takes the weights along and weights the validation score. ``loss_curve_``
    records each epoch's weighted mean loss (scikit-learn weights each batch's
    mean by its number of rows instead: the same for one batch an epoch).

    ``X`` may be a scipy.sparse matrix or array (CSR or CSC; other formats become
    CSR): it is never densified. The first layer's product and weight gradient
    read its stored entries in compiled code; the passes over sparse input run
    on one thread.
    ``fit`` or ``partial_fit`` while another thread fits the same estimator raises
    a ``RuntimeError``; predicting from several threads at once is safe.
    A KeyboardInterrupt during sgd or adam ends the fit with the weights and
    records of the last completed epoch (with ``early_stopping``, of the best
    one) and a warning, as scikit-learn does; during lbfgs it is raised again,
    the estimator left at the last accepted iterate.
"""

_COMMON_ATTRIBUTES = """
    Attributes
    ----------
    coefs_ : list of ndarray (n_in, n_out)
        Weight matrix of each layer. Predictions read these (and
        ``intercepts_``), so assigning to them changes the model.
    intercepts_ : list of ndarray (n_out,)
    loss_ : float
        The last loss (of the final lbfgs iterate for lbfgs).
    loss_curve_ : list of float
        The loss of each epoch, gathered from its batches, or of each lbfgs
        iterate (scikit-learn has none for lbfgs): mean data loss plus the L2 term.
    best_loss_ : float or None
        The smallest of ``loss_curve_``; None with early stopping, as in
        scikit-learn (see ``best_validation_score_``).
    validation_scores_ : list of float or None
        The validation score after each epoch with early stopping, else None.
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs of the last ``fit`` or ``partial_fit`` call (1 after each
        ``partial_fit``: scikit-learn's count) for sgd and adam, or lbfgs
        iterations. ``loss_curve_`` and ``t_`` go on over ``partial_fit`` calls
        and warm starts.
    t_ : int
        Training rows seen by sgd and adam (rows times epochs): what
        ``"invscaling"`` counts; 0 for lbfgs.
    n_layers_ : int
        Layers including the input and the output layer.
    n_outputs_ : int
    out_activation_ : str
        ``"logistic"``, ``"softmax"`` or ``"identity"``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
"""


class _BaseMLP(BaseEstimator):
    """A fastbp :class:`fastbp.Network` behind scikit-learn's MLP interface.

    Subclasses set ``_loss`` (fastbp's loss) and ``_loss_scale``: fastbp's loss
    divided by scikit-learn's, which rescales ``alpha``, the sgd step, Adam's
    epsilon and lbfgs's gradient tolerance so that the steps are scikit-learn's.
    """

    _loss = None
    _loss_scale = 1.0

    def __init__(self, **params):
        # each estimator's own __init__ names the parameters: scikit-learn reads
        # them from its signature, and errors name the public class
        for name, value in params.items():
            setattr(self, name, value)

    # -- parameters -------------------------------------------------------------

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else sizes
        try:
            sizes = list(sizes)
        except TypeError:
            raise ValueError("hidden_layer_sizes must be an int or a sequence of ints; got "
                             f"{self.hidden_layer_sizes!r}") from None
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                   for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive ints; got {sizes!r}")
        return [int(s) for s in sizes]

    def _check_params(self):
        """Validate the hyperparameters (at fit time, as scikit-learn does), with
        fastbp's own checks; scikit-learn expects a ValueError for every bad one."""
        self._hidden_sizes()
        _param(v.choice, self.activation, "activation", ACTIVATIONS)
        _param(v.choice, self.solver, "solver", SOLVERS)
        _param(v.choice, self.learning_rate, "learning_rate", LEARNING_RATES)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _param(v.positive_int, self.batch_size, "batch_size")
        _param(v.positive_int, self.max_iter, "max_iter")
        _param(v.positive_int, self.max_fun, "max_fun")
        if self.n_iter_no_change != np.inf:
            _param(v.positive_int, self.n_iter_no_change, "n_iter_no_change")
        for name, low, high, low_open in (
                ("alpha", 0.0, None, False), ("learning_rate_init", 0.0, None, True),
                ("power_t", 0.0, None, False),
                ("tol", 0.0, None, False), ("momentum", 0.0, 1.0, False),
                ("validation_fraction", 0.0, 1.0, False), ("beta_1", 0.0, 1.0, False),
                ("beta_2", 0.0, 1.0, False), ("epsilon", 0.0, None, True)):
            _param(v.real_number, getattr(self, name), name, low=low, high=high,
                   low_open=low_open, high_open=high is not None)
        for name in ("shuffle", "early_stopping", "warm_start", "nesterovs_momentum"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if self.dtype is not None:
            _param(v.float_dtype, self.dtype)

    def _fit_dtype(self, reset):
        """The dtype a fit casts X to: ``dtype``, or with None float32 input's own and
        float64 for any other (scikit-learn's rule); a continued fit keeps the
        fitted one."""
        if not reset and hasattr(self, "coefs_"):
            return self.coefs_[-1].dtype
        return (np.float64, np.float32) if self.dtype is None else v.float_dtype(self.dtype)

    # -- fitting ----------------------------------------------------------------

    def _fit(self, X, y, incremental, sample_weight=None):
        with _FITTING:
            if id(self) in _FITTING.ids:
                raise RuntimeError(f"this {type(self).__name__} is being fitted by another "
                                   "thread; an estimator fits in one thread at a time")
            _FITTING.ids.add(id(self))
        try:
            return self._fit_alone(X, y, incremental, sample_weight)
        finally:
            _FITTING.ids.discard(id(self))

    def _fit_alone(self, X, y, incremental, sample_weight):
        self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "_net") or not (incremental or self.warm_start)
        X, Y, class_weights = self._validate_input(X, y, incremental, reset=first)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        if class_weights is not None:
            sample_weight = (class_weights if sample_weight is None
                             else sample_weight * class_weights.astype(X.dtype))
        rs = check_random_state(self.random_state)
        if first:
            self._initialize(X.shape[1], Y.shape[1], rs, X.dtype)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} output columns; this model was fitted "
                             f"with {self.n_outputs_}")
        elif self._net.loss != self._loss:
            raise ValueError(f"loss={self.loss!r} differs from the loss of the previous fit; "
                             "a continued fit (warm_start, partial_fit) keeps its loss")
        else:  # the coefficients may have been assigned to since the last call
            self._net.weights, self._net.biases = self.coefs_, self.intercepts_
        try:
            if self.solver == "lbfgs":
                self._fit_lbfgs(X, Y, sample_weight)
            else:
                self._fit_stochastic(X, Y, sample_weight, rs, incremental,
                                     resume=incremental and not first)
        except KeyboardInterrupt:  # lbfgs: the last accepted iterate's weights
            self._keep_weights()
            raise
        except FloatingPointError as exc:
            raise ValueError(f"Solver produced non-finite parameter weights ({exc}). The "
                             "input data may contain large values and need to be "
                             "preprocessed.") from exc
        self._keep_weights()
        return self

    def _keep_weights(self):
        net = self._net
        self.coefs_ = [W.copy() for W in net.weights]
        self.intercepts_ = [b.copy() for b in net.biases]

    def _keep_curve(self, epochs_before=0):
        """``loss_curve_``, ``n_iter_`` and ``loss_`` from the network's records:
        the curve after that of the fits before a warm start, ``n_iter_`` this
        call's epochs (the network's past ``epochs_before``), as scikit-learn
        counts them."""
        net = self._net
        curve, _ = self._prior_records
        self.loss_curve_ = curve + [loss / self._loss_scale for loss in net.loss_curve_]
        self.n_iter_ = net.n_iter_ - epochs_before
        if self.loss_curve_:
            self.loss_ = self.loss_curve_[-1]

    def _initialize(self, n_features, n_outputs, rs, dtype):
        """A fresh network with scikit-learn's initial weights, and empty records."""
        sizes = [n_features, *self._hidden_sizes(), n_outputs]
        out = self._output_activation()
        self._activations = (ACTIVATIONS[self.activation],) * (len(sizes) - 2) + (out,)
        self._net = Network(sizes, activation=ACTIVATIONS[self.activation],
                            output_activation=out, loss=self._loss, dtype=dtype, seed=0)
        # Glorot uniform, drawn as sklearn.neural_network draws it (float64, then cast)
        factor = 2.0 if self.activation == "logistic" else 6.0
        weights, biases = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(factor / (n_in + n_out))
            weights.append(rs.uniform(-bound, bound, (n_in, n_out)))
            biases.append(rs.uniform(-bound, bound, n_out))
        self._net.weights, self._net.biases = weights, biases
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        self.out_activation_ = OUT_ACTIVATIONS[out]
        self.n_iter_ = self.t_ = 0
        self.loss_curve_ = []
        self._prior_records = ([], [])
        self._no_improvement_count = 0
        stopping_on_score = self.early_stopping and self.solver != "lbfgs"
        self.best_loss_ = None if stopping_on_score else np.inf
        self.validation_scores_ = [] if stopping_on_score else None
        self.best_validation_score_ = -np.inf if stopping_on_score else None

    def _fit_stochastic(self, X, Y, sample_weight, rs, incremental, resume):
        net, scale = self._net, self._loss_scale
        if not resume:  # the network starts its records again: ours go on
            self._prior_records = (list(self.loss_curve_), list(self.validation_scores_ or []))
        epochs_before = net.n_iter_ if resume else 0
        validation = None
        if self.early_stopping:
            # the split scikit-learn makes: stratified for one label column only
            stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
            weights = () if sample_weight is None else (sample_weight,)
            X, X_val, Y, Y_val, *weights = train_test_split(
                X, Y, *weights, random_state=rs, stratify=stratify,
                test_size=self.validation_fraction)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            validation = (X_val, Y_val)
            if weights:  # the validation score is weighted too, as scikit-learn's
                sample_weight, w_val = weights
                validation += (w_val,)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped", stacklevel=4)
            batch_size = min(int(self.batch_size), n)
        # scikit-learn divides a batch's L2 term by the batch's weight: here by
        # batch_size times the rows' mean weight (the same for one batch an epoch)
        mean_weight = 1.0 if sample_weight is None else float(np.mean(sample_weight))
        net.l2 = scale * self.alpha / (batch_size * mean_weight)
        schedule = self.learning_rate if self.solver == "sgd" else "constant"
        if self.solver == "sgd":
            # fastbp's gradient is `scale` times scikit-learn's: shrink the step to match
            options = dict(learning_rate=self.learning_rate_init / scale,
                           momentum=float(self.momentum),
                           nesterov=bool(self.nesterovs_momentum))
        else:  # Adam's step does not scale with the gradient; its epsilon does
            options = dict(learning_rate=self.learning_rate_init,
                           betas=(float(self.beta_1), float(self.beta_2)),
                           eps=self.epsilon * scale)
        if validation is not None:
            options["validation_data"] = validation
            best_params = net.get_params()
        if resume:
            options["resume"] = True  # the optimizer's state and the shuffling stream go on
        else:
            options["seed"] = int(rs.randint(np.iinfo(np.int32).max))
        stopped = []

        def callback(net, epoch, loss):
            # scikit-learn's epoch end: _update_no_improvement_count, the optimizer's
            # iteration_ends (the schedule), then its stopping test
            loss /= scale
            self._report(epoch - epochs_before, loss)
            self.t_ += n
            if validation is not None:
                score = net.validation_scores_[-1]
                if self.verbose:
                    print(f"Validation score: {score:f}", flush=True)
                better = not score < self.best_validation_score_ + self.tol
                if score > self.best_validation_score_:  # the first of equal bests
                    self.best_validation_score_ = score
                    best_params[...] = net.get_params()
            else:
                better = not loss > self.best_loss_ - self.tol
                self.best_loss_ = min(self.best_loss_, loss)
            self._no_improvement_count = 0 if better else self._no_improvement_count + 1
            hyper = net.optimizer_.hyper  # [0]: the step the next epoch takes
            if schedule == "invscaling":
                hyper[0] = self.learning_rate_init / (self.t_ + 1) ** self.power_t / scale
            if self._no_improvement_count > self.n_iter_no_change:
                if schedule == "adaptive" and hyper[0] * scale > ADAPTIVE_MIN_STEP:
                    hyper[0] /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(f"Setting learning rate to {hyper[0] * scale:f}", flush=True)
                elif not incremental:
                    stopped.append(epoch)
                    return True
            return False

        interrupted = False
        try:
            net.fit(X, Y, method=self.solver, epochs=1 if incremental else self.max_iter,
                    batch_size=batch_size, shuffle=bool(self.shuffle), callback=callback,
                    sample_weight=sample_weight, **options)
        except KeyboardInterrupt:  # the net is at its last completed epoch
            warnings.warn("Training interrupted by user.", stacklevel=4)  # scikit-learn's
            interrupted = True
        except FloatingPointError as exc:
            if validation is None:
                raise
            # as scikit-learn: the best epoch's model is kept and the diverged epoch
            # recorded (a NaN loss and score); fastbp stops there rather than going on
            net.loss_curve_.append(float("nan"))
            net.validation_scores_.append(float("nan"))
            net.n_iter_ += 1
            self.t_ += n
            stopped.append(net.n_iter_)
            warnings.warn(f"{exc}: the weights of the best epoch by validation score are "
                          "kept", ConvergenceWarning, stacklevel=4)
        self._keep_curve(epochs_before)
        if validation is not None:
            self.validation_scores_ = self._prior_records[1] + list(net.validation_scores_)
            net.set_params(best_params)  # the weights of the best epoch, as sklearn keeps
        if not incremental and not stopped and not interrupted:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=4)

    def _fit_lbfgs(self, X, Y, sample_weight):
        net, scale = self._net, self._loss_scale
        self._prior_records = ([], [])  # scikit-learn records no lbfgs curve
        # scikit-learn's L2 term is divided by the rows' weight
        weight = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        net.l2 = scale * self.alpha / weight

        def callback(net, iteration, loss):
            self._report(iteration, loss / scale)

        # fastbp's own warning is replaced by scikit-learn's, raised on any failure.
        # fastbp's gradient is `scale` times scikit-learn's: so is the gradient tolerance.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FastbpConvergenceWarning)
                net.fit(X, Y, method="lbfgs", max_iter=self.max_iter, max_fun=self.max_fun,
                        tol=scale * self.tol, callback=callback, sample_weight=sample_weight)
        except KeyboardInterrupt:  # the net is at its last accepted iterate
            self._keep_curve()
            self.best_loss_ = min(self.loss_curve_, default=np.inf)
            raise
        result = net.optimization_result_
        self._keep_curve()
        self.loss_ = float(result.fun) / scale
        self.best_loss_ = min(self.loss_curve_, default=self.loss_)
        if not net.converged_:
            warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) "
                          f"(status={result.status}): {result.message}. Increase the number "
                          "of iterations (max_iter, max_fun) or scale the data.",
                          ConvergenceWarning,
                          stacklevel=4)

    def _report(self, iteration, loss):
        if self.verbose:
            print(f"Iteration {iteration}, loss = {loss:.8f}", flush=True)

    # -- prediction -------------------------------------------------------------

    def _forward(self, X):
        """The network's output (n, n_outputs_) for ``X`` (n, n_features_in_).

        NumPy's forward pass over ``coefs_``: it keeps no scratch buffers (so
        threads can share a fitted estimator) and is as fast as the compiled one,
        both being matrix products.
        """
        check_is_fitted(self)
        dtype = self.coefs_[-1].dtype  # the fitted one, whatever `dtype` says now
        X = validate_data(self, X, dtype=dtype, reset=False, accept_sparse=SPARSE_FORMATS)
        n = X.shape[0]
        if n <= PREDICT_ROWS:
            # BLAS's threads (OpenBLAS's) spin for about 0.1 s after each product
            # they share, taking a core from a threaded fit that follows (GridSearchCV
            # scores, then fits): a prediction that costs less than that holds BLAS
            # to this thread
            if n * sum(W.size for W in self.coefs_) < threads.PARALLEL_MIN_WORK:
                return reference.forward(self.coefs_, self.intercepts_, X, self._activations)
            with threads.large_pass(False):
                return reference.forward(self.coefs_, self.intercepts_, X, self._activations)
        out = np.empty((n, self.n_outputs_), dtype)
        for start in range(0, n, PREDICT_ROWS):
            rows = slice(start, start + PREDICT_ROWS)
            out[rows] = reference.forward(self.coefs_, self.intercepts_, X[rows],
                                          self._activations)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __sklearn_is_fitted__(self):
        # what check_is_fitted asks, without its scan of every attribute
        return hasattr(self, "coefs_")

    def _check_solver(self):
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(f"partial_fit is only available for the stochastic solvers "
                                 f"sgd and adam; solver={self.solver!r}")
        return True


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron classifier trained by fastbp; the cross-entropy
    loss, as ``sklearn.neural_network.MLPClassifier``.

    Labels may be of any type: two classes get one sigmoid output, more classes a
    softmax output over one-hot targets, and a 0/1 indicator matrix (multi-label)
    one sigmoid output per label; the loss is the mean cross-entropy.

    ``class_weight`` : None, "balanced" or dict, default=None is fastbp's own
    parameter (after ``dtype``; scikit-learn's MLP has none), as scikit-learn's
    linear models take it: each row's weight is multiplied by its class's,
    ``{label: weight}`` or ``"balanced"`` (``n_samples / (n_classes *
    count)``, from the labels of the ``fit`` call: not for ``partial_fit``,
    which sees a part of the data), computed by scikit-learn's
    ``compute_sample_weight``.
""" + _COMMON_DOC + _COMMON_ATTRIBUTES + """    classes_ : ndarray (n_classes,)
        The class labels (the label columns for multi-label targets).
"""

    _loss = "cross_entropy"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, class_weight=None):
        super().__init__(**_arguments(locals()))

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "sigmoid"

    def _class_weights(self, y, incremental):
        """Each row's weight from ``class_weight`` (None: no weights)."""
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            if incremental:
                raise ValueError("class_weight='balanced' is not supported for partial_fit: "
                                 "the classes' frequencies of one call are not those of the "
                                 "data; pass class_weight=compute_class_weight('balanced', "
                                 "classes=classes, y=y) as a dict instead")
        elif not isinstance(self.class_weight, dict):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict of class -> "
                             f"weight; got {self.class_weight!r}")
        return compute_sample_weight(self.class_weight, y)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=self._fit_dtype(reset),
                             accept_sparse=SPARSE_FORMATS,
                             reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (reset and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        elif not incremental:  # a warm start
            if set(unique_labels(y)) != set(self.classes_):
                raise ValueError("warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {unique_labels(y)}")
        else:
            unknown = np.setdiff1d(unique_labels(y), self.classes_, assume_unique=True)
            if len(unknown):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {unique_labels(y)}.")
        return (X, self._label_binarizer.transform(y).astype(X.dtype),
                self._class_weights(y, incremental))

    def fit(self, X, y, sample_weight=None):
        """Train on ``X`` (n, n_features), labels ``y`` (n,) or a 0/1 indicator
        matrix (n, n_labels), from fresh weights; ``sample_weight`` (n,) weighs
        the rows (times ``class_weight``'s).

        Returns
        -------
        MLPClassifier
            ``self``, fitted.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X`` (n, n_features), ``y`` (n,), continuing the
        optimizer's state; ``classes`` (all the labels) is needed on the first call.

        Returns
        -------
        MLPClassifier
            ``self``.
        """
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            target = np.asarray(y)
            if type_of_target(target).startswith("multilabel"):
                self._label_binarizer = LabelBinarizer().fit(target)
            else:
                self._label_binarizer = LabelBinarizer().fit(classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                             f"partial_fit, was: {self.classes_!r}")
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Labels for ``X`` (n, n_features): (n,), or (n, n_labels) for multi-label."""
        p = self._forward(X)
        return self._label_binarizer.inverse_transform(p.ravel() if p.shape[1] == 1 else p)

    def predict_proba(self, X):
        """Probabilities (n, n_classes) in the order of ``classes_`` (rows sum to 1
        except for multi-label targets, where each column is one label's)."""
        p = self._forward(X)
        return np.hstack([1 - p, p]) if p.shape[1] == 1 else p

    def predict_log_proba(self, X):
        """``log(predict_proba(X))`` (n, n_classes); ``-inf`` where a probability is 0."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron regressor trained by fastbp: an identity output
    layer and the squared error (or an exp output and the Poisson deviance), as
    ``sklearn.neural_network.MLPRegressor``.

    The loss is half the squared error summed over the outputs, averaged over the
    rows, plus the L2 term: what scikit-learn's gradient minimises. (Its reported
    loss averages over the outputs too; the two agree for one output.) fastbp
    minimises ``loss="mse"``, twice that, and this estimator halves its learning
    rate for sgd, doubles ``alpha``, Adam's ``epsilon`` and lbfgs's ``tol`` to take
    the same steps, and reports ``loss_curve_`` in the units above. scipy's
    ``ftol`` (not a parameter) tests the relative drop of that doubled loss,
    so where it, rather than ``tol``, stops lbfgs, fastbp may iterate longer.

    ``loss`` : {"squared_error", "poisson"}, default="squared_error" is
    scikit-learn's first parameter. ``"poisson"``: an exponential output layer
    (``out_activation_ = "exp"``) and half the Poisson deviance, ``yhat - y
    log(yhat) + y log(y) - y`` summed over the outputs and averaged over the rows,
    as scikit-learn's; the targets must not be negative. Its steps need no
    rescaling.
""" + _COMMON_DOC + _COMMON_ATTRIBUTES

    @property
    def _loss(self):
        return REGRESSION_LOSSES[self.loss][0]

    @property
    def _loss_scale(self):
        return REGRESSION_LOSSES[self.loss][2]

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None):
        super().__init__(**_arguments(locals()))

    def _check_params(self):
        super()._check_params()
        _param(v.choice, self.loss, "loss", REGRESSION_LOSSES)

    def _output_activation(self):
        return REGRESSION_LOSSES[self.loss][1]

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             accept_sparse=SPARSE_FORMATS,
                             dtype=self._fit_dtype(reset), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, np.asarray(y, dtype=X.dtype).reshape(X.shape[0], -1), None

    def fit(self, X, y, sample_weight=None):
        """Train on ``X`` (n, n_features), targets ``y`` (n,) or (n, n_outputs),
        from fresh weights; ``sample_weight`` (n,) weighs the rows.

        Returns
        -------
        MLPRegressor
            ``self``, fitted.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X`` (n, n_features), ``y``, continuing the optimizer's state.

        Returns
        -------
        MLPRegressor
            ``self``.
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Predictions for ``X`` (n, n_features): (n,) for one output, else (n, n_outputs)."""
        p = self._forward(X)
        return p.ravel() if p.shape[1] == 1 else p

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class _Fitting:
    """The estimators being fitted now (by ``id``), under one lock: no lock per
    estimator to keep out of its pickles and clones."""

    def __init__(self):
        self.ids, self._lock = set(), threading.Lock()

    def __enter__(self):
        self._lock.acquire()

    def __exit__(self, *exc):
        self._lock.release()


_FITTING = _Fitting()


def _arguments(names):
    """An estimator's ``__init__`` arguments from its ``locals()``."""
    return {k: val for k, val in names.items() if k not in ("self", "__class__")}


def _param(check, *args, **kwargs):
    """``check`` (a :mod:`fastbp.kernels._validation` function) with its TypeError
    raised as the ValueError scikit-learn's estimator checks expect."""
    try:
        return check(*args, **kwargs)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
