"""What a newcomer types: the README's snippets, and its main command in a
fresh checkout's root after ``pip install .``."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _snippets():
    return re.findall(r"^```python\n(.*?)^```", README, re.S | re.M)


def test_the_readme_has_snippets_to_run():
    assert len(_snippets()) >= 3


# The compiled run covers the snippets; with the kernels as plain Python their
# training (a dask fit over 20 000 rows, a 200-epoch sine) takes minutes.
@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1",
                    reason="trains for minutes as plain Python; run with the compiler")
@pytest.mark.parametrize("index", range(len(_snippets())))
def test_each_readme_snippet_runs_on_its_own(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets may write files
    exec(compile(_snippets()[index], f"README.md snippet {index + 1}", "exec"), {})


def _tracked_files():
    out = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [f for f in out.stdout.splitlines() if (ROOT / f).is_file()]


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="times the compiler")
def test_main_command_in_a_fresh_checkout_root_after_pip_install(tmp_path):
    checkout, site, cache = tmp_path / "fastbp-checkout", tmp_path / "site", tmp_path / "cache"
    for name in _tracked_files():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, checkout / name)
    # The wheel `pip install .` builds, built once and then installed.
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), "."], capture_output=True, text=True, cwd=checkout, timeout=900)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("*.whl")
    # It carries kernels Numba compiled for this CPython (its cache files are named
    # for one version) and this platform: its tag says so, not py3-none-any.
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert wheel.name.endswith(f"-{python}-{python}-{platform}.whl"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        cached = [Path(n).name for n in archive.namelist() if n.endswith((".nbi", ".nbc"))]
    assert cached, "the wheel carries no compiled kernels"
    other = [n for n in cached if f".py{python[2:]}." not in n]
    assert not other, f"kernels for another Python in the wheel: {other[:3]}"
    # Built in folders of its own: two builds from one checkout at once (two
    # Pythons) would otherwise share them and ship each other's kernels.
    assert not (checkout / "build").exists(), "the build wrote build/ in the checkout"
    assert not list(checkout.glob("*.egg-info")), "the build wrote egg-info in the checkout"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
         str(wheel)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert install.returncode == 0, install.stderr
    # As in a fresh venv: no editable install of this project (as the test run
    # may have) to find fastbp.kernels where the checkout's fastbp/ cannot.
    hide = tmp_path / "hide-editable"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path\n"
        "                    if '__editable__' not in getattr(f, '__module__', '')]\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide), str(site)]),
           "XDG_CACHE_HOME": str(cache)}
    for name in ("NUMBA_CACHE_DIR", "FASTBP_NO_CACHE"):
        env.pop(name, None)

    # The first process of a fresh install, with an empty cache, compiles nothing:
    # the wheel carries the kernels compiled at build time (setup.py), and the
    # first import copies them into the cache.
    before = sorted((site / "fastbp").rglob("*"))
    count = subprocess.run([sys.executable, "-c", FIRST_CALLS_SCRIPT], capture_output=True,
                           text=True, cwd=tmp_path, env=env, timeout=600)
    assert count.returncode == 0, count.stderr
    first = json.loads(count.stdout.strip().splitlines()[-1])
    assert first["compiled"] == [], f"a fresh install compiled {first['compiled']}"
    assert Path(first["cache"]).is_relative_to(cache)
    assert list(Path(first["cache"]).glob("*.nbi")), "nothing was copied into the cache"

    # `python -m` puts the checkout's root first on sys.path: its fastbp/ is found
    # before the installed one, and must import all the same.
    demo = subprocess.run([sys.executable, "-m", "fastbp"], capture_output=True, text=True,
                          cwd=checkout, env=env, timeout=600)
    assert demo.returncode == 0, demo.stderr
    assert "gradient check" in demo.stdout and "BFGS" in demo.stdout

    # The installed copy writes its compiled kernels to the user's cache folder,
    # never into the package, where files pip does not know of would outlive an
    # uninstall and shadow the next install.
    script = ("import fastbp, numpy as np; print(fastbp.__file__); "
              "fastbp.Network([2, 3, 1]).cost_and_gradients(np.ones((3, 2)), np.ones((3, 1)))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.split()[0]).is_relative_to(site)
    written = sorted(set((site / "fastbp").rglob("*")) - set(before))
    assert not written, f"files written inside the installed package: {written[:3]}"


# What a new user's first process runs: the seed network's call, and a float32
# epoch large enough for the threaded pass where there are two threads.
FIRST_CALLS_SCRIPT = """
import json
from numba.core import event
with event.install_recorder("numba:compile") as record:
    import numpy as np, fastbp
    from fastbp.datasets import seed_example
    fastbp.Network([2, 3, 1], bias=False).cost_and_gradients(*seed_example())
    rng = np.random.default_rng(0)
    X, y = rng.random((256, 784), np.float32), rng.random((256, 10), np.float32)
    fastbp.Network([784, 128, 10], dtype=np.float32).fit(X, y, epochs=1, batch_size=32)
from fastbp.kernels import _jit
print(json.dumps({"cache": _jit.cache_folder(),
                  "compiled": sorted({e.data["dispatcher"].py_func.__qualname__
                                      for _, e in record.buffer if e.is_start})}))
"""
