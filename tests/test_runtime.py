"""Thread counts, concurrent training and the on-disk compilation cache."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numba
import numpy as np
import pytest
from conftest import DTYPES, TOLERANCES, assert_close, fresh_ir

import fastbp

ROOT = Path(__file__).resolve().parents[1]

# Big enough for the threaded passes (3.6e6 multiply-adds) at two threads or more.
GRADIENT_SCRIPT = """
import json, numpy as np, fastbp
rng = np.random.default_rng(0)
net = fastbp.Network([64, 96, 10], seed=1)
X, y = rng.standard_normal((500, 64)), rng.random((500, 10))
J, gW, gb = net.cost_and_gradients(X, y)
print(json.dumps([J] + np.concatenate([g.ravel() for g in gW + gb]).tolist()))
"""


def _run(script, **env):
    full_env = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=full_env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    return np.array(json.loads(out.stdout.strip().splitlines()[-1]))


def test_gradient_does_not_depend_on_thread_count():
    results = [
        _run(GRADIENT_SCRIPT, NUMBA_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t),
             OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t))
        for t in (1, 2)
    ]
    # relative to the gradient's norm: BLAS may split sums differently per thread count
    diff = np.linalg.norm(results[0] - results[1]) / np.linalg.norm(results[1])
    assert diff <= 1e-12, diff


def _train(seed, out):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((400, 8))
    y = np.tanh(X[:, :2])
    net = fastbp.Network([8, 32, 2], activation="tanh", output_activation="identity",
                         loss="mse", seed=seed)
    net.fit(X, y, epochs=15, batch_size=16, learning_rate=0.05, seed=seed)
    out[seed] = net.get_params()


def test_two_threads_train_like_one_after_the_other():
    sequential, parallel = {}, {}
    for seed in (1, 2):
        _train(seed, sequential)
    threads = [threading.Thread(target=_train, args=(s, parallel)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in (1, 2):
        np.testing.assert_array_equal(parallel[seed], sequential[seed])


BOOKKEEPING_SCRIPT = """
import json, numba, numpy as np, fastbp
from numba.core.runtime import rtsys
# the serial passes: a threaded one allocates Numba's schedule of each parallel
# region (about 5 per batch), a cost that only large passes see
numba.set_num_threads(1)
rng = np.random.default_rng(0)
counts = []
for sizes, n in [((2, 3, 1), 3), ((64, 96, 10), 300)]:
    net = fastbp.Network(sizes, seed=1)
    X, y = rng.random((n, sizes[0])), rng.random((n, sizes[-1]))
    objective = net.objective(X, y)
    def calls():
        objective.cost_and_gradient()
        net.cost_and_gradients(X, y)
        net.predict(X)
        net.cost(X, y)
        net.fit(X, y, epochs=1, batch_size=16)
        net.fit(X, y, method="adam", epochs=1, batch_size=16)
    calls()  # compile
    before = rtsys.get_allocation_stats()
    for _ in range(10):
        calls()
    after = rtsys.get_allocation_stats()
    counts.append([after.alloc - before.alloc, after.mi_alloc - before.mi_alloc])
print(json.dumps(counts))
"""


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs the compiler")
def test_fused_passes_do_no_runtime_bookkeeping(tmp_path):
    # The fused entry points run without Numba's reference-counting runtime: no
    # allocation and no per-array record of the arguments (6 per call with it).
    # An empty cache: cached code reflects the options it was compiled with.
    counts = _run(BOOKKEEPING_SCRIPT, NUMBA_NRT_STATS="1", NUMBA_CACHE_DIR=str(tmp_path))
    np.testing.assert_array_equal(counts, np.zeros_like(counts))


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs the compiler")
def test_two_processes_fill_an_empty_cache_at_once(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    env.pop("FASTBP_NO_CACHE", None)
    procs = [subprocess.Popen([sys.executable, "-c", GRADIENT_SCRIPT], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    a, b = (np.array(json.loads(o.strip().splitlines()[-1])) for o, _ in outputs)
    np.testing.assert_array_equal(a, b)
    assert any(tmp_path.rglob("*.nbi")), "the cache was not redirected to NUMBA_CACHE_DIR"
    np.testing.assert_array_equal(_run(GRADIENT_SCRIPT, NUMBA_CACHE_DIR=str(tmp_path)), a)


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs the compiler")
def test_cache_can_be_switched_off(tmp_path):
    script = "import fastbp.kernels as k; print(k.CACHE); " + GRADIENT_SCRIPT
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "FASTBP_NO_CACHE": "1",
                              "NUMBA_CACHE_DIR": str(tmp_path)}, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "False"
    assert not any(tmp_path.rglob("*.nbi"))


# Every public result whose bits could depend on how the kernels came to be in
# the process. The products are large enough to go through BLAS; BFGS, whose
# dense inverse Hessian grows as the square of the parameter count, gets a
# smaller network.
SAME_BITS_SCRIPT = """
import hashlib, json, sys
for name in sys.argv[1:]:  # imported before fastbp, as a user's script might
    __import__(name)
