"""The kernels' on-disk cache: private, refusing folders others can write,
healing damaged entries, read-only where it cannot be written, and never in the
package folder. Each case runs in a fresh process, as the cache is chosen at import."""

import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1",
                                reason="no compiled kernels to cache")

# A small kernel in both dtypes (two entries of one function), reporting where
# the kernels are cached, what this process compiled and the cache's warnings.
SCRIPT = """
import json, warnings
import numpy as np
from numba.core import event
with warnings.catch_warnings(record=True) as caught, \\
        event.install_recorder("numba:compile") as record:
    warnings.simplefilter("always")
    import fastbp
    from fastbp.kernels import _cache
    values = [float(fastbp.kernels.sigmoid(np.full(3, 0.5, dtype))[0])
              for dtype in (np.float64, np.float32)]
print(json.dumps({
    "folder": _cache.FOLDER, "writable": _cache.WRITABLE, "values": values,
    "compiled": sorted({e.data["dispatcher"].py_func.__qualname__
                        for _, e in record.buffer if e.is_start}),
    "warnings": [str(w.message) for w in caught if issubclass(w.category, fastbp.CacheWarning)],
}))
"""
EXPECTED = [0.6224593312018546, 0.6224593]


def _run(env, prelude=""):
    env = {**os.environ, **env}
    for name in ("FASTBP_NO_CACHE", *(k for k, v in env.items() if v is None)):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", prelude + SCRIPT], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["values"][0] == pytest.approx(EXPECTED[0], rel=1e-12)
    assert result["values"][1] == pytest.approx(EXPECTED[1], rel=1e-6)
    return result


def _cache_files():
    from fastbp.kernels import _cache

    return {p for p in Path(_cache.KERNELS_DIR).rglob("*") if p.suffix in (".nbi", ".nbc")}


@pytest.fixture
def filled(tmp_path):
    """A cache root filled by one process: ``(root, key folder)``."""
    root = tmp_path / "cache"
    first = _run({"NUMBA_CACHE_DIR": str(root)})
    assert first["compiled"] and not first["warnings"]
    return root, Path(first["folder"])


