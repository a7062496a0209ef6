"""Interrupts and threads: an epoch runs in compiled slices with one call's bits, a
KeyboardInterrupt leaves the last completed epoch (or accepted iterate), Ctrl-C
stops a long epoch at once, and one Network refuses a second thread's call."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import TOLERANCES
from fastbp.kernels import _network as serial
from fastbp.kernels import _parallel
from test_runtime import ROOT

import fastbp
from fastbp import objective, threads


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    return X, np.tanh(X[:, :2] @ np.array([[0.7], [-1.1]]))


def _net(dtype=np.float64):
    return fastbp.Network([5, 7, 1], activation="tanh", output_activation="identity",
                          loss="mse", l2=1e-3, dtype=dtype, seed=4)


OPTIONS = {"sgd": {"learning_rate": 0.05, "momentum": 0.9}, "adam": {"learning_rate": 1e-2}}


def _fit(method, epochs, **extra):
    X, y = _data()
    return _net().fit(X, y, method=method, epochs=epochs, batch_size=16, seed=3,
                      **OPTIONS[method], **extra)


@pytest.fixture(params=["serial", "threaded"])
def engine(request, monkeypatch):
    """The compiled slice call of an epoch (serial, or threaded in 2 threads'
    blocks), which tests count and interrupt through ``calls``."""
    if request.param == "threaded":
        monkeypatch.setattr(threads, "PARALLEL_MIN_WORK", 1)
        monkeypatch.setattr(threads, "pass_threads", lambda n_rows: 2)
        module, name = _parallel, "run"
    else:
        module, name = serial, "minibatch_epoch"
    real, calls = getattr(module, name), []

    def counted(*args):
        calls.append(args[5].size if module is serial else args[6].size)  # rows in the slice
        if len(calls) == getattr(counted, "interrupt_at", 0):
            real(*args)
            raise KeyboardInterrupt  # a signal arriving during the call: raised after it
        return real(*args)

    monkeypatch.setattr(module, name, counted)
    return counted, calls


@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_sliced_epochs_give_the_bits_of_one_call(method, engine, monkeypatch):
    _, calls = engine
    monkeypatch.setattr(objective, "SLICE_WORK", 10**12)  # one call an epoch
    whole = _fit(method, 3)
    assert calls == [120] * 3
    calls.clear()
    monkeypatch.setattr(objective, "SLICE_WORK", 1)  # one batch a call
    sliced = _fit(method, 3)
    assert calls == ([16] * 7 + [8]) * 3
    assert sliced.get_params().tobytes() == whole.get_params().tobytes()
    assert sliced.loss_curve_ == whole.loss_curve_  # the running loss sums in one order


def test_a_slice_is_about_slice_work_of_whole_batches():
    net = fastbp.Network([784, 128, 10])
    per_batch = 32 * 3 * (784 * 128 + 128 * 10) + objective.BATCH_WORK
    assert objective._slice_batches(net, 32) == objective.SLICE_WORK // per_batch
    assert objective._slice_batches(net, 10**6) == 1  # never less than one batch


@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_interrupt_leaves_the_last_completed_epoch(method, engine, monkeypatch):
    counted, calls = engine
    monkeypatch.setattr(objective, "SLICE_WORK", 1)  # 8 calls an epoch
    counted.interrupt_at = 2 * 8 + 3  # in epoch 3
    X, y = _data()
    net = _net()
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, method=method, epochs=5, batch_size=16, seed=3, **OPTIONS[method])
    counted.interrupt_at = 0
    two = _fit(method, 2)
    assert net.n_iter_ == 2 and net.loss_curve_ == two.loss_curve_
    assert net.best_loss_ == min(two.loss_curve_)
    assert net.get_params().tobytes() == two.get_params().tobytes()
    assert net.optimizer_.state.tobytes() == two.optimizer_.state.tobytes()
    assert net.optimizer_.hyper.tobytes() == two.optimizer_.hyper.tobytes()
    # the shuffling stream and the row order went back too: going on is as never stopped
    net.fit(X, y, method=method, epochs=3, batch_size=16, resume=True, **OPTIONS[method])
    five = _fit(method, 5)
    assert net.get_params().tobytes() == five.get_params().tobytes()
    assert net.loss_curve_ == five.loss_curve_


@pytest.mark.parametrize("method", ["bfgs", "lbfgs"])
def test_interrupt_leaves_the_last_accepted_iterate(method, monkeypatch):
    X, y = _data()
    real, calls = objective.CompiledObjective.cost_and_gradient, []

    def interrupted(self, params=None, out=None):
        calls.append(1)
        result = real(self, params, out)
        if len(calls) == 12:  # inside an iteration: a line search's trial point is set
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(objective.CompiledObjective, "cost_and_gradient", interrupted)
    net = _net()
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, method=method, max_iter=100)
    monkeypatch.setattr(objective.CompiledObjective, "cost_and_gradient", real)
    assert 0 < net.n_iter_ == len(net.loss_curve_) < 12
    stopped = _net().fit(X, y, method=method, max_iter=100,
                         callback=lambda n, it, loss: it == net.n_iter_)
    assert net.loss_curve_ == stopped.loss_curve_
    assert net.get_params().tobytes() == stopped.get_params().tobytes()
    # the weights are the recorded iterate's
    assert net.cost(X, y) == pytest.approx(net.loss_curve_[-1], rel=TOLERANCES[net.dtype]["rtol"])


def test_the_sklearn_estimators_agree_with_their_network_after_an_interrupt(monkeypatch):
    pytest.importorskip("sklearn")
    from fastbp.sklearn import MLPRegressor

    X, y = _data()
    real, calls = serial.minibatch_epoch, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(objective, "SLICE_WORK", 10**12)  # one call an epoch
    monkeypatch.setattr(serial, "minibatch_epoch", interrupted)
    est = MLPRegressor(hidden_layer_sizes=(7,), solver="sgd", max_iter=20, random_state=0)
    with pytest.warns(UserWarning, match="interrupted by user"):
        est.fit(X, y.ravel())  # as scikit-learn: a warning, the completed epochs kept
    assert est.n_iter_ == 3 == len(est.loss_curve_) and est.loss_ == est.loss_curve_[-1]
    assert est.best_loss_ == min(est.loss_curve_)
    for W, W_net in zip(est.coefs_, est._net.weights):
        assert W.tobytes() == W_net.tobytes()
    three = MLPRegressor(hidden_layer_sizes=(7,), solver="sgd", max_iter=3, random_state=0)
    monkeypatch.setattr(serial, "minibatch_epoch", real)
    with pytest.warns(Warning):  # the iteration limit
        three.fit(X, y.ravel())
    assert est.loss_curve_ == three.loss_curve_
    assert all(a.tobytes() == b.tobytes() for a, b in zip(est.coefs_, three.coefs_))


SIGINT_SCRIPT = """
import json, signal, sys, time, numpy as np, fastbp
# Python's Ctrl-C handler even where SIGINT comes ignored (a background job of a
# non-interactive shell, as CI may start the suite): a user's terminal has it
signal.signal(signal.SIGINT, signal.default_int_handler)
rng = np.random.default_rng(0)
X = rng.standard_normal((2_000_000, 2)); y = np.tanh(X[:, :1])
net = fastbp.Network([2, 64, 1], activation="tanh", output_activation="identity", loss="mse",
                     seed=0)
