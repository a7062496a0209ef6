"""The NumPy reference's gradients agree with central finite differences."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import NETWORK_KINDS, random_targets

from fastbp import reference

CASES = [(*kind, bias, l2) for kind, bias, l2
         in itertools.product(NETWORK_KINDS, [True, False], [0.0, 0.3])]


def _random_network(rng, sizes, bias):
    weights = [rng.standard_normal((a, b)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [0.1 * rng.standard_normal(b) for b in sizes[1:]] if bias else None
    return weights, biases


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", CASES)
def test_reference_gradient_matches_central_differences(case, seed):
    activation, output, loss, bias, l2 = case
    rng = np.random.default_rng([CASES.index(case), seed])
    sizes = [3, 5, 4, 3]
    acts = [activation, activation, output]
    weights, biases = _random_network(rng, sizes, bias)
    X = rng.standard_normal((6, sizes[0]))
    y = random_targets(rng, 6, sizes[-1], output, loss)
    _, gW, gb = reference.cost_and_gradients(weights, biases, X, y, acts, loss, l2)
    params = weights + (biases or [])
    analytic = np.concatenate([g.ravel() for g in gW + (gb or [])])
    eps = 1e-6
    numerical = []
    for p in params:
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            plus = reference.cost(weights, biases, X, y, acts, loss, l2)
            p[idx] = old - eps
            minus = reference.cost(weights, biases, X, y, acts, loss, l2)
            p[idx] = old
            numerical.append((plus - minus) / (2 * eps))
    numerical = np.array(numerical)
    # A dead ReLU network has a zero gradient: then the differences must vanish too.
    scale = max(np.linalg.norm(analytic + numerical), 1e-3)
    err = np.linalg.norm(analytic - numerical) / scale
    assert err < 1e-7, (err, CASES[case])


def test_the_reference_imports_no_numba_and_writes_nothing(tmp_path):
    # the readable spec runs where only NumPy does: no compiler loaded, no cache made
    script = (
        "import sys, numpy as np\n"
        "import fastbp.reference as ref\n"
        "J, gW, gb = ref.cost_and_gradients([np.ones((2, 3)), np.ones((3, 1))], None,\n"
        "                                   np.ones((4, 2)), np.ones((4, 1)),\n"
        "                                   ['tanh', 'sigmoid'])\n"
        "assert np.isfinite(J) and gW[0].shape == (2, 3)\n"
        "loaded = sorted(m for m in ('numba', 'llvmlite') if m in sys.modules)\n"
        "assert not loaded, loaded\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR",)}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["HOME"] = str(tmp_path)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert not any(tmp_path.rglob("*")), sorted(tmp_path.rglob("*"))
