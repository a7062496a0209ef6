"""Sample weights on the Network API, through every engine: row ``i`` counts
``w[i]`` times, so integer weights equal repeated rows, a weight of 0 drops the
row, and weights of 1 change no bit; the compiled passes (serial, threaded,
chunked) equal the reference, which equals central finite differences."""

import numba
import numpy as np
import pytest
from conftest import DTYPES, NETWORK_KINDS, RULE_CASES, TOLERANCES, assert_close, random_targets

import fastbp
from fastbp import objective, threads

BACKENDS = ("numba", "numpy")


@pytest.fixture(params=["serial", "threaded", "chunked"])
def engine(request, monkeypatch):
    """The compiled engine's ways through a pass: serial, threaded (3 threads'
    blocks), and serial in chunks of 4 rows."""
    if request.param == "threaded":
        monkeypatch.setattr(threads, "PARALLEL_MIN_WORK", 1)
        monkeypatch.setattr(threads, "pass_threads", lambda n_rows: 3)
    elif request.param == "chunked":
        monkeypatch.setattr(objective, "CHUNK_ROWS", 4)
    return request.param


def _net(kind, dtype, backend="numba", sizes=(4, 5, 3), l2=0.01):
    hidden, out_act, loss = kind
    return fastbp.Network(list(sizes), activation=hidden, output_activation=out_act,
                          loss=loss, l2=l2, dtype=dtype, seed=2, backend=backend)


def _data(rng, kind, n=23, sizes=(4, 5, 3), dtype=np.float64):
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    y = random_targets(rng, n, sizes[-1], kind[1], kind[2]).astype(dtype)
    w = rng.integers(0, 4, n).astype(dtype)
    w[0] = 2.0  # never all 0
    return X, y, w


def _flat(result):
    """``(J, gradient)`` flat in the order of ``get_params``: per layer W, then b."""
    J, gW, gb = result
    return J, np.concatenate([g.ravel() for pair in zip(gW, gb) for g in pair])


@pytest.mark.parametrize("kind", NETWORK_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_integer_weights_equal_repeated_rows_and_the_reference(kind, dtype, engine, rng):
    X, y, w = _data(rng, kind, dtype=dtype)
    repeated = np.repeat(np.arange(len(w)), w.astype(int))
    compiled, ref = _net(kind, dtype), _net(kind, dtype, "numpy")
    J, g = _flat(compiled.cost_and_gradients(X, y, sample_weight=w))
    J_rep, g_rep = _flat(compiled.cost_and_gradients(X[repeated], y[repeated]))
    J_ref, g_ref = _flat(ref.cost_and_gradients(X, y, sample_weight=w))
    rtol = TOLERANCES[np.dtype(dtype)]["rtol"]
    for J_other, g_other in ((J_rep, g_rep), (J_ref, g_ref)):
        assert J == pytest.approx(J_other, rel=10 * rtol)
        assert_close(g, g_other, dtype)
    assert compiled.cost(X, y, sample_weight=w) == pytest.approx(J, rel=10 * rtol)
    assert ref.cost(X, y, sample_weight=w) == pytest.approx(J, rel=10 * rtol)


@pytest.mark.parametrize("kind", NETWORK_KINDS[::3])
def test_weights_of_one_change_no_bit_and_a_weight_of_zero_drops_the_row(kind, engine, rng):
    X, y, _ = _data(rng, kind)
    net = _net(kind, np.float64)
    J, g = _flat(net.cost_and_gradients(X, y))
    J_one, g_one = _flat(net.cost_and_gradients(X, y, sample_weight=np.ones(len(X))))
    assert J_one == J
    np.testing.assert_array_equal(g_one, g)
    w = np.ones(len(X))
    w[[3, 10]] = 0.0
    kept = np.flatnonzero(w)
    J0, g0 = _flat(net.cost_and_gradients(X, y, sample_weight=w))
    J_kept, g_kept = _flat(net.cost_and_gradients(X[kept], y[kept]))
    assert J0 == pytest.approx(J_kept, rel=1e-12)
    assert_close(g0, g_kept)


@pytest.mark.parametrize("kind", NETWORK_KINDS[::2])
def test_the_weighted_reference_equals_central_finite_differences(kind, rng):
    X, y, w = _data(rng, kind, n=9)
    w = w + rng.random(len(w))  # not integers either
    net = _net(kind, np.float64, "numpy")
    _, g = _flat(net.cost_and_gradients(X, y, sample_weight=w))
    p, h = net.get_params(), 1e-6
    numeric = np.empty_like(p)
    for i in range(p.size):
        step = np.zeros_like(p)
        step[i] = h
        net.set_params(p + step)
        up = net.cost(X, y, sample_weight=w)
        net.set_params(p - step)
        numeric[i] = (up - net.cost(X, y, sample_weight=w)) / (2 * h)
    net.set_params(p)
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8 * np.abs(numeric).max())