start = time.perf_counter()
net.fit(X[:100_000], y[:100_000], method="sgd", epochs=1, batch_size=1, learning_rate=1e-3)
part = time.perf_counter() - start  # compiled (or loaded) and run on a 20th of the rows
initial = net.get_params()
print("start", flush=True)
try:
    net.fit(X, y, method="sgd", epochs=1, batch_size=1, learning_rate=1e-3)
except KeyboardInterrupt:
    print(json.dumps({"epoch_estimate": 20 * part, "n_iter": net.n_iter_,
                      "same": bool((net.get_params() == initial).all())}), flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="the compiled epoch")
def test_ctrl_c_stops_a_long_epoch_at_once():
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "start", proc.stderr.read()
        time.sleep(0.3)  # inside the epoch's compiled slices by now
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline()
        waited = time.perf_counter() - sent
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)  # and closes the pipes
    assert line.strip(), f"no report from the interrupted fit; its stderr:\n{err}"
    report = json.loads(line)
    assert report["n_iter"] == 0 and report["same"]  # the epoch left no trace
    # generous for a loaded machine, yet far below the epoch (a whole epoch stopped
    # only after it was done)
    assert waited < min(2.0, report["epoch_estimate"] / 3), (waited, report)


# -- one network, two threads ------------------------------------------------------------


