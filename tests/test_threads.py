"""The threaded passes (fastbp.kernels._parallel, chosen by fastbp.threads): the
reference's results, the same bits for the same block count, BLAS held to one
thread while they run, and which passes use threads."""

import os
import threading

import numba
import numpy as np
import pytest
from conftest import DTYPES, NETWORK_KINDS, RULE_CASES, TOLERANCES, assert_close, random_targets
from fastbp.kernels import _network as serial
from fastbp.kernels import _parallel
from test_runtime import GRADIENT_SCRIPT, _run
from threadpoolctl import threadpool_info

import fastbp
from fastbp import objective, threads

SHAPES = [([1, 1], 1), ([7, 3], 1), ([7, 5, 3], 9), ([4, 6, 5, 2], 13)]


@pytest.fixture
def threaded(monkeypatch):
    """Every pass of a network built from now on threaded, in the blocks of 3
    threads (6), whatever the machine: results depend on the blocks only."""
    monkeypatch.setattr(threads, "PARALLEL_MIN_WORK", 1)
    monkeypatch.setattr(threads, "pass_threads", lambda n_rows: 3)


def _data(rng, sizes, n, out_act, loss, dtype):
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    return X, random_targets(rng, n, sizes[-1], out_act, loss).astype(dtype)


def _pair(sizes, kind, dtype, l2=0.01):
    hidden, out_act, loss = kind
    nets = [fastbp.Network(sizes, activation=hidden, output_activation=out_act, loss=loss,
                           l2=l2, dtype=dtype, seed=3, backend=b) for b in ("numba", "numpy")]
    return nets


@pytest.mark.usefixtures("threaded")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_threaded_passes_match_the_reference(kind, dtype, rng):
    for sizes, n in SHAPES:
        net, ref = _pair(sizes, kind, dtype)
        assert net._scratch.parallel_rows == 1
        X, y = _data(rng, sizes, n, kind[1], kind[2], dtype)
        J, gW, gb = net.cost_and_gradients(X, y)
        J_ref, gW_ref, gb_ref = ref.cost_and_gradients(X, y)
        rtol = TOLERANCES[np.dtype(dtype)]["rtol"]
        assert J == pytest.approx(J_ref, rel=rtol, abs=1e-30)
        assert net.cost(X, y) == pytest.approx(J_ref, rel=rtol, abs=1e-30)
        for g, g_ref in zip(gW + gb, gW_ref + gb_ref):
            assert_close(g, g_ref, dtype)
        assert_close(net.predict(X), ref.predict(X), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method, rule", RULE_CASES)
def test_threaded_epochs_match_the_serial_ones(monkeypatch, method, rule, dtype, rng):
    sizes, kind = [9, 12, 4], ("tanh", "softmax", "cross_entropy")
    X, y = _data(rng, sizes, 50, kind[1], kind[2], dtype)
    options = {"epochs": 3, "batch_size": 8, "seed": 5, "learning_rate": 0.05, **rule}
    serial_net = _pair(sizes, kind, dtype)[0]
    serial_net.fit(X, y, method=method, **options)
    with monkeypatch.context() as m:
        m.setattr(threads, "PARALLEL_MIN_WORK", 1)
        m.setattr(threads, "pass_threads", lambda n_rows: 2)
        net = _pair(sizes, kind, dtype)[0]
        net.fit(X, y, method=method, **options)
    assert_close(net.get_params(), serial_net.get_params(), dtype)
    rtol = TOLERANCES[np.dtype(dtype)]["rtol"]
    assert net.loss_curve_ == pytest.approx(serial_net.loss_curve_, rel=rtol)


def _gradient(sizes, X, y, dtype):
    """The threaded gradient, in ``threads.BLOCKS_PER_THREAD`` blocks."""
    net = fastbp.Network(sizes, activation="relu", output_activation="softmax",
                         loss="cross_entropy", l2=0.01, dtype=dtype, seed=1)
    work = np.empty(serial.workspace_size(net._layout, X.shape[0]), dtype)
    grad = np.empty_like(net._params)
    J = objective._threaded(_parallel.GRADIENT, net, X, y, np.empty(0, dtype), work, 1, 1.0,
                            grad)
    return J, grad, net


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_blocks_same_bits_and_any_blocks_within_rounding(dtype, rng, monkeypatch):
    sizes = [40, 33, 10]
    X = rng.standard_normal((61, 40)).astype(dtype)
    y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 61)]
    results = {}
    for n_blocks in (1, 2, 3, 5, 8):
        monkeypatch.setattr(threads, "BLOCKS_PER_THREAD", n_blocks)
        first = _gradient(sizes, X, y, dtype)
        again = _gradient(sizes, X, y, dtype)
        assert first[0] == again[0]
        np.testing.assert_array_equal(first[1], again[1])
        results[n_blocks] = first
    J0, g0, net = results[1]
    work = np.empty(serial.workspace_size(net._layout, 61), dtype)
    grad = np.empty_like(g0)
    J_serial = serial.cost_and_gradient(net._params, net._layout, X, y, np.empty(0, dtype),
                                        work, grad, 0.01, 1.0)
    rtol = TOLERANCES[np.dtype(dtype)]["rtol"]
    for J, g, _ in results.values():
        assert_close(g, grad, dtype)
        assert J == pytest.approx(J_serial, rel=rtol)
        if dtype == np.float64:
            assert np.linalg.norm(g - g0) <= 1e-12 * np.linalg.norm(g0)