@pytest.mark.filterwarnings("ignore::fastbp.ConvergenceWarning")  # lbfgs at max_iter
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method, options", [
    ("gd", dict(epochs=5, learning_rate=0.1)),
    ("lbfgs", dict(max_iter=8)),
])
def test_full_batch_fits_on_integer_weights_equal_fits_on_repeated_rows(backend, method,
                                                                         options, rng):
    kind = ("tanh", "softmax", "cross_entropy")
    X, y, w = _data(rng, kind)
    repeated = np.repeat(np.arange(len(w)), w.astype(int))
    weighted = _net(kind, np.float64, backend).fit(X, y, method, sample_weight=w, **options)
    plain = _net(kind, np.float64, backend).fit(X[repeated], y[repeated], method, **options)
    np.testing.assert_allclose(weighted.get_params(), plain.get_params(), rtol=1e-9,
                               atol=1e-11)
    np.testing.assert_allclose(weighted.loss_curve_, plain.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("method, rule", [case for case in RULE_CASES if not case[1]])
@pytest.mark.parametrize("kind", NETWORK_KINDS[::4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_weighted_epochs_of_the_compiled_engine_equal_the_reference(method, rule, kind, dtype,
                                                                    engine, rng):
    X, y, w = _data(rng, kind, n=41, dtype=dtype)
    w[5:9] = 0.0  # a batch of 4 rows that weighs nothing: its data terms drop out
    fits = [_net(kind, dtype, b).fit(X, y, method, epochs=3, batch_size=4, seed=1,
                                     sample_weight=w, learning_rate=0.05, **rule)
            for b in BACKENDS]
    assert_close(fits[0].get_params(), fits[1].get_params(), dtype)
    np.testing.assert_allclose(fits[0].loss_curve_, fits[1].loss_curve_,
                               rtol=10 * TOLERANCES[np.dtype(dtype)]["rtol"])
    unweighted = _net(kind, dtype).fit(X, y, method, epochs=3, batch_size=4, seed=1,
                                       learning_rate=0.05, **rule)
    assert not np.allclose(unweighted.get_params(), fits[0].get_params())


def test_an_epochs_loss_is_the_weighted_mean_of_its_batches(rng):
    kind = ("sigmoid", "identity", "mse")
    X, y, w = _data(rng, kind, n=12)
    net = _net(kind, np.float64, l2=0.0)
    before = net.get_params()
    net.fit(X, y, "sgd", epochs=1, batch_size=12, shuffle=False, sample_weight=w)
    net.set_params(before)
    assert net.loss_curve_[0] == pytest.approx(net.cost(X, y, sample_weight=w), rel=1e-12)


def test_validation_rows_keep_their_weights(rng):
    kind = ("tanh", "softmax", "cross_entropy")
    X, y, w = _data(rng, kind, n=60)
    net = _net(kind, np.float64)
    net.fit(X, y, "adam", epochs=3, seed=0, validation_data=(X[:20], y[:20], w[:20]),
            sample_weight=w)
    assert net.validation_scores_[-1] == net.score(X[:20], y[:20], sample_weight=w[:20])
    fits = [_net(kind, np.float64).fit(X, y, "sgd", epochs=2, seed=4, sample_weight=w,
                                       validation_fraction=0.25) for _ in range(2)]
    assert fits[0].validation_scores_ == fits[1].validation_scores_
    np.testing.assert_array_equal(fits[0].get_params(), fits[1].get_params())


def test_weighted_score_is_scikit_learns():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    X, w = rng.standard_normal((30, 4)), rng.random(30)
    reg = _net(("tanh", "identity", "mse"), np.float64)
    Y = rng.standard_normal((30, 3))
    assert reg.score(X, Y, sample_weight=w) == pytest.approx(
        sklearn_metrics.r2_score(Y, reg.predict(X), sample_weight=w), rel=1e-12)
    clf = _net(("tanh", "softmax", "cross_entropy"), np.float64)
    labels = rng.integers(0, 3, 30)
    assert clf.score(X, np.eye(3)[labels], sample_weight=w) == pytest.approx(
        sklearn_metrics.accuracy_score(labels, clf.predict(X).argmax(axis=1),
                                       sample_weight=w), rel=1e-12)


@pytest.mark.parametrize("bad, error, match", [
    (np.ones(5), ValueError, r"sample_weight must be a 1-D array of one weight per row \(6\)"),
    (np.ones((6, 1)), ValueError, "sample_weight must be a 1-D array"),
    ([1, 1, np.nan, 1, 1, 1], ValueError, "sample_weight contains NaN"),
    ([1, 1, -1, 1, 1, 1], ValueError, "sample_weight must not be negative"),
    (np.zeros(6), ValueError, "sample_weight must not be all 0"),
    (["a"] * 6, TypeError, "sample_weight must hold real numbers"),
])
@pytest.mark.parametrize("call", ["cost", "cost_and_gradients", "fit", "score", "objective"])
def test_bad_weights_are_refused_naming_the_argument_before_anything_changes(bad, error,
                                                                             match, call, rng):
    net = _net(("tanh", "identity", "mse"), np.float64, sizes=(2, 3, 1))
    X, y = rng.standard_normal((6, 2)), rng.standard_normal((6, 1))
    before = net.get_params()
    with pytest.raises(error, match=match):
        getattr(net, call)(X, y, sample_weight=bad)
    np.testing.assert_array_equal(net.get_params(), before)
    assert not hasattr(net, "loss_curve_") or net.loss_curve_ == []


def test_the_callers_weights_are_neither_written_nor_read_later(rng):
    kind = ("relu", "identity", "half_sse")
    X, y, w = _data(rng, kind)
    net = _net(kind, np.float64)
    kept = w.copy()
    objective_ = net.objective(X, y, sample_weight=w)
    J = objective_.cost()
    w[:] = 0.0
    assert objective_.cost() == J
    net.fit(X, y, "sgd", epochs=2, sample_weight=kept)
    assert kept.min() >= 0 and kept.sum() > 0


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="compiled passes only")
def test_weighted_float32_stays_float32(rng):
    kind = ("sigmoid", "sigmoid", "cross_entropy")
    X, y, w = _data(rng, kind, dtype=np.float32)
    net = _net(kind, np.float32)
    _, gW, gb = net.cost_and_gradients(X, y, sample_weight=w.astype(np.float64))
    assert all(g.dtype == np.float32 for g in gW + gb)
