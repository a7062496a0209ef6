"""The benchmarks' plain NumPy opponent computes what fastbp computes: a speed
ratio against it compares the same work."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_close
from fastbp.kernels._optimizers import ADAM_STEPS

import fastbp

_PATH = Path(__file__).resolve().parents[1] / "asv_benchmarks" / "benchmarks" / "plain.py"
_spec = importlib.util.spec_from_file_location("plain", _PATH)
plain = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plain)


def _pair(sizes, activation, output, loss, dtype=np.float64, bias=True):
    net = fastbp.Network(sizes, activation=activation, output_activation=output, loss=loss,
                         dtype=dtype, bias=bias, seed=3)
    return net, plain.PlainNetwork(net.weights, net.biases, activation, output, loss)


@pytest.mark.parametrize("activation, output, loss", [
    *((hidden, "sigmoid", "half_sse") for hidden in fastbp.kernels.ELEMENTWISE),
    ("sigmoid", "softmax", "cross_entropy")])
@pytest.mark.parametrize("bias", [True, False])
def test_plain_gradient_is_the_reference_gradient(activation, output, loss, bias):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9, 4))
    y = np.eye(3)[rng.integers(0, 3, 9)] if output == "softmax" else rng.random((9, 3))
    net, twin = _pair([4, 5, 3], activation, output, loss, bias=bias)
    J, gW, gb = net.cost_and_gradients(X, y)
    J_plain, gW_plain, gb_plain = twin.cost_and_gradients(X, y)
    assert J_plain == pytest.approx(J, rel=1e-12)
    for a, b in zip(gW_plain, gW):
        assert_close(a, b)
    if bias:
        for a, b in zip(gb_plain, gb):
            assert_close(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation, output, loss", [
    ("sigmoid", "sigmoid", "half_sse"),
    *((hidden, "identity", "mse") for hidden in fastbp.kernels.ELEMENTWISE if hidden != "sigmoid")])
def test_plain_epoch_takes_the_steps_fit_takes(dtype, activation, output, loss):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 20)).astype(dtype)
    y = rng.random((50, 2)).astype(dtype)
    # batches of 8 through 20-30-2: both weight products are large enough that
    # fit takes its steps inside BLAS
    net, twin = _pair([20, 30, 2], activation, output, loss, dtype)
    twin.sgd_epoch(X, y, 8, 0.05, np.random.default_rng(0))
    # the same visiting order as the plain loop's permutation
    order = np.random.default_rng(0).permutation(50)
    net.fit(X[order], y[order], epochs=1, batch_size=8, learning_rate=0.05, shuffle=False)
    for a, b in zip(twin.W, net.weights):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=1e-4 if dtype == np.float32 else 1e-10,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_adam_epochs_take_the_steps_fit_takes(dtype):
    rng = np.random.default_rng(4)
    X = rng.random((50, 20)).astype(dtype)
    y = np.eye(4, dtype=dtype)[rng.integers(0, 4, 50)]
    # a large learning rate, so that wrong moments or a wrong bias correction
    # move the weights visibly; two epochs, so the moments carry over
    net, twin = _pair([20, 30, 4], "sigmoid", "softmax", "cross_entropy", dtype)
    start = net.get_params()
    order = np.random.default_rng(0).permutation(50)
    for _ in range(2):
        # the same visiting order as the plain loop's permutation
        twin.adam_epoch(X, y, 8, 0.05, np.random.default_rng(0), (0.8, 0.99), 1e-7)
        net.fit(X[order], y[order], method="adam", epochs=1, batch_size=8, learning_rate=0.05,
                betas=(0.8, 0.99), eps=1e-7, shuffle=False, resume=True)
    assert twin.adam_state[0] == net.optimizer_.hyper[ADAM_STEPS] == 14
    assert np.abs(net.get_params() - start).max() > 0.1
    for a, b in zip(twin.W + twin.b, net.weights + net.biases):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=1e-4 if dtype == np.float32 else 1e-10,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)


def test_the_demos_plain_numpy_gives_the_seed_numbers():
    from fastbp.__main__ import notebook_cost_and_gradient
    from fastbp.datasets import seed_example, seed_weights

    J, dW1, dW2 = notebook_cost_and_gradient(*seed_weights(), *seed_example())
    net = fastbp.Network([2, 3, 1], bias=False)
    net.weights = seed_weights()
    J_net, gW, _ = net.cost_and_gradients(*seed_example())
    assert J == pytest.approx(0.05214963371099622, rel=1e-14) == J_net
    assert_close(np.concatenate([dW1.ravel(), dW2.ravel()]),
                 np.concatenate([g.ravel() for g in gW]))


def _load(name):
    spec = importlib.util.spec_from_file_location(name, _PATH.with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("activation", fastbp.kernels.ELEMENTWISE)
def test_every_activation_runs_on_each_peer_or_is_skipped_by_name(activation, monkeypatch):
    # the asv suite enumerates fastbp's activations (W4): a peer without one must
    # skip it (NotImplementedError), never fail with a KeyError
    peers = _load("peers")
    monkeypatch.setattr(peers, "AVAILABLE", list(peers.PEERS))  # as if all were installed
    for peer in peers.PEERS:
        if activation in peers.ACTIVATIONS[peer]:
            peers.require(peer, activation)
        else:
            with pytest.raises(NotImplementedError, match=activation):
                peers.require(peer, activation)
