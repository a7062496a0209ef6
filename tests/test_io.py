"""save/load round trips, and every kind of bad file is refused with ValueError."""

import functools
import io
import json
import math
import os
import stat
import struct
import time
import tracemalloc
import zipfile
import zlib

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


# -- hostile files: refused before their data is read or memory is allocated ------------


def _refused_cheaply(path, match, **kwargs):
    """Assert ``load`` refuses ``path`` with ValueError in bounded time and memory;
    the bounds are generous, far below what reading the file's claims would cost."""
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(ValueError, match=match):
            fastbp.load(path, **kwargs)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 10, f"refused after {seconds:.1f} s"
    assert peak < 100 << 20, f"refused after allocating {peak >> 20} MiB"


def _npy(a):
    f = io.BytesIO()
    np.lib.format.write_array(f, a, allow_pickle=False)
    return f.getvalue()


def _header_of(path):
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f["header"]))


def _raw_zip(path, entries):
    """Write a zip of ``(name, method, data, crc, size)`` entries, ``data`` as it lies
    in the file (already compressed) and ``size`` what it expands to."""
    local, central = b"", b""
    for name, method, data, crc, size in entries:
        n = name.encode()
        fields = struct.pack("<HHHHHLLLHH", 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0)
        central += (b"PK\x01\x02" + struct.pack("<H", 20) + fields
                    + struct.pack("<HHHLL", 0, 0, 0, 0, len(local)) + n)
        local += b"PK\x03\x04" + fields + n + data
    end = struct.pack("<4sHHHHLLH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(central), len(local), 0)
    path.write_bytes(local + central + end)


BOMB_SHAPE = (8192, 16384)  # 1 GiB of float64


@functools.lru_cache(maxsize=1)
def _bomb():
    """A deflated .npy of zeros, ``BOMB_SHAPE`` float64, from about 1 MB:
    ``(data, crc, size)``."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f8", "fortran_order": False, "shape": BOMB_SHAPE})
    head = head.getvalue()
    chunk = bytes(4 << 20)
    repeats = math.prod(BOMB_SHAPE) * 8 // len(chunk)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    # a full flush leaves no reference to earlier data, so one compressed chunk of
    # zeros repeats into a valid stream without compressing a gigabyte
    first = z.compress(head) + z.flush(zlib.Z_FULL_FLUSH)
    piece = z.compress(chunk) + z.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    for _ in range(repeats):
        crc = zlib.crc32(chunk, crc)
    return first + piece * repeats + z.flush(), crc, len(head) + repeats * len(chunk)


@pytest.mark.parametrize("declared", ["small", "matching"])
def test_zip_bomb_is_refused_before_decompressing(tmp_path, declared):
    good = tmp_path / "good.npz"
    fastbp.Network([3, 2], bias=False, seed=0).save(good)
    header = _header_of(good)
    if declared == "matching":  # a header that agrees with the bomb: only its ratio is wrong
        header["layer_sizes"] = list(BOMB_SHAPE)
    text = _npy(np.array(json.dumps(header)))
    data, crc, size = _bomb()
    bomb = tmp_path / "bomb.npz"
    _raw_zip(bomb, [("header.npy", zipfile.ZIP_STORED, text, zlib.crc32(text), len(text)),
                    ("W0.npy", zipfile.ZIP_DEFLATED, data, crc, size)])
    assert bomb.stat().st_size < 2 << 20 and size > 1 << 30
    with zipfile.ZipFile(bomb) as zf:  # well formed: its first bytes decompress
        with zf.open("W0.npy") as f:
            assert f.read(6) == b"\x93NUMPY"
    _refused_cheaply(bomb, "zip bomb")


@pytest.mark.parametrize("sizes,kwargs,match", [
    ([100000, 100000, 100000], {}, "max_bytes"),
    ([100000, 100000, 100000], {"max_bytes": None}, "shape"),
    ([8000, 8000, 8000], {}, "shape"),  # 1 GB of parameters: within the default bound
])
def test_header_declaring_a_huge_network_is_refused_without_allocating(
        tmp_path, sizes, kwargs, match):
    good = tmp_path / "good.npz"
    fastbp.Network([3, 4, 2], seed=0).save(good)
    bad = _rewrite(good, tmp_path / "bad.npz", header={"layer_sizes": sizes})
    assert bad.stat().st_size < 10_000
    _refused_cheaply(bad, match, **kwargs)


def test_deeply_nested_header_is_a_value_error(tmp_path):
    good = tmp_path / "good.npz"
    fastbp.Network([3, 4, 2], seed=0).save(good)
    with np.load(good) as f:
        data = {k: f[k] for k in f.files}
    data["header"] = np.array("[" * 100_000 + "]" * 100_000)
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(ValueError, match="not valid JSON"):
        fastbp.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("array,match", [(np.zeros((40, 300)), "shape"),
                                         (np.zeros((300, 40), np.float32), "dtype")])
def test_wrong_npy_header_is_refused_before_the_data_is_read(tmp_path, array, match):
    good = tmp_path / "good.npz"
    fastbp.Network([300, 40, 2], seed=0).save(good)
    bad = _rewrite(good, tmp_path / "bad.npz", W0=array)
    # a corrupt last byte, beyond what zipfile reads ahead with the .npy header:
    # reading W0's data would fail its CRC-32 instead
    with zipfile.ZipFile(bad) as zf:
        info = zf.getinfo("W0.npy")
    raw = bytearray(bad.read_bytes())
    raw[raw.index(b"\x93NUMPY", info.header_offset) + info.file_size - 1] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=match):
        fastbp.load(bad)


def test_max_bytes_bounds_the_parameters(tmp_path):
    net = fastbp.Network([3, 4, 2], seed=0)  # 26 float64 parameters: 208 bytes
    net.save(tmp_path / "net.npz")
    with pytest.raises(ValueError, match="more than max_bytes=207"):
        fastbp.load(tmp_path / "net.npz", max_bytes=207)
    for max_bytes in (208, None):
        loaded = fastbp.load(tmp_path / "net.npz", max_bytes=max_bytes)
        np.testing.assert_array_equal(loaded.get_params(), net.get_params())
    with pytest.raises(ValueError, match="max_bytes"):
        fastbp.load(tmp_path / "net.npz", max_bytes=0)


# -- atomic save ---------------------------------------------------------------------------


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch, error):
    path = tmp_path / "net.npz"
    fastbp.Network([3, 4, 2], seed=0).save(path)
    before = path.read_bytes()

    def savez_that_fails_midway(file, **arrays):
        file.write(b"PK\x03\x04 the first bytes of a zip")
        raise error

    monkeypatch.setattr(fastbp.io.np, "savez", savez_that_fails_midway)
    with pytest.raises(type(error)):
        fastbp.Network([3, 4, 2], seed=1).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_save_over_an_existing_file_round_trips_and_keeps_its_mode(tmp_path):
    path = tmp_path / "net.model"  # used as given: no ".npz" appended
    fastbp.Network([3, 4, 2], seed=0).save(path)
    path.chmod(0o640)
    net = fastbp.Network([2, 5, 1], bias=False, seed=1)
    net.save(path)
    loaded = fastbp.load(path)
    assert repr(loaded) == repr(net)
    np.testing.assert_array_equal(loaded.get_params(), net.get_params())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["net.model"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_new_file_gets_the_mode_open_would_give(tmp_path):
    old = os.umask(0o027)
    try:
        fastbp.Network([3, 2], seed=0).save(tmp_path / "net.npz")
        (tmp_path / "plain").open("wb").close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "net.npz").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o640


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_save_through_a_symlink_writes_its_target(tmp_path):
    real, link = tmp_path / "real.npz", tmp_path / "link.npz"
    fastbp.Network([3, 2], seed=0).save(real)
    link.symlink_to(real)
    net = fastbp.Network([3, 2], seed=1)
    net.save(link)
    assert link.is_symlink()
    np.testing.assert_array_equal(fastbp.load(real).get_params(), net.get_params())
