"""Dask arrays as data (fastbp.dask): the same costs, gradients, outputs and
trained weights as in memory, on a two-process local cluster and on dask's local
scheduler; an iteration on a client as one task per worker thread where the
chunks are; refusals before anything trains; a worker lost mid-fit."""

import os
import subprocess
import sys
import threading
import warnings
from collections import Counter

import numba
import numpy as np
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
import dask.array as da  # noqa: E402

import fastbp  # noqa: E402
from fastbp import dask as fdask  # noqa: E402

#: Uneven row chunks, one of a single row's width in a batch of 8.
CHUNKS = (30, 7, 41, 25)
N = sum(CHUNKS)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        yield client


def _data(n_out=3, seed=0, softmax=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, 4))
    # targets a network can learn: the class of the largest of the first features,
    # or their logistic function
    Z = X[:, :n_out] + 0.3 * rng.standard_normal((N, n_out))
    y = np.eye(n_out)[Z.argmax(axis=1)] if softmax else 1 / (1 + np.exp(-Z))
    return X, y


def _dask(*arrays, chunks=CHUNKS):
    return [da.from_array(a, chunks=(chunks,) + a.shape[1:]) for a in arrays]


def _net(loss="cross_entropy", output="softmax", l2=0.1, **kw):
    return fastbp.Network([4, 5, 3], activation="tanh", output_activation=output, loss=loss,
                          l2=l2, seed=1, **kw)


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


HEADS = [("half_sse", "identity"), ("cross_entropy", "softmax")]


@pytest.mark.parametrize("loss, output", HEADS)
def test_cost_and_gradient_over_uneven_chunks_equal_in_memory(client, loss, output):
    X, y = _data()
    Xd, yd = _dask(X, y)
    net = _net(loss, output)
    J, gW, gb = net.cost_and_gradients(X, y)
    Jd, gWd, gbd = net.cost_and_gradients(Xd, yd)
    assert Jd == pytest.approx(J, rel=1e-12)
    for g, gd in zip(gW + gb, gWd + gbd):
        assert gd.dtype == g.dtype and gd.shape == g.shape
        assert _rel(gd, g) < 1e-12
    assert net.cost(Xd, yd) == pytest.approx(net.cost(X, y), rel=1e-12)
    # the objective, persisted, at other parameters
    objective = net.objective(Xd, yd)
    assert isinstance(objective, fdask.DaskObjective) and objective.n_rows == N
    params = net.get_params() * 0.5
    J2, g2 = objective.cost_and_gradient(params)
    J1, g1 = net.objective(X, y).cost_and_gradient(params)
    assert J2 == pytest.approx(J1, rel=1e-12) and _rel(g2, g1) < 1e-12


def test_an_in_memory_y_is_chunked_like_the_dask_X_and_a_1d_y_is_taken(client):
    X, y = _data(n_out=1, softmax=False)
    (Xd,) = _dask(X)
    net = fastbp.Network([4, 3, 1], loss="mse", l2=0.01, seed=0)
    J, gW, _ = net.cost_and_gradients(X, y)
    for target in (y, y.ravel(), da.from_array(y.ravel(), chunks=CHUNKS)):
        Jd, gWd, _ = net.cost_and_gradients(Xd, target)
        assert Jd == pytest.approx(J, rel=1e-12) and _rel(gWd[0], gW[0]) < 1e-12


def test_float32_gradient_is_float32_and_close(client):
    X, y = _data()
    net = _net(dtype=np.float32)
    J, gW, _ = net.cost_and_gradients(X, y)
    Jd, gWd, _ = net.cost_and_gradients(*_dask(X, y))
    assert gWd[0].dtype == np.float32
    assert Jd == pytest.approx(J, rel=1e-5) and _rel(gWd[0], gW[0]) < 1e-5


def test_lbfgs_over_dask_ends_at_the_in_memory_result(client):
    X, y = _data()
    nets = [_net(), _net()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        nets[0].fit(X, y, method="lbfgs", max_iter=30)
        nets[1].fit(*_dask(X, y), method="lbfgs", max_iter=30)
    a, b = (n.get_params() for n in nets)
    np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-8)
    assert nets[1].n_iter_ == nets[0].n_iter_
    np.testing.assert_allclose(nets[1].loss_curve_, nets[0].loss_curve_, rtol=1e-10)


