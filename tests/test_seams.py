"""The seams new capabilities plug into: the tables, output heads, optimizers and
gradient engines, each proved by one that uses it (softmax, Adam, a row-chunked
engine)."""

import numba
import numpy as np
import pytest
from conftest import DTYPES, TOLERANCES, assert_close
from fastbp.kernels import _activations, _heads, _optimizers

import fastbp
from fastbp import kernels, objective, optimizers, reference

needs_jit = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="compiled dispatch")


def test_every_table_row_has_its_implementations():
    assert set(reference.ACTIVATIONS) == set(kernels.ACTIVATIONS)
    assert set(optimizers.OPTIMIZERS) <= set(fastbp.training.METHOD_OPTIONS)
    assert {cls.rule_name for cls in optimizers.OPTIMIZERS.values() if cls.rule_name} <= set(
        kernels.UPDATE_RULES)
    codes = [a.code for a in kernels.ACTIVATIONS.values()]
    assert len(set(codes)) == len(codes)
    assert len({h.code for h in kernels.HEADS}) == len(kernels.HEADS)


@needs_jit
def test_an_unknown_code_fails_loudly_in_the_compiled_dispatch():
    z = np.zeros(6)
    with pytest.raises(ValueError, match="unknown activation code"):
        _activations.activate_inplace(z, 3, np.int64(99))
    with pytest.raises(ValueError, match="unknown activation code"):
        _activations.backprop_through(z, z.copy(), np.int64(99))
    with pytest.raises(ValueError, match="unknown output head code"):
        _heads.cost_and_delta(z, z, z, z[:0], np.int64(99), np.int64(0), 2, 2.0, 1.0, True)
    with pytest.raises(ValueError, match="unknown update rule code"):
        _optimizers.apply_update(np.int64(99), z, z, np.zeros(5), np.zeros((2, 6)), 0, 6)
    with pytest.raises(ValueError, match="unknown update rule code"):
        _optimizers.apply_decayed_update(np.int64(99), z, z, np.zeros(5), np.zeros((2, 6)), 0, 6,
                                         0.5)


def test_softmax_is_an_output_head_not_a_hidden_activation():
    with pytest.raises(ValueError, match="activation must be one of"):
        fastbp.Network([3, 4, 2], activation="softmax")
    with pytest.raises(ValueError, match="activation must be one of"):
        kernels.activation(np.zeros((2, 2)), "softmax")
    with pytest.raises(ValueError, match=r"loss='half_sse' needs output_activation in"):
        fastbp.Network([3, 2], output_activation="softmax")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cost_and_gradient_stay_finite_for_huge_inputs(dtype):
    # z of +-3e4 (f32: beyond where exp overflows) must give the exact limits
    net = fastbp.Network([2, 3], activation="identity", output_activation="softmax",
                         loss="cross_entropy", dtype=dtype, seed=0)
    net.weights = [np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]])]
    X = np.array([[3.0, 0.0], [-3.0, 1.0]])
    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # right, then wrong by 3e4
    proba = net.predict_proba(X)
    assert np.isfinite(proba).all()
    assert_close(proba, np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype), dtype)
    J, gW, gb = net.cost_and_gradients(X, y)
    assert J == pytest.approx(3e4 / 2, rel=TOLERANCES[np.dtype(dtype)]["rtol"])
    assert all(np.isfinite(g).all() for g in gW + gb)
    J_ref, gW_ref, _ = reference.cost_and_gradients(net.weights, net.biases, X.astype(dtype),
                                                    y.astype(dtype), net.activations,
                                                    "cross_entropy")
    assert J == pytest.approx(J_ref, rel=TOLERANCES[np.dtype(dtype)]["rtol"])
    assert_close(gW[0], gW_ref[0], dtype)