def test_two_processes_at_two_threads_give_the_same_bits(tmp_path):
    # the first compiles the threaded pass into an empty cache, the second loads it
    env = {"NUMBA_NUM_THREADS": "2", "NUMBA_CACHE_DIR": str(tmp_path)}
    first, second = (_run(GRADIENT_SCRIPT, **env) for _ in range(2))
    np.testing.assert_array_equal(first, second)


def _blas_threads():
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="BLAS of the kernels")
def test_blas_holds_one_thread_while_large_passes_run():
    import scipy.linalg.cython_blas  # noqa: F401  SciPy's BLAS, loaded: not limited when unused
    from fastbp.kernels import _blas

    before = _blas_threads()
    ours = {lib["filepath"] for lib in threads._kernels_blas().info()}
    assert ours and ours <= set(before)
    if _blas.LIBRARY:  # exactly the library the kernels bound
        assert {os.path.realpath(p) for p in ours} == {_blas.LIBRARY}

    def limited():
        now = _blas_threads()
        return {path: now[path] for path in ours}, {p: n for p, n in now.items() if p not in ours}

    with threads.large_pass(True):
        assert set(limited()[0].values()) == {1}
        assert limited()[1] == {p: n for p, n in before.items() if p not in ours}
        # a serial large pass in another thread starts and ends meanwhile: the
        # limit stays until the last pass ends
        other = threading.Thread(target=lambda: threads.large_pass(False).__enter__().__exit__())
        other.start()
        other.join()
        assert set(limited()[0].values()) == {1}
    assert _blas_threads() == before


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="BLAS of the kernels")
def test_blas_limit_holds_whichever_thread_runs_the_pass():
    # threadpoolctl lets one Python thread at a time change a pthreads
    # OpenBLAS's limits: a pass on another thread (a Dask task, a worker) after
    # one on this thread must still hold BLAS to one thread, and restore it
    before = _blas_threads()
    ours = {lib["filepath"] for lib in threads._kernels_blas().info()}
    with threads.large_pass(True):
        pass
    seen = []

    def pass_on_another_thread():
        with threads.large_pass(True):
            now = _blas_threads()
            seen.append({now[path] for path in ours})

    worker = threading.Thread(target=pass_on_another_thread)
    worker.start()
    worker.join()
    assert seen == [{1}]
    assert _blas_threads() == before