def _tasks(client, call):
    """``call()``'s result and the keys of the tasks that ran for it, by name."""
    with distributed.get_task_stream(client) as stream:
        result = call()
    names = Counter()
    for task in stream.data:
        key = task["key"]
        words = (key[0] if isinstance(key, tuple) else key).split("-")
        names["-".join(w for w in words if len(w) != 32)] += 1  # less the unique token
    return result, names, stream.data


def test_an_iteration_on_a_client_is_one_task_per_worker_where_its_chunks_are(client):
    X, y = _data()
    net = _net()
    params = net.get_params() * 0.5
    J1, g1 = net.objective(X, y).cost_and_gradient(params)
    objective = net.objective(*_dask(X, y))
    holders = {w for ws in client.who_has(objective._parts).values() for w in ws}
    for _ in range(2):
        (J2, g2), names, data = _tasks(client, lambda: objective.cost_and_gradient(params))
        assert J2 == pytest.approx(J1, rel=1e-12) and _rel(g2, g1) < 1e-12
        # no chunk recomputed, no parameters' task, no sum on the cluster
        assert names == {"fastbp-pass": len(holders)}
        assert {task["worker"] for task in data} == holders
        assert objective._groups is not None  # each ran where planned: nothing asked again
    J3 = objective.cost()
    assert J3 == pytest.approx(net.objective(X, y).cost(), rel=1e-12)


def test_shared_parameters_a_summing_tree_and_stale_locations_give_the_same_result(
        client, monkeypatch):
    X, y = _data()
    net = _net()
    params = net.get_params() * 0.5
    J1, g1 = net.objective(X, y).cost_and_gradient(params)
    objective = net.objective(*_dask(X, y))
    # one group per chunk (four tasks), summed two by two on the cluster, the
    # parameters sent once as a task of their own
    monkeypatch.setattr(fdask, "SPLIT_EVERY", 2)
    monkeypatch.setattr(fdask, "INLINE_BYTES", 0)
    objective._groups = [(where, [c]) for where, chunks in objective._groups for c in chunks]
    (J2, g2), names, _ = _tasks(client, lambda: objective.cost_and_gradient(params))
    assert names == {"fastbp-params": 1, "fastbp-pass": len(CHUNKS), "fastbp-sum-0": 2}
    assert J2 == pytest.approx(J1, rel=1e-12) and _rel(g2, g1) < 1e-12
    assert objective._groups is not None
    # planned on a worker that is not there: the task runs where the data are, the
    # result is the same, and the chunks are located again
    monkeypatch.undo()
    objective._groups = [("tcp://127.0.0.1:9", list(range(len(CHUNKS))))]
    J3, g3 = objective.cost_and_gradient(params)
    assert J3 == pytest.approx(J1, rel=1e-12) and _rel(g3, g1) < 1e-12
    assert objective._groups is None
    J4, g4 = objective.cost_and_gradient(params)
    assert J4 == pytest.approx(J1, rel=1e-12) and _rel(g4, g1) < 1e-12
    assert objective._groups is not None


def test_a_worker_with_threads_gets_a_task_per_thread_of_even_rows():
    X, y = _data()
    net = _net()
    params = net.get_params() * 0.5
    J1, g1 = net.objective(X, y).cost_and_gradient(params)
    # beside the module's cluster: the scheduler's HTTP server on a port of its own
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        objective = net.objective(*_dask(X, y))
        (worker,) = client.nthreads()
        # rows (30, 7, 41, 25): 41 + 7 on one thread, 30 + 25 on the other
        assert objective._groups == [(worker, [0, 3]), (worker, [1, 2])]
        (J2, g2), names, _ = _tasks(client, lambda: objective.cost_and_gradient(params))
        assert names == {"fastbp-pass": 2}
        assert J2 == pytest.approx(J1, rel=1e-12) and _rel(g2, g1) < 1e-12
        assert objective._groups is not None


