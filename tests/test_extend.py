"""A new activation, head and update rule, each added in one place
(``tests/extra_pieces.py``), reach every test that enumerates the tables, and
those tests pass for them; the additions are refused where they would be unsafe."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from fastbp.kernels import extend

import fastbp

TESTS = Path(__file__).resolve().parent

#: The test files whose cases come from the tables (and the asv suite's plain and
#: peer opponents, which enumerate them too).
TABLE_DRIVEN = ["test_kernels.py", "test_reference.py", "test_network.py", "test_threads.py",
                "test_chunks.py", "test_sample_weights.py", "test_sparse.py",
                "test_update_rules.py", "test_benchmarks.py"]

#: The fewest tests each piece must reach: a table-driven test file that stops
#: enumerating its table drops below these.
AT_LEAST = {"softsign": 100, "poisson_nll": 60, "rmsprop": 20}


def test_new_pieces_added_in_one_place_reach_every_table_driven_test(tmp_path):
    report = tmp_path / "selected.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get(
        "PYTHONPATH", "")]), "FASTBP_EXTRA_PIECES_REPORT": str(report)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "extra_pieces", "-p", "no:cacheprovider",
         *(str(TESTS / name) for name in TABLE_DRIVEN)],
        capture_output=True, text=True, cwd=TESTS.parent, env=env, timeout=1500)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    selected = json.loads(report.read_text())
    for piece, least in AT_LEAST.items():
        assert len(selected[piece]) >= least, (piece, len(selected[piece]))
    files = {nodeid.split("::")[0].rsplit("/", 1)[-1] for ids in selected.values()
             for nodeid in ids}
    assert files == set(TABLE_DRIVEN), files  # each file enumerates a table
    ran = len({nodeid for ids in selected.values() for nodeid in ids})
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped)", run.stdout)}
    # every selected case ran and passed (those that inspect compiled code skip
    # without the compiler), and most of them ran
    assert counts.get("passed", 0) + counts.get("skipped", 0) == ran, run.stdout[-2000:]
    assert counts.get("skipped", 0) <= ran // 20, run.stdout[-2000:]


def test_a_bad_name_is_refused_before_anything_changes():
    before = (dict(fastbp.kernels.ACTIVATIONS), list(fastbp.kernels.HEADS),
              dict(fastbp.kernels.UPDATE_RULES))
    with pytest.raises(ValueError, match="already an activation named 'tanh'"):
        extend.activation("tanh", output_range=(-1, 1), f=None, prime=None,
                          prime_from_output=None, reference=(None, None))
    with pytest.raises(TypeError, match="identifier"):
        extend.head("log loss", loss="x", output="exp", entry_cost=None, targets="counts",
                    reference=None)
    with pytest.raises(ValueError, match="already an update rule named 'adam'"):
        extend.update_rule("adam", hyperparameters=(), state=(), prepare=None, step=None,
                           defaults={}, reference=None)
    assert before == (dict(fastbp.kernels.ACTIVATIONS), list(fastbp.kernels.HEADS),
                      dict(fastbp.kernels.UPDATE_RULES))


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled without the compiler")
def test_adding_after_a_kernel_compiled_is_refused():
    fastbp.kernels.sigmoid(np.zeros(3))  # compiled (or loaded from the cache) now
    names = dict(fastbp.kernels.ACTIVATIONS)
    with pytest.raises(RuntimeError, match="before any kernel is compiled"):
        extend.activation("softsign", output_range=(-1, 1), f=None, prime=None,
                          prime_from_output=None, reference=(None, None))
    assert dict(fastbp.kernels.ACTIVATIONS) == names


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no kernels to cache without the compiler")
def test_an_added_piece_is_never_cached(tmp_path):
    # its loops share their template's code: a cached one could be another
    # process's piece of the same name, with other math
    script = (
        "import numpy as np\n"
        "import fastbp\n"
        "from fastbp.kernels import _activations, _cache, extend\n"
        "@extend.kernel\n"
        "def f(x, one):\n"
        "    return x + one\n"
        "@extend.kernel\n"
        "def p(x, one):\n"
        "    return one\n"
        "extend.activation('shifted', output_range=(-np.inf, np.inf), f=f, prime=p,\n"
        "                  prime_from_output=p, reference=(lambda z: z + 1, np.ones_like))\n"
        "assert np.array_equal(fastbp.kernels.activation(np.zeros(3), 'shifted'), np.ones(3))\n"
        "caches = {type(d._cache).__name__ for d in _cache._ATTACHED}\n"
        "assert caches == {'NullCache'}, caches\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=TESTS.parent, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    assert not list((tmp_path / "cache").rglob("*shifted*"))
