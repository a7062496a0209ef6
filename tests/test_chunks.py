"""Full-batch passes over many rows, summed chunk by chunk (fastbp.objective): the
reference's cost and gradient across chunks, serial and threaded, the same bits
from run to run, and scratch memory that does not grow with the rows."""

import tracemalloc

import numba
import numpy as np
import pytest
from conftest import DTYPES, TOLERANCES, assert_close, random_targets
from fastbp.kernels import _network as serial
from fastbp.kernels import _parallel

import fastbp
from fastbp import objective, reference, threads

#: Every output head (sum-type and mean-type losses), each with a hidden activation
#: of its own in turn.
_HIDDEN = fastbp.kernels.ELEMENTWISE
KINDS = [(_HIDDEN[i % len(_HIDDEN)], h.outputs[0] if h.outputs else _HIDDEN[i % len(_HIDDEN)],
          h.loss) for i, h in enumerate(fastbp.kernels.HEADS)]
SIZES = [5, 7, 3]
ROWS = 45  # seven chunks of 6 or 7 rows


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of at most 7 rows."""
    monkeypatch.setattr(objective, "CHUNK_ROWS", 7)


@pytest.fixture(params=["serial", "threaded"])
def passes(request, monkeypatch):
    """Which compiled pass a chunk runs, counted: ``calls[0]`` after a call."""
    calls = [0]
    if request.param == "threaded":
        monkeypatch.setattr(threads, "PARALLEL_MIN_WORK", 1)
        monkeypatch.setattr(threads, "pass_threads", lambda n_rows: 2)
        module, name = _parallel, "run"
    else:
        module, name = serial, "cost_and_gradient"
    original = getattr(module, name)

    def counted(*args):
        calls[0] += 1
        return original(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


def _network(kind, dtype, l2=0.0):
    hidden, output, loss = kind
    return fastbp.Network(SIZES, activation=hidden, output_activation=output, loss=loss, l2=l2,
                          dtype=dtype, seed=4)


def _data(kind, dtype, n=ROWS, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, SIZES[0])).astype(dtype)
    return X, random_targets(rng, n, SIZES[-1], kind[1], kind[2]).astype(dtype)


def _flat(gW, gb):
    return np.concatenate([a.ravel() for pair in zip(gW, gb) for a in pair])


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("l2, data_scale", [(0.0, 1.0), (0.1, 0.37)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_chunked_cost_and_gradient_equal_the_reference(kind, dtype, l2, data_scale, passes):
    net = _network(kind, dtype, l2)
    X, y = _data(kind, dtype)
    obj = net.objective(X, y, data_scale)
    J, grad = obj.cost_and_gradient()
    assert passes[0] == 7  # one pass per chunk
    J_ref, gW, gb = reference.cost_and_gradients(net.weights, net.biases, obj.X, obj.y,
                                                 net.activations, net.loss, l2, data_scale)
    assert J == pytest.approx(J_ref, rel=TOLERANCES[np.dtype(dtype)]["rtol"])
    assert_close(grad, _flat(gW, gb), dtype)
    assert obj.cost() == pytest.approx(J_ref, rel=TOLERANCES[np.dtype(dtype)]["rtol"])
    # the same bits on every call, and from the public call
    again = obj.cost_and_gradient(out=np.empty_like(grad))
    assert again[0] == J
    np.testing.assert_array_equal(again[1], grad)
    if data_scale == 1.0:
        J_pub, gW_pub, gb_pub = net.cost_and_gradients(X, y)
        assert J_pub == J
        np.testing.assert_array_equal(_flat(gW_pub, gb_pub), grad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_chunks_are_even_in_row_order_and_bounded(dtype, monkeypatch):
    monkeypatch.setattr(objective, "CHUNK_ROWS", 7)
    net = _network(KINDS[0], dtype)
    for n in (1, 6, 7, 8, 45, 49, 50):
        chunks = list(objective._chunks(net, n))
        starts = [c[0] for c in chunks]
        sizes = [stop - start for start, stop, _ in chunks]
        assert starts == [0] + list(np.cumsum(sizes)[:-1]) and sum(sizes) == n
        assert len(chunks) == -(-n // 7) and max(sizes) - min(sizes) <= 1
        assert max(sizes) == objective._chunk_size(n)
        assert chunks[0][2].size >= max(sizes) * net._scratch.per_row


def _traced_peak(call):
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("mode", ["serial", "threaded"])
def test_scratch_of_a_full_batch_pass_does_not_grow_with_the_rows(mode, monkeypatch):
    monkeypatch.setattr(objective, "CHUNK_ROWS", 256)
    if mode == "threaded":
        monkeypatch.setattr(threads, "PARALLEL_MIN_WORK", 1)
        monkeypatch.setattr(threads, "pass_threads", lambda n_rows: 2)
    kind, sizes = ("tanh", "identity", "mse"), [8, 32, 4]
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((8192, 8)), rng.standard_normal((8192, 4))

    def network():
        return fastbp.Network(sizes, activation=kind[0], output_activation=kind[1],
                              loss=kind[2], l2=0.01, seed=0)

    network().cost_and_gradients(X[:300], y[:300])  # compiled (or loaded) before tracing
    peaks = {}
    for n in (2048, 8192):  # 8 and 32 chunks
        net = network()
        obj = net.objective(X[:n], y[:n])
        peaks[n] = _traced_peak(obj.cost_and_gradient)
    per_row = net._scratch.per_row * 8
    # one chunk's workspace and two gradients, at either size; all rows' scratch would
    # be 2048 x per_row bytes and then four times that
    bound = 256 * per_row + 2 * net._params.nbytes + 16384
    if not numba.config.DISABLE_JIT:  # kernels run as plain Python make temporaries per chunk
        assert peaks[2048] <= bound and peaks[8192] <= bound, (peaks, bound)
    assert peaks[8192] - peaks[2048] <= 4096, peaks
    # the public call adds the returned gradient only
    net = network()
    public = _traced_peak(lambda: net.cost_and_gradients(X, y))
    assert public <= peaks[8192] + net._params.nbytes + 4096, (public, peaks)
    if not numba.config.DISABLE_JIT:
        assert public <= bound, (public, bound)