def test_a_persisted_objective_streams_its_epochs_from_the_workers(client):
    X, y = _data()
    nets = [_net(), _net()]
    objectives = [nets[0].objective(X, y), nets[1].objective(*_dask(X, y))]
    assert objectives[1].persisted
    losses = []
    for net, objective in zip(nets, objectives):
        optimizer = fastbp.optimizers.SGD(learning_rate=0.05, momentum=0.5)
        optimizer.start(net._params)
        losses.append([objective.epoch(optimizer, np.arange(N), 8) for _ in range(2)])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-12)
    assert _rel(nets[1].get_params(), nets[0].get_params()) < 1e-12


def test_predict_is_lazy_maps_the_chunks_and_matches(client):
    X, y = _data()
    net = _net()
    (Xd,) = _dask(X)
    out = net.predict(Xd)
    assert isinstance(out, da.Array) and out.chunks == (CHUNKS, (3,))
    assert out.dtype == net.dtype
    expected = net.predict(X)
    net.set_params(net.get_params() * 2)  # the lazy result keeps the parameters of the call
    np.testing.assert_allclose(out.compute(), expected, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(net.predict_proba(Xd).compute(), net.predict(X), rtol=1e-14)
    # nothing is computed (or validated) until asked
    bad = X.copy()
    bad[40, 1] = np.nan
    lazy = net.predict(_dask(bad)[0])
    with pytest.raises(ValueError, match=r"X contains NaN or infinity .*rows 37:78"):
        lazy.compute()


@pytest.mark.parametrize("loss, output", HEADS)
def test_gd_epochs_match_in_memory_gd(client, loss, output):
    X, y = _data()
    nets = [_net(loss, output), _net(loss, output)]
    options = dict(method="gd", epochs=4, learning_rate=0.01, momentum=0.5)
    nets[0].fit(X, y, **options)
    nets[1].fit(*_dask(X, y), **options)
    assert _rel(nets[1].get_params(), nets[0].get_params()) < 1e-12
    np.testing.assert_allclose(nets[1].loss_curve_, nets[0].loss_curve_, rtol=1e-12)


@pytest.mark.parametrize("method, options", [
    ("sgd", dict(learning_rate=0.05, momentum=0.5)),
    ("adam", dict(learning_rate=0.01)),
])
@pytest.mark.parametrize("loss, output", HEADS)
def test_unshuffled_streamed_epochs_are_the_in_memory_ones(client, method, options, loss,
                                                          output):
    # batches of 8 cross the chunk boundaries (30, 37, 78): the leftover rows carry over
    X, y = _data()
    nets = [_net(loss, output), _net(loss, output)]
    options = dict(method=method, epochs=3, batch_size=8, shuffle=False, **options)
    nets[0].fit(X, y, **options)
    nets[1].fit(*_dask(X, y), **options)
    assert _rel(nets[1].get_params(), nets[0].get_params()) < 1e-12
    np.testing.assert_allclose(nets[1].loss_curve_, nets[0].loss_curve_, rtol=1e-12)


def _weights(seed=3):
    w = np.random.default_rng(seed).integers(0, 4, N).astype(float)
    w[30:37] = 0.0  # the second chunk weighs nothing
    return w


@pytest.mark.parametrize("loss, output", HEADS)
@pytest.mark.parametrize("scheduler", ["client", "threads"])
def test_weighted_passes_and_fits_equal_in_memory(client, loss, output, scheduler):
    X, y = _data()
    w = _weights()
    Xd, yd, wd = _dask(X, y, w)
    net = _net(loss, output)
    with dask.config.set(scheduler="threads") if scheduler == "threads" else client.as_current():
        J, gW, _ = net.cost_and_gradients(X, y, sample_weight=w)
        for weights in (wd, w):  # dask weights, or in memory (chunked like X)
            Jd, gWd, _ = net.cost_and_gradients(Xd, yd, sample_weight=weights)
            assert Jd == pytest.approx(J, rel=1e-12) and _rel(gWd[0], gW[0]) < 1e-12
        assert net.cost(Xd, yd, sample_weight=wd) == pytest.approx(
            net.cost(X, y, sample_weight=w), rel=1e-12)
        for method, options in (("gd", dict(epochs=3, learning_rate=0.01)),
                                ("sgd", dict(epochs=2, batch_size=8, shuffle=False,
                                             learning_rate=0.05, momentum=0.5)),
                                ("adam", dict(epochs=2, batch_size=8, shuffle=False))):
            nets = [_net(loss, output), _net(loss, output)]
            nets[0].fit(X, y, method=method, sample_weight=w, **options)
            nets[1].fit(Xd, yd, method=method, sample_weight=wd, **options)
            assert _rel(nets[1].get_params(), nets[0].get_params()) < 1e-12, method
            np.testing.assert_allclose(nets[1].loss_curve_, nets[0].loss_curve_, rtol=1e-12)


def test_dask_weights_are_checked_by_name(client):
    X, y = _data()
    Xd, yd = _dask(X, y)
    net = _net()
    with pytest.raises(ValueError, match="sample_weight's chunks"):
        net.cost(Xd, yd, sample_weight=da.from_array(np.ones(N), chunks=50))
    with pytest.raises(ValueError, match="sample_weight must be a 1-D array"):
        net.cost(Xd, yd, sample_weight=np.ones(N - 1))
    bad = np.ones(N)
    bad[40] = -1.0
    with pytest.raises(ValueError, match=r"sample_weight must not be negative.*rows 37:78"):
        net.cost(Xd, yd, sample_weight=da.from_array(bad, chunks=CHUNKS))
    with pytest.raises(ValueError, match="sample_weight must not be all 0"):
        net.cost(Xd, yd, sample_weight=da.zeros(N, chunks=CHUNKS))


def test_sgd_over_dask_trains_and_is_reproducible_with_a_seed(client):
    X, y = _data()
    Xd, yd = _dask(X, y)
    runs = []
    for seed in (5, 5, 6):
        net = _net(l2=0.0)
        net.fit(Xd, yd, method="sgd", epochs=15, batch_size=8, learning_rate=0.1, seed=seed)
        runs.append(net)
    a, b, c = runs
    assert a.loss_curve_[-1] < 0.8 * a.loss_curve_[0]
    np.testing.assert_array_equal(a.get_params(), b.get_params())
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.get_params(), c.get_params())
    # the epoch's loss is in cost()'s units: near the cost after the epoch
    assert a.loss_curve_[-1] == pytest.approx(a.cost(X, y), rel=0.1)