def test_a_second_thread_gets_a_runtime_error_and_nested_calls_go_through():
    X, y = _data()
    net = _net()
    inside, release, seen = threading.Event(), threading.Event(), []

    def callback(n, epoch, loss):
        seen.append(n.predict(X[:2]).shape)  # nested in this thread's fit: allowed
        inside.set()
        release.wait(30)
        return True

    worker = threading.Thread(target=lambda: net.fit(X, y, epochs=3, callback=callback))
    worker.start()
    try:
        assert inside.wait(60)
        for call in (lambda: net.predict(X), lambda: net.cost(X, y),
                     lambda: net.cost_and_gradients(X, y), lambda: net.set_params(
                         net._params), lambda: net.fit(X, y, epochs=1),
                     lambda: setattr(net, "weights", net.weights)):
            with pytest.raises(RuntimeError, match="in use by another thread"):
                call()
    finally:
        release.set()
        worker.join(60)
    assert seen == [(2, 1)] and net.n_iter_ == 1
    net.predict(X)  # free again, from either thread
    other = threading.Thread(target=lambda: seen.append(net.cost(X, y)))
    other.start()
    other.join(60)
    assert len(seen) == 2 and np.isfinite(seen[1])


def test_an_error_inside_a_call_frees_the_network_and_copies_start_free():
    import pickle

    net = _net()
    with pytest.raises(ValueError, match="columns"):
        net.predict(np.ones((3, 2)))
    net.predict(np.ones((3, 5)))
    net._free.pop()  # as while another thread is inside a call
    with pytest.raises(RuntimeError, match="in use"):
        net.predict(np.ones((3, 5)))
    copy = pickle.loads(pickle.dumps(net))
    assert copy.predict(np.ones((3, 5))).shape == (3, 1)


def test_one_estimator_fitted_from_two_threads_refuses_the_second(monkeypatch):
    pytest.importorskip("sklearn")
    from fastbp.sklearn import MLPRegressor

    X, y = _data()
    inside, release = threading.Event(), threading.Event()
    real = fastbp.Network.fit

    def held(self, *args, **kwargs):
        inside.set()
        release.wait(30)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(fastbp.Network, "fit", held)
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=5, random_state=0)
    outcome = []

    def fit():
        try:
            est.fit(X, y.ravel())
        except Warning as warning:  # stopping at max_iter: warnings are errors here
            outcome.append(warning)

    worker = threading.Thread(target=fit)
    worker.start()
    try:
        assert inside.wait(60)
        with pytest.raises(RuntimeError, match="being fitted by another thread"):
            est.fit(X, y.ravel())
    finally:
        release.set()
        worker.join(60)
    assert len(outcome) == 1 and "failed to converge" in str(outcome[0])
    monkeypatch.setattr(fastbp.Network, "fit", real)
    with pytest.warns(Warning):  # lbfgs stops at max_iter
        est.fit(X, y.ravel())
    assert est.n_iter_ > 0