def test_softmax_targets_must_be_probability_rows():
    net = fastbp.Network([2, 3], output_activation="softmax", loss="cross_entropy", seed=0)
    X = np.zeros((2, 2))
    for bad in ([[0.5, 0.6, 0.0], [1, 0, 0]], [[1.2, -0.2, 0.0], [1, 0, 0]]):
        with pytest.raises(ValueError, match="probability vector"):
            net.cost(X, bad)
    net.cost(X, [[0.2, 0.3, 0.5], [0, 0, 1]])  # soft and one-hot rows are fine


def test_softmax_classifier_learns_three_classes_and_scores_accuracy():
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    labels = rng.integers(0, 3, 300)
    X = centres[labels] + 0.5 * rng.standard_normal((300, 2))
    y = np.eye(3)[labels]
    net = fastbp.Network([2, 8, 3], activation="tanh", output_activation="softmax",
                         loss="cross_entropy", seed=1)
    net.fit(X, y, method="adam", epochs=30, learning_rate=0.01, seed=0)
    assert net.loss_curve_[-1] < 0.2 * net.loss_curve_[0]
    assert net.score(X, y) > 0.95
    assert net.score(X, y) == np.mean(net.predict(X).argmax(1) == labels)
    np.testing.assert_allclose(net.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_steps_like_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    net = fastbp.Network([3, 6, 2], activation="tanh", output_activation="identity",
                         loss="mse", dtype=dtype, seed=3)
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    params = [torch.tensor(a.T.copy() if a.ndim == 2 else a.copy(), dtype=tdt,
                           requires_grad=True)
              for W, b in zip(net.weights, net.biases) for a in (W, b)]
    model = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))
    model = model.to(tdt)
    with torch.no_grad():
        for p, value in zip(model.parameters(), params):
            p.copy_(value)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    Xt, yt = torch.tensor(X, dtype=tdt), torch.tensor(y, dtype=tdt)
    for _ in range(3):  # three epochs of four batches, in order
        for start in range(0, 40, 10):
            opt.zero_grad()
            loss = ((model(Xt[start:start + 10]) - yt[start:start + 10]) ** 2).sum(1).mean()
            loss.backward()
            opt.step()
    net.fit(X, y, method="adam", epochs=3, batch_size=10, shuffle=False, learning_rate=0.01,
            betas=(0.8, 0.99), eps=1e-6)
    ours = [a for W, b in zip(net.weights, net.biases) for a in (W.T, b)]
    # float32 rounds each of the 12 steps; the moments amplify that, so the check
    # is relative to the step taken, not to the weights
    for a, p, start in zip(ours, model.parameters(), params):
        moved = np.abs(p.detach().numpy() - start.detach().numpy()).max()
        tol = 1e-10 if dtype == np.float64 else 2e-3
        np.testing.assert_allclose(a, p.detach().numpy(), rtol=0, atol=tol * moved)


def test_adam_keeps_its_state_across_resumed_fits():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((30, 2)), rng.random((30, 1))
    once = fastbp.Network([2, 4, 1], seed=0).fit(X, y, method="adam", epochs=4, seed=1,
                                                  learning_rate=0.01)
    twice = fastbp.Network([2, 4, 1], seed=0)
    twice.fit(X, y, method="adam", epochs=2, seed=1, learning_rate=0.01)
    twice.fit(X, y, method="adam", epochs=2, learning_rate=0.01, resume=True)
    np.testing.assert_array_equal(twice.get_params(), once.get_params())
    assert twice.loss_curve_ == once.loss_curve_ and twice.n_iter_ == 4
    with pytest.raises(ValueError, match="resume=True continues"):
        twice.fit(X, y, method="adam", epochs=1, learning_rate=0.02, resume=True)