def test_small_passes_stay_on_the_calling_thread(monkeypatch):
    seed = fastbp.Network([2, 3, 1])
    assert objective._threads(seed, 3) == 0  # the seed example
    mnist = fastbp.Network([784, 128, 10])
    assert threads.min_parallel_rows([784, 128, 10]) == 2  # 1.5e5 multiply-adds
    monkeypatch.setattr(threads.numba, "get_num_threads", lambda: 4)
    if threads._fast_layer():
        assert objective._threads(mnist, 32) == 4
        assert objective._threads(mnist, 31) == 3  # at least 8 rows a thread
        assert objective._threads(mnist, 8) == 1  # serial, BLAS held to one thread
        assert objective._threads(fastbp.Network([64, 64, 10]), 200) == 4
    assert objective._threads(fastbp.Network([32, 64, 64, 1]), 16) == 0  # 9.9e4


def test_without_a_fast_threading_layer_passes_run_serially():
    script = "import json, fastbp; print(json.dumps([fastbp.threads.pass_threads(1000)]))"
    assert _run(script, NUMBA_THREADING_LAYER="workqueue", NUMBA_NUM_THREADS="2")[0] == 1


def _train_large(seed, out):
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((256, 800)), rng.random((256, 3))
    net = fastbp.Network([800, 64, 3], seed=seed)
    net.fit(X, y, epochs=2, batch_size=64, learning_rate=0.1, seed=seed)
    out[seed] = net.get_params()