import numpy as np, fastbp
rng = np.random.default_rng(0)
X, y = rng.standard_normal((500, 64)), rng.random((500, 10))
digests = {}
def record(key, *arrays):
    flat = np.concatenate([np.ravel(a) for a in arrays])
    digests[key] = hashlib.sha256(flat.tobytes()).hexdigest()
for dtype in (np.float32, np.float64):
    for act, out, loss in (("sigmoid", "sigmoid", "half_sse"), ("tanh", "identity", "mse"),
                           ("relu", "sigmoid", "cross_entropy"),
                           ("relu", "softmax", "cross_entropy")):
        def net(sizes=(64, 96, 10)):
            return fastbp.Network(sizes, activation=act, output_activation=out, loss=loss,
                                  dtype=dtype, seed=1)
        key = f"{np.dtype(dtype).name}-{act}-{out}"
        Y = y / y.sum(axis=1, keepdims=True) if out == "softmax" else y
        J, gW, gb = net().cost_and_gradients(X, Y)
        record(key + "-gradient", [J], *gW, *gb)
        record(key + "-predict", net().predict(X))
        for method, sizes, options in (
                ("sgd", (64, 96, 10), dict(epochs=2, batch_size=16, momentum=0.9, seed=2)),
                ("adam", (64, 96, 10), dict(epochs=2, batch_size=16, seed=2)),
                ("gd", (64, 96, 10), dict(epochs=3)),
                ("bfgs", (16, 32, 4), dict(max_iter=5))):
            Yk = Y[:, :sizes[-1]] / Y[:, :sizes[-1]].sum(1, keepdims=True) if out == "softmax" \
                else Y[:, :sizes[-1]]
            if method != "bfgs":
                options["learning_rate"] = 0.01
            trained = net(sizes).fit(X[:, :sizes[0]], Yk, method=method, **options)
            record(f"{key}-fit-{method}", trained.get_params(), trained.loss_curve_)