def test_new_cache_folders_are_private_and_reused(filled):
    root, folder = filled
    assert folder.parent == root
    for path in (root, folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert sorted(p.suffix for p in folder.iterdir()).count(".nbi") >= 2
    again = _run({"NUMBA_CACHE_DIR": str(root)})
    assert again["compiled"] == [] and again["warnings"] == []


class _Planted:
    """What another user could leave in a cache folder: a pickle that runs code
    (here: creates a file) when Numba unpickles it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def _plant(folder, marker):
    for index in folder.glob("*.nbi"):
        index.write_bytes(pickle.dumps(_Planted(str(marker))))


@pytest.mark.parametrize("how", ["another user", "writable by others"])
def test_a_folder_another_user_can_write_is_refused_and_nothing_is_unpickled(filled, tmp_path,
                                                                            how):
    root, folder = filled
    marker = tmp_path / "planted-code-ran"
    _plant(folder, marker)
    prelude = ""
    if how == "another user":
        if os.geteuid() == 0:  # a real other owner
            for path in (root, folder, *folder.iterdir()):
                os.chown(path, 65534, 65534)
        else:  # this process sees itself as another user than the folder's owner
            prelude = f"import os; os.geteuid = lambda: {os.geteuid() + 1}\n"
    else:
        for path in (root, folder):
            path.chmod(0o777)
    result = _run({"NUMBA_CACHE_DIR": str(root)}, prelude)
    assert not marker.exists(), "code planted in the cache folder ran"
    assert result["folder"] is None and result["compiled"]  # compiled in memory
    assert len(result["warnings"]) == 1
    assert str(root) in result["warnings"][0] and "refusing" in result["warnings"][0]


def test_the_temporary_fallback_refuses_a_folder_planted_by_another_user(filled, tmp_path):
    # A read-only home: the kernels would go to <tmp>/fastbp-cache-<uid>, which
    # another user created first (mode 777) and filled with code of theirs.
    root, folder = filled
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    planted = temporary / f"fastbp-cache-{os.geteuid()}"
    shutil.copytree(root, planted)
    marker = tmp_path / "planted-code-ran"
    _plant(planted / folder.name, marker)
    for path in (planted, planted / folder.name):
        path.chmod(0o777)
    blocked = tmp_path / "a-file"  # a cache home no one can create folders in, root included
    blocked.write_text("")
    result = _run({"XDG_CACHE_HOME": str(blocked), "TMPDIR": str(temporary),
                   "NUMBA_CACHE_DIR": None})
    assert not marker.exists(), "code planted in the temporary cache folder ran"
    assert result["folder"] is None and len(result["warnings"]) == 1


@pytest.mark.parametrize("damage", ["truncated index", "garbage index", "truncated code",
                                    "garbage code", "swapped code"])
def test_a_damaged_entry_is_dropped_and_compiled_again(filled, damage):
    root, folder = filled
    indexes = sorted(folder.glob("_activations.sigmoid_1d-*.nbi"))
    codes = sorted(folder.glob("_activations.sigmoid_1d-*.nbc"))
    assert len(indexes) == 1 and len(codes) == 2  # one entry per dtype
    target = indexes[0] if "index" in damage else codes[0]
    raw = target.read_bytes()
    if damage.startswith("truncated"):
        target.write_bytes(raw[: len(raw) // 2])
    elif damage.startswith("garbage"):
        target.write_bytes(os.urandom(len(raw)))
    else:  # each dtype's index entry now points at the other dtype's code
        first, second = codes[0].read_bytes(), codes[1].read_bytes()
        codes[0].write_bytes(second)
        codes[1].write_bytes(first)
    healing = _run({"NUMBA_CACHE_DIR": str(root)})
    assert "sigmoid_1d" in healing["compiled"]
    assert len(healing["warnings"]) == 1 and str(folder) in healing["warnings"][0]
    healed = _run({"NUMBA_CACHE_DIR": str(root)})
    assert healed["compiled"] == [] and healed["warnings"] == []


def test_a_cache_that_cannot_be_written_is_read_not_ignored(filled):
    root, folder = filled
    (missing,) = folder.glob("_activations.sigmoid_1d-*.2.nbc")
    missing.unlink()  # one entry's code gone: compiled again, and not written
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    prelude = ""
    if os.geteuid() == 0:  # root writes anywhere: this process is told it cannot
        prelude = ("import tempfile\n_temporary_file = tempfile.TemporaryFile\n"
                   "def _refuse(*a, dir=None, **k):\n"
                   f"    if dir and str(dir).startswith({str(root)!r}):\n"
                   "        raise PermissionError(13, 'Permission denied', dir)\n"
                   "    return _temporary_file(*a, dir=dir, **k)\n"
                   "tempfile.TemporaryFile = _refuse\n")
    for path in (root, folder):
        path.chmod(0o500)
    try:
        result = _run({"NUMBA_CACHE_DIR": str(root)}, prelude)
    finally:
        for path in (root, folder):
            path.chmod(0o700)
    assert result["folder"] == str(folder) and result["writable"] is False
    assert result["warnings"] == []
    assert result["compiled"] == ["sigmoid_1d"]  # the rest was read from the cache
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_import_needs_no_writable_folder_at_all(tmp_path):
    # A read-only home and no usable temporary directory: compile in memory.
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    prelude = "import tempfile\ntempfile._candidate_tempdir_list = lambda: []\n"
    before = _cache_files()
    result = _run({"XDG_CACHE_HOME": str(blocked), "NUMBA_CACHE_DIR": None}, prelude)
    assert result["folder"] is None and result["compiled"] and result["warnings"] == []
    assert not _cache_files() - before, "cache files written inside the package"


def test_a_file_in_place_of_the_cache_folder_never_sends_files_into_the_package(tmp_path):
    from fastbp.kernels import _cache

    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    (root / _cache.SOURCES_KEY).write_text("not a folder")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    before = _cache_files()
    result = _run({"NUMBA_CACHE_DIR": str(root), "TMPDIR": str(temporary)})
    assert not _cache_files() - before, "cache files written inside the package"
    assert result["folder"] is not None and Path(result["folder"]).is_relative_to(temporary)


def test_a_cache_folder_removed_while_running_is_made_again(tmp_path):
    root = tmp_path / "cache"
    prelude = ("import shutil, fastbp.kernels._cache as c\n"
               "shutil.rmtree(c.FOLDER)\n")
    before = _cache_files()
    result = _run({"NUMBA_CACHE_DIR": str(root)}, prelude)
    assert result["warnings"] == [] and list(Path(result["folder"]).glob("*.nbi"))
    assert stat.S_IMODE(Path(result["folder"]).stat().st_mode) == 0o700
    assert not _cache_files() - before