def test_validation_scores_early_stopping_and_best_weights():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 2))
    y = np.eye(2)[(X[:, 0] * X[:, 1] > 0).astype(int)]
    net = fastbp.Network([2, 12, 2], activation="tanh", output_activation="softmax",
                         loss="cross_entropy", seed=0)
    X_val, y_val = X[150:], y[150:]
    best = {}

    def remember(n, epoch, loss):
        best.setdefault("score", -1.0)
        if n.validation_scores_[-1] > best["score"]:
            best.update(score=n.validation_scores_[-1], params=n.get_params())

    net.fit(X[:150], y[:150], method="adam", epochs=400, learning_rate=0.05, tol=0.0,
            n_iter_no_change=5, validation_data=(X_val, y_val), restore_best=True,
            callback=remember, seed=0)
    assert net.converged_ is True and net.n_iter_ < 400
    assert len(net.validation_scores_) == net.n_iter_
    assert max(net.validation_scores_) == best["score"]
    np.testing.assert_array_equal(net.get_params(), best["params"])
    assert net.score(X_val, y_val) == best["score"]
    assert net.best_loss_ == min(net.loss_curve_)
    # a fraction of the rows is set aside instead, drawn by the seeded generator
    runs = [fastbp.Network([2, 12, 2], activation="tanh", output_activation="softmax",
                           loss="cross_entropy", seed=0).fit(
        X, y, method="sgd", epochs=3, validation_fraction=0.2, seed=4) for _ in range(2)]
    assert runs[0].validation_scores_ == runs[1].validation_scores_
    assert len(runs[0].validation_scores_) == 3


class RowChunkedObjective(objective.CompiledObjective):
    """A test-only gradient engine: the compiled pass over blocks of rows, summed,
    as a data-parallel engine (threads, a cluster) computes it."""

    BLOCK = 7

    def cost_and_gradient(self, params=None, out=None):
        if params is not None:
            self.net.set_params(params)
        grad = self._gradient_buffer(out)
        grad[...] = 0.0
        n, J = self.n_rows, 0.0
        for start in range(0, n, self.BLOCK):
            rows = slice(start, min(start + self.BLOCK, n))
            m = rows.stop - rows.start
            # a mean-type loss is a mean over the block: weight it by the block's share
            share = m / n if self.net._head.mean else 1.0
            part = objective.CompiledObjective(self.net, self.X[rows], self.y[rows],
                                               self.data_scale * share)
            Jb, gb = part.cost_and_gradient(out=np.empty_like(grad))
            J += Jb - part._l2_term()
            grad += gb - self.net.l2 * _weights_only(self.net, self.net._params)
        grad += self.net.l2 * _weights_only(self.net, self.net._params)
        return J + self._l2_term(), grad


def _weights_only(net, params):
    mask = np.zeros_like(params)
    for w0, w1, _, _, _ in net._slices:
        mask[w0:w1] = 1.0
    return params * mask


@pytest.mark.parametrize("loss, output", [("mse", "identity"), ("cross_entropy", "softmax")])
def test_a_new_gradient_engine_is_one_class_in_the_engine_table(monkeypatch, loss, output):
    monkeypatch.setitem(objective.ENGINES, "row-chunked", RowChunkedObjective)
    monkeypatch.setattr(fastbp.network, "BACKENDS", tuple(objective.ENGINES))
    rng = np.random.default_rng(7)
    X = rng.standard_normal((30, 4))
    y = np.eye(3)[rng.integers(0, 3, 30)]
    nets = {b: fastbp.Network([4, 5, 3], activation="tanh", output_activation=output,
                              loss=loss, l2=0.1, seed=2, backend=b)
            for b in ("numba", "row-chunked")}
    (J, gW, gb), (J2, gW2, gb2) = (n.cost_and_gradients(X, y) for n in nets.values())
    assert J2 == pytest.approx(J, rel=1e-12)
    for g, g2 in zip(gW + gb, gW2 + gb2):
        assert_close(g2, g)
    for net in nets.values():
        with pytest.warns(fastbp.ConvergenceWarning):
            net.fit(X, y, method="lbfgs", max_iter=20)
    a, b = (n.get_params() for n in nets.values())
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-8)