def _refused(net, X, y, exc, match):
    before = net.get_params()
    for call in (lambda: net.cost_and_gradients(X, y),
                 lambda: net.fit(X, y, method="lbfgs", max_iter=2),
                 lambda: net.fit(X, y, method="sgd", epochs=1, batch_size=8)):
        with pytest.raises(exc, match=match):
            call()
        np.testing.assert_array_equal(net.get_params(), before)


def test_mismatched_chunks_columns_and_shapes_are_refused_by_name(client):
    X, y = _data()
    net = _net()
    Xd, yd = _dask(X, y)
    _refused(net, Xd, _dask(y, chunks=(37, 41, 25))[0], ValueError,
             r"y's row chunks \(37, 41, 25\) differ from X's \(30, 7, 41, 25\)")
    _refused(net, Xd.rechunk({1: 2}), yd, ValueError, "X is chunked along its columns")
    _refused(net, Xd[:, :3], yd, ValueError, r"X must have 4 columns \(the input layer size\)")
    _refused(net, Xd, yd[:, :2], ValueError, r"y must have 3 columns \(the output layer size\)")
    _refused(net, Xd[:-1], yd, ValueError, "X and y must have the same number of rows")
    _refused(net, Xd, y[:-1], ValueError, "X and y must have the same number of rows")
    _refused(net, Xd.astype("U3"), yd, TypeError, "X must hold real numbers")
    _refused(net, Xd[Xd[:, 0] > 0], yd, ValueError, "unknown size")
    with pytest.raises(ValueError, match="X must have 4 columns"):
        net.predict(Xd[:, :3])
    with pytest.raises(ValueError, match="validation_fraction needs X and y in memory"):
        net.fit(Xd, yd, method="sgd", validation_fraction=0.2)


