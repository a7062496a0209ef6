"""Sparse X (scipy.sparse matrices and arrays): the passes read the stored
entries and never densify; every result equals the dense X's, on the compiled
engine and the reference, in chunks, with weights, and in the estimators."""

import numpy as np
import pytest
from conftest import DTYPES, NETWORK_KINDS, RULE_CASES, TOLERANCES, assert_close, random_targets

import fastbp
from fastbp import objective

sp = pytest.importorskip("scipy.sparse")

FORMATS = ["csr_matrix", "csr_array", "csc_matrix", "coo_array"]


def _sparse_data(rng, n=29, n_in=15, density=0.2, dtype=np.float64):
    dense = rng.standard_normal((n, n_in)) * (rng.random((n, n_in)) < density)
    dense[3] = 0.0  # a row with no stored entry
    return dense.astype(dtype)


@pytest.fixture
def never_densified(monkeypatch):
    """Any densification of a scipy.sparse input fails the test."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("a sparse input was densified")

    for name in ("toarray", "todense"):
        monkeypatch.setattr(sp._base._spbase, name, refuse)


def _net(kind, dtype, backend="numba", n_in=15, l2=0.05):
    hidden, out_act, loss = kind
    return fastbp.Network([n_in, 6, 3], activation=hidden, output_activation=out_act,
                          loss=loss, l2=l2, dtype=dtype, seed=4, backend=backend)


@pytest.mark.parametrize("kind", NETWORK_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_cost_gradient_and_output_equal_the_dense_inputs(kind, dtype, backend, rng,
                                                         never_densified):
    dense = _sparse_data(rng, dtype=dtype)
    y = random_targets(rng, len(dense), 3, kind[1], kind[2]).astype(dtype)
    w = rng.uniform(0.0, 2.0, len(dense))
    net = _net(kind, dtype, backend)
    for fmt in FORMATS:
        X = getattr(sp, fmt)(dense)
        for weights in (None, w):
            J, gW, gb = net.cost_and_gradients(X, y, sample_weight=weights)
            J_d, gW_d, gb_d = net.cost_and_gradients(dense, y, sample_weight=weights)
            assert J == pytest.approx(J_d, rel=10 * TOLERANCES[np.dtype(dtype)]["rtol"])
            for g, g_d in zip(gW + gb, gW_d + gb_d):
                assert_close(g, g_d, dtype)
        assert_close(net.predict(X), net.predict(dense), dtype)
        assert net.cost(X, y) == pytest.approx(net.cost(dense, y),
                                               rel=10 * TOLERANCES[np.dtype(dtype)]["rtol"])


def test_chunked_passes_equal_one_pass(rng, monkeypatch):
    kind = ("tanh", "softmax", "cross_entropy")
    dense = _sparse_data(rng, n=37)
    X, y = sp.csr_array(dense), random_targets(rng, 37, 3, "softmax", "cross_entropy")
    net = _net(kind, np.float64)
    whole = net.cost_and_gradients(X, y)
    monkeypatch.setattr(objective, "CHUNK_ROWS", 5)
    parts = net.cost_and_gradients(X, y)
    assert parts[0] == pytest.approx(whole[0], rel=1e-13)
    for a, b in zip(parts[1] + parts[2], whole[1] + whole[2]):
        assert_close(a, b)
    assert_close(net.predict(X), net.predict(dense))


@pytest.mark.parametrize("method, options", [
    *((method, dict(epochs=3, batch_size=4, learning_rate=0.02, seed=2, **rule))
      for method, rule in RULE_CASES),
    ("gd", dict(epochs=4, learning_rate=0.1)),
    ("lbfgs", dict(max_iter=6)),
])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.filterwarnings("ignore::fastbp.ConvergenceWarning")
def test_fits_on_sparse_equal_fits_on_dense(method, options, dtype, rng, never_densified):
    kind = ("relu", "identity", "half_sse")
    dense = _sparse_data(rng, dtype=dtype)
    y = rng.standard_normal((len(dense), 3)).astype(dtype)
    w = rng.integers(0, 3, len(dense)).astype(dtype)
    w[0] = 1.0
    for backend in ("numba", "numpy"):
        on_sparse = _net(kind, dtype, backend).fit(sp.csr_matrix(dense), y, method,
                                                   sample_weight=w, **options)
        on_dense = _net(kind, dtype, backend).fit(dense, y, method, sample_weight=w, **options)
        scale = 1e-4 if dtype == np.float32 else 1e-11
        np.testing.assert_allclose(on_sparse.get_params(), on_dense.get_params(), rtol=scale,
                                   atol=scale)
        np.testing.assert_allclose(on_sparse.loss_curve_, on_dense.loss_curve_, rtol=scale)


def test_indices_values_and_layouts_of_every_kind_are_taken(rng):
    kind = ("sigmoid", "sigmoid", "cross_entropy")
    dense = _sparse_data(rng)
    y = (rng.random((len(dense), 3)) < 0.5).astype(float)
    net = _net(kind, np.float64)
    J = net.cost(dense, y)
    X64 = sp.csr_matrix(dense)
    X64.indices, X64.indptr = X64.indices.astype(np.int64), X64.indptr.astype(np.int64)
    readonly = sp.csr_matrix(dense)
    for a in (readonly.data, readonly.indices, readonly.indptr):
        a.flags.writeable = False
    ints = sp.csr_array((dense != 0).astype(np.int32))
    for X in (X64, readonly, sp.csr_matrix(dense, dtype=np.float32)):
        assert net.cost(X, y) == pytest.approx(J, rel=1e-6)
    assert net.cost(ints, y) == pytest.approx(net.cost((dense != 0).astype(float), y),
                                              rel=1e-12)
    f32 = _net(kind, np.float32)
    assert f32.predict(X64).dtype == np.float32
    _, gW, _ = f32.cost_and_gradients(X64, y)
    assert gW[0].dtype == np.float32


@pytest.mark.parametrize("bad, error, match", [
    ("nan", ValueError, "X contains NaN or infinity"),
    ("columns", ValueError, "X must have 15 columns"),
    ("complex", TypeError, "X must hold real numbers"),
    ("empty", ValueError, "X must not be empty"),
])
def test_bad_sparse_input_is_refused_by_name(bad, error, match, rng):
    dense = _sparse_data(rng)
    X = {"nan": sp.csr_array(np.where(dense != 0, np.nan, 0.0)),
         "columns": sp.csr_array(dense[:, :-1]),
         "complex": sp.csr_array(dense.astype(complex)),
         "empty": sp.csr_array((0, 15))}[bad]
    net = _net(("tanh", "identity", "mse"), np.float64)
    before = net.get_params()
    for call in (net.predict, lambda X: net.fit(X, np.zeros((X.shape[0], 3)))):
        with pytest.raises(error, match=match):
            call(X)
    np.testing.assert_array_equal(net.get_params(), before)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_estimators_on_sparse_input_take_sklearns_steps(solver, never_densified):
    sklearn = pytest.importorskip("sklearn.neural_network")
    from fastbp.sklearn import MLPClassifier

    rng = np.random.default_rng(1)
    dense = _sparse_data(rng, n=120, n_in=40, density=0.1)
    labels = (dense[:, :3] @ [1.0, -1.0, 0.5] > 0).astype(int) + (dense[:, 3] > 0)
    params = dict(hidden_layer_sizes=(7,), solver=solver, max_iter=8, random_state=0,
                  batch_size=30, shuffle=False, epsilon=1e-14)
    X = sp.csr_matrix(dense)
    ours = MLPClassifier(**params).fit(X, labels)
    theirs = sklearn.MLPClassifier(**params).fit(X, labels)
    rtol = 1e-6 if solver == "adam" else 1e-9
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6)
    assert (ours.predict(sp.csc_array(dense)) == ours.predict(X)).all()
