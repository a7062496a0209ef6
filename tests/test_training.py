"""Training: SGD learns, backends agree, seeds reproduce, NaN stops, callbacks work."""

import sys
import warnings

import numpy as np
import pytest

import fastbp
from fastbp.datasets import seed_example


def _sine(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-np.pi, np.pi, (n, 1))
    return X, np.sin(X)


def _unit_sine(n=200, seed=0):
    """Sine targets scaled into [0, 1], the range of the default sigmoid output."""
    X, y = _sine(n, seed)
    return X, (y + 1) / 2


def _xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    return X, np.array([[0], [1], [1], [0]], float)


def test_sgd_learns_a_sine_curve():
    X, y = _sine()
    net = fastbp.Network([1, 16, 1], activation="tanh", output_activation="identity",
                         loss="mse", seed=0)
    net.fit(X, y, epochs=1000, batch_size=16, learning_rate=0.05, momentum=0.9, seed=1)
    assert net.n_iter_ == 1000 and len(net.loss_curve_) == 1000
    assert net.loss_curve_[-1] < 0.01 < net.loss_curve_[0]
    assert net.score(X, y) > 0.98


def test_sgd_learns_xor_with_cross_entropy():
    X, y = _xor()
    net = fastbp.Network([2, 4, 1], activation="tanh", output_activation="sigmoid",
                         loss="cross_entropy", seed=2)
    net.fit(X, y, epochs=1500, batch_size=2, learning_rate=0.5, seed=0)
    assert net.score(X, y) == 1.0
    proba = net.predict_proba(X)
    assert ((proba > 0.5) == (y > 0.5)).all()