def test_a_bad_chunk_is_refused_with_the_in_memory_message_and_its_rows(client):
    X, y = _data()
    bad = X.copy()
    bad[33, 2] = np.inf
    net = _net()
    _refused(net, *_dask(bad, y), ValueError, r"X contains NaN or infinity .*rows 30:37")
    soft = y.copy()
    soft[80] = [0.5, 0.6, 0.0]
    _refused(net, *_dask(X, soft), ValueError, r"each row of y must be a probability vector"
             r".*rows 78:103")
    high = _data(n_out=1, softmax=False)[1]
    high[5] = 1.5
    sigmoid = fastbp.Network([4, 3, 1], seed=0)
    with pytest.raises(ValueError, match=r"outside \[0.0, 1.0\].*rows 0:30"):
        sigmoid.fit(*_dask(X, high), method="gd", epochs=1)


def test_validation_data_as_dask_arrays_is_brought_into_memory(client):
    X, y = _data()
    net = _net()
    net.fit(*_dask(X, y), method="sgd", epochs=2, batch_size=8, seed=0,
            validation_data=_dask(X[:40], y[:40], chunks=(15, 25)))
    assert len(net.validation_scores_) == 2


def test_dask_local_scheduler_without_a_client():
    with dask.config.set(scheduler="threads"):
        assert fdask._client() is None
        X, y = _data()
        net = _net()
        J, gW, _ = net.cost_and_gradients(X, y)
        Jd, gWd, _ = net.cost_and_gradients(*_dask(X, y))
        assert Jd == pytest.approx(J, rel=1e-12) and _rel(gWd[0], gW[0]) < 1e-12
        nets = [_net(), _net()]
        nets[0].fit(X, y, method="gd", epochs=3, learning_rate=0.05)
        nets[1].fit(*_dask(X, y), method="gd", epochs=3, learning_rate=0.05)
        assert _rel(nets[1].get_params(), nets[0].get_params()) < 1e-12


#: Twelve chunks: the summing tree has partial nodes at every level.
MANY_CHUNKS = (9,) * 11 + (4,)


def _groupings(n_chunks, seed):
    """Ways workers could hold ``n_chunks`` chunks: all on one, one each, and
    seeded random splits over two or three workers in random order."""
    rng = np.random.default_rng(seed)
    chunks = list(range(n_chunks))
    yield [(None, chunks)]
    yield [(None, [c]) for c in reversed(chunks)]
    for parts in (2, 3, 3):
        owner = rng.integers(0, parts, n_chunks)
        yield [(None, [int(c) for c in rng.permutation(np.flatnonzero(owner == k))])
               for k in range(parts) if (owner == k).any()]


def test_the_chunks_sum_to_the_same_bits_wherever_they_are(client, monkeypatch):
    X, y = _data()
    Xd, yd = _dask(X, y, chunks=MANY_CHUNKS)
    net = _net()
    params = net.get_params() * 0.5
    objective = net.objective(Xd, yd)
    results = []
    for split_every in (8, 2):  # the client adds every group's nodes, or tasks add some first
        monkeypatch.setattr(fdask, "SPLIT_EVERY", split_every)
        for groups in _groupings(len(MANY_CHUNKS), seed=split_every):
            objective._groups = groups
            results.append(objective.cost_and_gradient(params, out=np.empty_like(params)))
    with dask.config.set(scheduler="synchronous"):  # one task per chunk, on this thread
        results.append(net.objective(Xd, yd).cost_and_gradient(params))
    J1, g1 = net.objective(X, y).cost_and_gradient(params)
    J, grad = results[0]
    assert J == pytest.approx(J1, rel=1e-12) and _rel(grad, g1) < 1e-12
    for J_other, grad_other in results[1:]:
        assert J_other == J
        np.testing.assert_array_equal(grad_other, grad)