def test_threaded_training_in_two_threads_at_once_equals_one_after_the_other():
    assert fastbp.Network([800, 64, 3])._scratch.parallel_rows <= 64  # the threaded passes
    sequential, concurrent = {}, {}
    for seed in (1, 2):
        _train_large(seed, sequential)
    workers = [threading.Thread(target=_train_large, args=(s, concurrent)) for s in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for seed in (1, 2):
        np.testing.assert_array_equal(concurrent[seed], sequential[seed])


def test_blocks_per_thread_two_for_batches_one_for_large_passes():
    # two blocks per thread keep a small batch's operands in cache; from
    # ONE_BLOCK_ROWS rows per thread each extra block is a trip through memory
    two, one_block = threads.BLOCKS_PER_THREAD, threads.ONE_BLOCK_ROWS
    assert threads.pass_blocks(2, 32) == 2 * two
    assert threads.pass_blocks(2, 2 * one_block - 1) == 2 * two
    assert threads.pass_blocks(2, 2 * one_block) == 2
    assert threads.pass_blocks(4, 4 * one_block) == 4
    assert threads.pass_blocks(4, 4 * one_block - 1) == 4 * two


def test_openmp_threads_wait_boundedly_unless_the_user_chose():
    """Threads waiting at a pass's barriers spin ``WAIT_SPINS`` times, then sleep,
    so work beside the process does not stall every batch; a user's own
    ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` wins; the variable is not left in
    the environment."""
    import subprocess
    import sys

    script = (
        "import ctypes, os, sys, fastbp, numba, numpy\n"
        "fastbp.Network([64, 64, 10]).predict(numpy.zeros((512, 64)))\n"
        "gomp = ctypes.CDLL('libgomp.so.1')\n"
        "try:\n"
        "    layer = numba.threading_layer()\n"
        "except ValueError:\n"
        "    layer = None\n"
        "if layer != 'omp' or not hasattr(gomp, 'omp_display_env'):\n"
        "    sys.exit(3)\n"
        "print('GOMP_SPINCOUNT' in os.environ, flush=True)\n"
        "gomp.omp_display_env(1)\n"
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    ours = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True)
    if ours.returncode == 3:
        pytest.skip("Numba's threading layer is not OpenMP here")
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.split() == ["False"]
    assert f"GOMP_SPINCOUNT = '{threads.WAIT_SPINS}'" in ours.stderr
    theirs = subprocess.run([sys.executable, "-c", script],
                            env={**env, "GOMP_SPINCOUNT": "1234"},
                            capture_output=True, text=True)
    assert "GOMP_SPINCOUNT = '1234'" in theirs.stderr, theirs.stderr


def _count_threaded_passes(monkeypatch):
    calls = [0]
    original = _parallel.run

    def counted(*args):
        calls[0] += 1
        return original(*args)

    monkeypatch.setattr(_parallel, "run", counted)
    return calls


@pytest.mark.skipif(not threads._fast_layer() or numba.config.NUMBA_NUM_THREADS < 2,
                    reason="one thread here")
def test_threadpool_limits_limit_fastbps_passes(monkeypatch):
    """``threadpool_limits`` reaches Numba's count (the calling thread's, as
    Numba's own setting), listed in ``threadpool_info`` beside BLAS and OpenMP."""
    from threadpoolctl import threadpool_limits

    pools = [i for i in threadpool_info() if i["user_api"] == "numba"]
    assert len(pools) == 1, pools
    assert pools[0]["num_threads"] == numba.get_num_threads()
    before = numba.get_num_threads()
    calls = _count_threaded_passes(monkeypatch)
    X, y = np.zeros((512, 64)), np.zeros((512, 10))
    net = fastbp.Network([64, 64, 10], seed=0)
    net.cost_and_gradients(X, y)
    assert calls[0] > 0 and threads.pass_threads(512) == min(before, 64)
    calls[0] = 0
    for limits in (1, {"numba": 1}):
        with threadpool_limits(limits):
            assert numba.get_num_threads() == 1
            net.cost_and_gradients(X, y)
            net.predict(X)
        assert calls[0] == 0
        assert numba.get_num_threads() == before
    with threadpool_limits(10 * before):  # more than the process has: its most
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    assert numba.get_num_threads() == before


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one thread here")
def test_joblib_inner_max_num_threads_limits_fastbps_passes():
    from joblib import Parallel, delayed, parallel_config

    def threads_of_a_large_pass():
        from fastbp import threads

        return threads.pass_threads(10**6)

    with parallel_config(backend="loky", inner_max_num_threads=1):
        seen = Parallel(n_jobs=2)(delayed(threads_of_a_large_pass)() for _ in range(2))
    assert seen == [1, 1]


@pytest.mark.parametrize("files, quota", [
    ({"cpu.max": "150000 100000\n"}, 1),
    ({"cpu.max": "400000 100000\n"}, 4),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "50000 100000\n"}, 1),  # a share of one CPU: one thread
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_cpu_quota(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assert threads._cpu_quota(str(tmp_path)) == quota


def test_a_cpu_quota_caps_the_threads_of_a_pass(monkeypatch):
    monkeypatch.setattr(threads.numba, "get_num_threads", lambda: 4)
    monkeypatch.setattr(threads, "THREAD_CAP", 2)
    if threads._fast_layer():
        assert threads.pass_threads(10**6) == 2
        monkeypatch.setattr(threads, "THREAD_CAP", None)
        assert threads.pass_threads(10**6) == 4
    monkeypatch.setattr(threads, "THREAD_CAP", 1)
    assert threads.pass_threads(10**6) == 1


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="BLAS of the kernels")
def test_an_estimators_short_prediction_holds_blas_to_its_thread(monkeypatch):
    """A prediction that costs less than BLAS's threads would then spin beside the
    next fit runs its products on the calling thread; a one-row prediction pays
    nothing for it, and a long one keeps BLAS's threads."""
    from fastbp import sklearn as estimators

    rng = np.random.default_rng(0)
    X, y = rng.random((600, 64)), rng.integers(0, 10, 600)
    model = estimators.MLPClassifier(hidden_layer_sizes=(64,), max_iter=2, random_state=0)
    with pytest.warns(Warning):  # two iterations: not converged
        model.fit(X, y)
    before = _blas_threads()
    ours = {lib["filepath"] for lib in threads._kernels_blas().info()}
    if all(before[p] == 1 for p in ours):
        pytest.skip("BLAS runs one thread here")
    seen = []
    original = estimators.reference.forward

    def forward(*args):
        seen.append({p: _blas_threads()[p] for p in ours})
        return original(*args)

    monkeypatch.setattr(estimators.reference, "forward", forward)
    model.predict(X)  # 600 x 4736 multiply-adds
    assert seen and all(set(s.values()) == {1} for s in seen), seen
    seen.clear()
    model.predict(X[:1])
    many = np.repeat(X, estimators.PREDICT_ROWS // 600 + 1, axis=0)
    model.predict(many)
    assert seen and all(s == {p: before[p] for p in ours} for s in seen), seen
    assert _blas_threads() == before