@pytest.mark.parametrize("method, options", [
    ("sgd", dict(batch_size=10, learning_rate=0.01, seed=11)),
    ("sgd", dict(batch_size=10, learning_rate=0.01, momentum=0.8, seed=11)),
    ("gd", dict(learning_rate=0.01)),
    ("gd", dict(learning_rate=0.01, momentum=0.8)),
    ("sgd", dict(batch_size=10, learning_rate=0.01, momentum=0.8, nesterov=True, seed=11)),
    ("gd", dict(learning_rate=0.01, momentum=0.8, nesterov=True)),
    ("adam", dict(batch_size=10, learning_rate=0.01, seed=11)),
    ("adam", dict(batch_size=16, learning_rate=0.003, betas=(0.8, 0.99), eps=1e-6, seed=1)),
])
def test_numba_and_numpy_backends_agree(method, options):
    X, y = _sine(97)
    nets = [fastbp.Network([1, 7, 5, 1], activation="tanh", output_activation="identity",
                           l2=0.01, seed=5, backend=b) for b in ("numba", "numpy")]
    for net in nets:
        net.fit(X, y, method=method, epochs=20, **options)
    a, b = (n.get_params() for n in nets)
    assert np.linalg.norm(a - b) <= 1e-10 * np.linalg.norm(b)
    np.testing.assert_allclose(nets[0].loss_curve_, nets[1].loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_seed_same_weights_bit_for_bit(dtype):
    X, y = _unit_sine(64)
    runs = [fastbp.Network([1, 6, 1], dtype=dtype, seed=0).fit(
        X, y, epochs=5, batch_size=8, seed=42).get_params() for _ in range(2)]
    np.testing.assert_array_equal(*runs)
    other = fastbp.Network([1, 6, 1], dtype=dtype, seed=0).fit(X, y, epochs=5, batch_size=8,
                                                               seed=43)
    assert not np.array_equal(runs[0], other.get_params())
    assert runs[0].dtype == dtype


def test_sgd_step_is_the_mean_gradient_of_the_batch():
    # One full-batch step of half_sse: W -= lr * gradient / n.
    X, y = seed_example()
    net = fastbp.Network([2, 3, 1], seed=0)
    p0 = net.get_params()
    _, gW, gb = net.cost_and_gradients(X, y)
    g = np.concatenate([gW[0].ravel(), gb[0], gW[1].ravel(), gb[1]])
    net.fit(X, y, method="gd", epochs=1, learning_rate=0.5)
    np.testing.assert_allclose(net.get_params(), p0 - 0.5 * g / 3, rtol=1e-14)


def test_last_short_batch_is_used():
    X, y = _unit_sine(10)
    a = fastbp.Network([1, 3, 1], seed=0).fit(X, y, epochs=1, batch_size=4, shuffle=False)
    b = fastbp.Network([1, 3, 1], seed=0)
    for s in (slice(0, 4), slice(4, 8), slice(8, 10)):
        J, gW, gb = b.cost_and_gradients(X[s], y[s])
        n = s.stop - s.start
        b.weights = [W - 0.1 * g / n for W, g in zip(b.weights, gW)]
        b.biases = [c - 0.1 * g / n for c, g in zip(b.biases, gb)]
    np.testing.assert_allclose(a.get_params(), b.get_params(), rtol=1e-13)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_divergence_raises_naming_the_epoch_and_keeps_finite_weights(backend):
    X, y = _sine(50)
    X = X * 1e3
    net = fastbp.Network([1, 8, 1], activation="relu", output_activation="identity", seed=0,
                         backend=backend)
    snapshots = []
    with pytest.raises(FloatingPointError, match=r"epoch \d+"):
        net.fit(X, y * 1e3, epochs=200, batch_size=50, learning_rate=10.0,
                callback=lambda n, e, loss: snapshots.append(n.get_params()))
    assert np.isfinite(net.get_params()).all()
    expected = snapshots[-1] if snapshots else None
    if expected is not None:
        np.testing.assert_array_equal(net.get_params(), expected)


def test_callback_can_stop_training_and_sees_each_epoch():
    X, y = _unit_sine(30)
    seen = []
    net = fastbp.Network([1, 4, 1], seed=0)
    net.fit(X, y, epochs=50, callback=lambda n, epoch, loss: seen.append((epoch, loss)) or
            epoch == 3)
    assert [e for e, _ in seen] == [1, 2, 3]
    assert net.n_iter_ == 3 and net.loss_curve_ == [loss for _, loss in seen]


def test_tol_stops_when_progress_stalls():
    X, y = _unit_sine(30)
    net = fastbp.Network([1, 4, 1], seed=0).fit(X, y, epochs=500, learning_rate=1e-6, tol=1e-3)
    assert net.n_iter_ == 2


@pytest.mark.parametrize("method", ["bfgs", "lbfgs"])
def test_bfgs_fits_the_seed_example(method):
    X, y = seed_example()
    net = fastbp.Network([2, 3, 1], bias=False, seed=0)
    from fastbp.datasets import seed_weights

    net.weights = seed_weights()
    net.fit(X, y, method=method, max_iter=500)
    np.testing.assert_allclose(net.predict(X), y, atol=0.01)
    assert net.n_iter_ == len(net.loss_curve_) > 0
    assert net.loss_curve_[-1] < 1e-5


def test_verbose_prints_a_line_per_epoch_without_tqdm(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    X, y = _unit_sine(20)
    fastbp.Network([1, 3, 1], seed=0).fit(X, y, epochs=3, verbose=True)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 3 and "loss" in lines[0]


def test_score_is_r2_for_regression():
    X, y = _sine(40)
    net = fastbp.Network([1, 3, 1], output_activation="identity", seed=0)
    yhat = net.predict(X)
    r2 = 1 - ((y - yhat) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert net.score(X, y) == pytest.approx(r2, rel=1e-12)


def test_score_is_accuracy_for_one_hot_classification():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2))
    labels = (X[:, 0] > 0).astype(int)
    y = np.eye(2)[labels]
    net = fastbp.Network([2, 2], loss="cross_entropy", seed=0)
    expected = np.mean(net.predict_proba(X).argmax(1) == labels)
    assert net.score(X, y) == expected
    with pytest.raises(ValueError, match="sigmoid or softmax output"):
        fastbp.Network([2, 2], output_activation="identity").predict_proba(X)


@pytest.mark.parametrize("activation, bad, good", [
    ("sigmoid", [25.0, 346.0], [0.0, 1.0]),
    ("sigmoid", [-0.5, 0.5], [0.25, 0.5]),
    ("tanh", [-1.5, 0.0], [-1.0, 1.0]),
    ("relu", [-0.1, 3.0], [0.0, 300.0]),
])
def test_targets_the_output_activation_cannot_reach_are_refused(activation, bad, good):
    X = np.array([[0.0], [1.0]])
    net = fastbp.Network([1, 3, 1], output_activation=activation, seed=0)
    for method, options in (("sgd", {"epochs": 1}), ("bfgs", {"max_iter": 1})):
        with pytest.raises(ValueError, match=f"output activation '{activation}'.*identity"):
            net.fit(X, np.array(bad)[:, None], method=method, **options)
    net.fit(X, np.array(good)[:, None], epochs=1)
    fastbp.Network([1, 3, 1], output_activation="identity").fit(X, np.array(bad)[:, None],
                                                                epochs=1)


def test_bfgs_stopping_at_max_iter_warns_and_says_it_did_not_converge():
    X, y = seed_example()
    net = fastbp.Network([2, 3, 1], seed=0)
    with pytest.warns(fastbp.ConvergenceWarning, match="max_iter=3"):
        net.fit(X, y, method="lbfgs", max_iter=3)
    assert net.converged_ is False and net.n_iter_ == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.fit(X, y, method="bfgs", max_iter=1000)
    assert net.converged_ is True


@pytest.mark.parametrize("method", ["bfgs", "lbfgs"])
def test_quasi_newton_tol_is_the_gradient_tolerance(method):
    """They stop at the first iterate whose largest gradient component is within
    ``tol`` (scipy's gtol); L-BFGS-B's ftol, left at scipy's, stops it far later."""
    X, y = _sine(60)
    tol = 1e-2

    def fit(**options):
        net = fastbp.Network([1, 6, 1], activation="tanh", output_activation="identity",
                             loss="mse", seed=0)
        net.fit(X, y, method=method, tol=tol, **options)
        return net, np.abs(net.optimization_result_.jac).max()

    net, grad = fit()
    assert net.converged_ is True and grad <= tol
    with pytest.warns(fastbp.ConvergenceWarning, match=f"max_iter={net.n_iter_ - 1}"):
        before, grad_before = fit(max_iter=net.n_iter_ - 1)
    assert before.converged_ is False and grad_before > tol


def test_lbfgs_max_fun_limits_the_evaluations():
    X, y = _sine(60)
    net = fastbp.Network([1, 6, 1], activation="tanh", output_activation="identity",
                         loss="mse", seed=0)
    with pytest.warns(fastbp.ConvergenceWarning, match="max_fun=5"):
        net.fit(X, y, method="lbfgs", max_fun=5, max_iter=1000)
    result = net.optimization_result_
    # scipy ends the iteration that passes max_fun: each takes one evaluation or more
    assert net.converged_ is False and result.status == 1
    assert 5 < result.nfev and net.n_iter_ <= 5


def test_sgd_out_of_epochs_before_tol_warns():
    X, y = _unit_sine(30)
    net = fastbp.Network([1, 4, 1], seed=0)
    with pytest.warns(fastbp.ConvergenceWarning, match="epochs=3"):
        net.fit(X, y, epochs=3, learning_rate=1.0, tol=1e-12)
    assert net.converged_ is False
    net.fit(X, y, epochs=3)
    assert net.converged_ is None  # no tol: nothing to meet


def test_bfgs_progress_counts_iterations(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the plain-print fallback
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = seed_example()
    fastbp.Network([2, 3, 1], seed=0).fit(X, y, method="bfgs", verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(ln.startswith("iteration ") for ln in lines)


def test_score_on_multi_label_targets_is_whole_row_accuracy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    net = fastbp.Network([3, 3], loss="cross_entropy", seed=0)
    labels = (net.predict(X) >= 0.5).astype(float)  # every label predicted right
    assert (labels.sum(axis=1) > 1).any()  # several labels in some rows
    assert net.score(X, labels) == 1.0
    labels[:10, 0] = 1 - labels[:10, 0]  # one wrong label in each of 10 rows
    assert net.score(X, labels) == 0.75
    with pytest.raises(ValueError, match="0/1 targets"):
        net.score(X, np.full((40, 3), 0.3))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("loss", ["half_sse", "mse"])
def test_loss_curve_is_gathered_from_the_steps_without_another_pass(backend, loss, monkeypatch):
    X, y = _unit_sine(40)
    net = fastbp.Network([1, 5, 1], loss=loss, l2=0.01, seed=0, backend=backend)
    before = net.cost(X, y)
    for engine in fastbp.objective.ENGINES.values():  # what a full-data evaluation calls
        for name in ("cost", "forward"):
            monkeypatch.setattr(engine, name, lambda *a, **k: pytest.fail("extra pass"))
    net.fit(X, y, method="gd", epochs=2, learning_rate=0.1)
    monkeypatch.undo()
    # full batch: the first epoch's loss is the cost at the weights it stepped from
    assert net.loss_curve_[0] == pytest.approx(before, rel=1e-12)
    # mini-batches: each batch's cost at its own starting weights, in cost()'s units
    net = fastbp.Network([1, 5, 1], loss=loss, l2=0.01, seed=0, backend=backend)
    replay = fastbp.Network([1, 5, 1], loss=loss, l2=0.01, seed=0, backend=backend)
    net.fit(X, y, epochs=1, batch_size=16, shuffle=False, learning_rate=0.1)
    expected = 0.0
    for rows in (slice(0, 16), slice(16, 32), slice(32, 40)):
        m = rows.stop - rows.start
        J = replay.cost(X[rows], y[rows])
        l2_term = 0.005 * sum(np.sum(W * W) for W in replay.weights)
        expected += (J - l2_term) * (1 if loss == "half_sse" else m / 40) + l2_term * m / 40
        scale = 1 / m if loss == "half_sse" else 1.0
        _, gW, gb = replay.cost_and_gradients(X[rows], y[rows])
        # cost_and_gradients adds l2 * W unscaled; the data part is what gets scaled
        replay.weights = [W - 0.1 * ((g - 0.01 * W) * scale + 0.01 * W)
                          for W, g in zip(replay.weights, gW)]
        replay.biases = [c - 0.1 * g * scale for c, g in zip(replay.biases, gb)]
    assert net.loss_curve_[0] == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(net.get_params(), replay.get_params(), rtol=1e-10)