print(json.dumps(digests))
"""


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs the compiler")
def test_same_bits_whether_compiled_cached_uncached_or_imported_after_others(tmp_path):
    def digests(*modules, **env):
        full_env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
        full_env.pop("FASTBP_NO_CACHE", None)
        full_env.update(env)
        out = subprocess.run([sys.executable, "-c", SAME_BITS_SCRIPT, *modules],
                             capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=600)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    compiled = digests()  # an empty cache: compiles, and fills it
    assert any(tmp_path.rglob("*.nbi")), "the cache was not filled"
    others = [m for m in ("scipy.optimize", "sklearn", "torch") if _importable(m)]
    runs = {
        "loaded from the cache": digests(),
        "FASTBP_NO_CACHE=1": digests(FASTBP_NO_CACHE="1"),
        f"after importing {', '.join(others)}": digests(*others),
    }
    for how, result in runs.items():
        differ = sorted(k for k in compiled if result[k] != compiled[k])
        assert not differ, f"{how}: other bits than a compiling process for {differ}"


def _importable(module):
    import importlib.util

    return importlib.util.find_spec(module.split(".")[0]) is not None


# -- the cache folder and the kernels compiled at build time -------------------------


def test_cache_folder_is_named_after_every_kernel_source(tmp_path):
    # A change to any kernel file, a callee's included, must start a fresh cache:
    # compiled callers embed their callees, and Numba stamps each entry with its
    # own function's file only.
    from fastbp.kernels import _cache, _jit

    folder = Path(_jit.__file__).parent
    for source in folder.glob("*.py"):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    assert _cache.sources_key(tmp_path) == _cache.SOURCES_KEY
    (tmp_path / "notes.txt").write_text("not a kernel")
    assert _cache.sources_key(tmp_path) == _cache.SOURCES_KEY
    callee = tmp_path / "_exp.py"
    callee.write_text(callee.read_text() + "\n# changed\n")
    assert _cache.sources_key(tmp_path) != _cache.SOURCES_KEY
    if _jit.CACHE:
        assert _jit.cache_folder().endswith(_cache.SOURCES_KEY)
    if _jit.CACHE and os.environ.get("NUMBA_DISABLE_JIT") != "1":
        cache = fastbp.kernels._network.cost_and_gradient._cache
        assert cache._cache_path == _jit.cache_folder()  # the kernels use it


def test_prebuilt_kernels_become_an_absent_or_empty_cache_never_a_filled_one(tmp_path):
    from fastbp.kernels import _cache

    source = tmp_path / "prebuilt"
    source.mkdir()
    for name, text in (("f-1.py311.nbi", "index"), ("f-1.py311.1.nbc", "code"),
                       ("README", "other")):
        (source / name).write_text(text)
    absent, empty, filled = tmp_path / "a" / "cache", tmp_path / "empty", tmp_path / "filled"
    empty.mkdir()
    filled.mkdir()
    (filled / "f-1.py311.nbi").write_text("compiled here")
    for target in (absent, empty, filled):
        _cache.copy_prebuilt(str(source), str(target))
    for target in (absent, empty):
        assert sorted(p.name for p in target.iterdir()) == ["f-1.py311.1.nbc", "f-1.py311.nbi"]
        assert (target / "f-1.py311.1.nbc").read_text() == "code"
    assert [p.name for p in filled.iterdir()] == ["f-1.py311.nbi"]
    assert (filled / "f-1.py311.nbi").read_text() == "compiled here"
    assert not list(tmp_path.rglob("*.copy-*")), "a staging folder was left behind"


def test_prebuilt_kernels_of_an_installed_copy_serve_a_checkout(tmp_path, monkeypatch):
    # `pip install . && python -m fastbp` in a checkout runs the checkout's
    # kernels: an installed copy of the same sources on sys.path lends its
    # prebuilt ones; a copy of other sources does not.
    from fastbp.kernels import _cache

    monkeypatch.setattr(_cache, "PREBUILT_DIR", str(tmp_path / "absent" / "_prebuilt"))
    other = tmp_path / "other" / "fastbp" / "kernels" / "_prebuilt" / "kernels-0-numba0"
    other.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "other")])
    assert _cache.prebuilt_folder() is None
    same = tmp_path / "site" / "fastbp" / "kernels" / "_prebuilt" / _cache.SOURCES_KEY
    same.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "other"), str(tmp_path / "site")])
    assert Path(_cache.prebuilt_folder()) == same


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs the compiler")
def test_an_unwritable_cache_folder_falls_back_to_a_temporary_one_not_the_package(tmp_path):
    blocked = tmp_path / "a-file"  # a cache home no one can create folders in, root included
    blocked.write_text("")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(blocked), "TMPDIR": str(temporary)}
    for name in ("NUMBA_CACHE_DIR", "FASTBP_NO_CACHE"):
        env.pop(name, None)
    from fastbp.kernels import _jit

    def cache_files_in_package():
        return {p for p in Path(_jit.__file__).parent.rglob("*") if p.suffix in (".nbi", ".nbc")}

    before = cache_files_in_package()
    script = ("import fastbp, numpy as np; from fastbp.kernels import _jit, _network; "
              "fastbp.Network([2, 3, 1]).cost_and_gradients(np.ones((3, 2)), np.ones((3, 1))); "
              "print(_network.cost_and_gradient._cache._cache_path)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.split()[-1]).is_relative_to(temporary)
    assert list(temporary.rglob("*.nbi")), "nothing was cached in the temporary folder"
    assert not cache_files_in_package() - before, "cache files written inside the package"


# -- the BLAS the kernels call ------------------------------------------------------------

NEEDS_COMPILER = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="needs the compiler")


def _numpy_bundles_openblas():
    here = Path(np.__file__).resolve().parent
    return any(p.glob("*scipy_openblas64_*") for p in (here.parent / "numpy.libs",
                                                       here / ".dylibs") if p.is_dir())


def _products(dtype, rng):
    """(kernel, arguments, NumPy's result) for each large product the kernels make."""
    from fastbp.kernels import _linalg

    A, B, D = (rng.standard_normal(s).astype(dtype) for s in ((37, 300), (300, 29), (37, 29)))
    return [(_linalg.gemm_nn, (A, B), A @ B), (_linalg.gemm_nt, (D, B), D @ B.T),
            (_linalg.gemm_tn, (A, D), A.T @ D)]


@NEEDS_COMPILER
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_products_call_numpys_own_blas(dtype, rng):
    # NumPy's bundled OpenBLAS is the one a user's `@` runs; the kernels bind it
    # (kernels/_blas.py). Called the same way, it gives `@`'s bits exactly.
    if not _numpy_bundles_openblas():
        pytest.skip("this NumPy bundles no scipy_openblas64_")
    if os.environ.get("FASTBP_BLAS", "").strip().lower() == "scipy":
        pytest.skip("FASTBP_BLAS=scipy chooses SciPy's BLAS")
    from fastbp.kernels import _blas, _cache, _linalg

    assert _blas.BLAS == "numpy" and _cache.SOURCES_KEY.endswith("-numpyblas")
    A, B = rng.standard_normal((37, 300)).astype(dtype), rng.standard_normal((300, 29))
    ir = fresh_ir(_linalg._blas_product, A, B.astype(dtype), np.empty((37, 29), dtype),
                  np.bool_(False))
    assert _blas._SYMBOLS[numba.from_dtype(np.dtype(dtype))] in ir
    assert "numba_xxgemm" not in ir
    for product, args, expected in _products(dtype, rng):
        out = np.full(expected.shape, np.nan, dtype)
        product(*args, out, np.bool_(False))
        np.testing.assert_array_equal(out, expected, err_msg=product.__name__)


SCIPY_BLAS_SCRIPT = """
import json, numpy as np, fastbp
from fastbp.kernels import _blas, _cache, _linalg
rng = np.random.default_rng(0)
A, B = rng.standard_normal((37, 300)), rng.standard_normal((300, 29))
C = np.empty((37, 29))
_linalg.gemm_nn(A, B, C, np.bool_(False))
(ir,) = _linalg._blas_product.inspect_llvm().values()
net = fastbp.Network([64, 96, 10], seed=1)
X, y = rng.standard_normal((500, 64)), rng.random((500, 10))
reference = fastbp.Network([64, 96, 10], seed=1, backend="numpy")

def flat(J, gW, gb):
    return [J] + np.concatenate([g.ravel() for g in gW + gb]).tolist()

print(json.dumps({"blas": _blas.BLAS, "key": _cache.SOURCES_KEY,
                  "calls_numba": "numba_xxgemm" in ir,
                  "product": np.abs(C - A @ B).max() / np.abs(A @ B).max(),
                  "ours": flat(*net.cost_and_gradients(X, y)),
                  "reference": flat(*reference.cost_and_gradients(X, y))}))
"""


@NEEDS_COMPILER
def test_fastbp_blas_scipy_keeps_numbas_route():
    env = {**os.environ, "FASTBP_BLAS": "scipy", "FASTBP_NO_CACHE": "1"}
    out = subprocess.run([sys.executable, "-c", SCIPY_BLAS_SCRIPT], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["blas"] == "scipy" and got["key"].endswith("-scipyblas") and got["calls_numba"]
    assert got["product"] < TOLERANCES[np.dtype(np.float64)]["rtol"]
    assert_close(np.array(got["ours"]), np.array(got["reference"]))


def test_fastbp_blas_must_name_a_known_blas():
    env = {**os.environ, "FASTBP_BLAS": "mkl"}
    out = subprocess.run([sys.executable, "-c", "import fastbp"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode != 0
    assert "FASTBP_BLAS must be 'numpy' or 'scipy', not 'mkl'" in out.stderr
