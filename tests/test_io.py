"""save/load round trips, and every kind of bad file is refused with ValueError."""

import json
import zipfile

import numpy as np
import pytest

import fastbp


@pytest.fixture(params=[(np.float64, True), (np.float32, False)], ids=["f64-bias", "f32-nobias"])
def net(request):
    dtype, bias = request.param
    return fastbp.Network([3, 5, 2], activation="tanh", output_activation="sigmoid",
                           loss="cross_entropy", l2=0.01, bias=bias, dtype=dtype, seed=7)


def test_round_trip(net, tmp_path):
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = fastbp.load(path)
    np.testing.assert_array_equal(loaded.get_params(), net.get_params())
    assert loaded.get_params().dtype == net.dtype
    assert repr(loaded) == repr(net)
    X = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))


def _rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    header = json.loads(str(data["header"]))
    header.update(changes.pop("header", {}))
    data["header"] = np.array(json.dumps(header))
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    np.savez(out, **data)
    return out


@pytest.mark.parametrize("damage,match", [
    ("truncate", "not a readable"),
    ("not_zip", "not a readable"),
    ("tamper_value", "checksum"),
    ("wrong_shape", "shape"),
    ("wrong_dtype", "dtype"),
    ("missing_array", "expected arrays"),
    ("extra_array", "expected arrays"),
    ("bad_version", "format version"),
    ("bad_layers", "valid network"),
    ("bad_activation", "valid network"),
    ("no_header", "no fastbp header"),
    ("bad_json", "not valid JSON"),
    ("pickled", "not a readable"),
])
def test_bad_files_raise_value_error(tmp_path, damage, match):
    net = fastbp.Network([3, 4, 2], seed=0)
    good = tmp_path / "good.npz"
    net.save(good)
    bad = tmp_path / "bad.npz"
    if damage == "truncate":
        bad.write_bytes(good.read_bytes()[:300])
    elif damage == "not_zip":
        bad.write_text("hello")
    elif damage == "tamper_value":
        W = net.weights[0].copy()
        W[0, 0] += 1e-9
        _rewrite(good, bad, W0=W)
    elif damage == "wrong_shape":
        _rewrite(good, bad, W0=np.zeros((4, 3)))
    elif damage == "wrong_dtype":
        _rewrite(good, bad, W0=net.weights[0].astype(np.float32))
    elif damage == "missing_array":
        _rewrite(good, bad, b1=None)
    elif damage == "extra_array":
        _rewrite(good, bad, W9=np.zeros(2))
    elif damage == "bad_version":
        _rewrite(good, bad, header={"format_version": 99})
    elif damage == "bad_layers":
        _rewrite(good, bad, header={"layer_sizes": [3, -4, 2]})
    elif damage == "bad_activation":
        _rewrite(good, bad, header={"activations": ["softmax", "softmax"]})
    elif damage == "no_header":
        with np.load(good) as f:
            np.savez(bad, **{k: f[k] for k in f.files if k != "header"})
    elif damage == "bad_json":
        with np.load(good) as f:
            data = {k: f[k] for k in f.files}
        data["header"] = np.array("{not json")
        np.savez(bad, **data)
    elif damage == "pickled":
        with np.load(good) as f:
            data = {k: f[k] for k in f.files}
        data["W0"] = np.array([{"a": 1}], dtype=object)
        np.savez(bad, **data)
    with pytest.raises(ValueError, match=match):
        fastbp.load(bad)
    assert zipfile.is_zipfile(good)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastbp.load(tmp_path / "nope.npz")


def test_round_trip_keeps_the_training_record(tmp_path):
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = (X[:, :2] > 0).astype(float)
    net = fastbp.Network([3, 4, 2], loss="cross_entropy", seed=0).fit(X, y, epochs=4)
    net.save(tmp_path / "net.npz")
    loaded = fastbp.load(tmp_path / "net.npz")
    assert loaded.loss_curve_ == net.loss_curve_ and len(loaded.loss_curve_) == 4
    assert loaded.n_iter_ == 4