def test_a_fit_gives_the_same_bits_whichever_worker_holds_which_chunks(client, monkeypatch):
    X, y = _data()
    Xd, yd = _dask(X, y, chunks=MANY_CHUNKS)
    seeds = iter(range(100))

    def anywhere(self):  # where the scheduler could have put the chunks, another each time
        return list(_groupings(len(MANY_CHUNKS), next(seeds)))[2 + next(seeds) % 3]

    params = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        params.append(_net().fit(Xd, yd, method="lbfgs", max_iter=8).get_params())
        with monkeypatch.context() as m:
            m.setattr(fdask.DaskObjective, "_locate", anywhere)
            for _ in range(2):
                params.append(_net().fit(Xd, yd, method="lbfgs", max_iter=8).get_params())
        with dask.config.set(scheduler="synchronous"):
            params.append(_net().fit(Xd, yd, method="lbfgs", max_iter=8).get_params())
    assert next(seeds) > 4  # the placements changed during the fits
    for other in params[1:]:
        np.testing.assert_array_equal(other, params[0])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_a_dask_fit_leaves_the_callers_numba_threads_as_they_were(scheduler):
    X, y = _data()
    Xd, yd = _dask(X, y)
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        with dask.config.set(scheduler=scheduler), warnings.catch_warnings():
            warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
            net = _net()
            for call in (lambda: net.fit(Xd, yd, method="lbfgs", max_iter=3),
                         lambda: net.fit(Xd, yd, method="sgd", epochs=1, batch_size=8),
                         lambda: net.cost_and_gradients(Xd, yd),
                         lambda: net.predict(Xd).compute()):
                call()
                assert numba.get_num_threads() == 2
    finally:
        numba.set_num_threads(before)


def _counted(a, counts, name):
    """``a`` as a dask array whose chunks count how often they are computed."""
    lock = threading.Lock()

    def load(block, block_info=None):
        with lock:
            counts[name, block_info[0]["chunk-location"][0]] += 1
        return block

    return _dask(a)[0].map_blocks(load, dtype=a.dtype)


def test_each_chunk_is_computed_once_per_fit_or_once_per_streamed_epoch():
    X, y = _data()
    with dask.config.set(scheduler="threads"):
        for method, options, times in [("lbfgs", dict(max_iter=5), 1),
                                       ("sgd", dict(epochs=3, batch_size=8, seed=0), 3)]:
            counts = Counter()
            net = _net()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
                net.fit(_counted(X, counts, "X"), _counted(y, counts, "y"), method=method,
                        **options)
            assert counts == {(name, c): times for name in "Xy" for c in range(len(CHUNKS))}


def test_import_fastbp_does_not_import_dask():
    code = ("import sys, fastbp, numpy as np; fastbp.Network([2, 1]).cost(np.ones((2, 2)), "
            "np.ones((2, 1))); assert not [m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed')], 'dask imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr


def test_a_worker_killed_mid_fit_finishes_correctly_or_raises(cluster, client):
    X, y = _data()
    expected = _net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        expected.fit(X, y, method="lbfgs", max_iter=12)
    victim = sorted(client.scheduler_info()["workers"])[0]

    async def die():
        os._exit(1)

    def kill_after_two(net, step, loss):
        if step == 2:
            client.run(die, workers=[victim], wait=False)

    net = _net()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
            net.fit(*_dask(X, y), method="lbfgs", max_iter=12, callback=kill_after_two)
    except Exception as exc:  # a clear error from dask, never a wrong result
        assert isinstance(exc, (distributed.scheduler.KilledWorker, OSError,
                                distributed.client.FutureCancelledError)), repr(exc)
        assert np.isfinite(net.get_params()).all()
    else:
        assert victim not in client.scheduler_info()["workers"]  # it did die
        assert net.n_iter_ == expected.n_iter_
        np.testing.assert_allclose(net.get_params(), expected.get_params(), rtol=1e-8,
                                   atol=1e-8)
    client.wait_for_workers(2, timeout=60)
