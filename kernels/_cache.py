"""The on-disk cache of compiled kernels: where it is, whom it trusts, how it heals.

Numba unpickles its cache files, so whoever can write the cache folder can run
code as the user who loads it. A folder is used only when it and its parent (the
cache root) are owned by this user (or root) and writable by no one else; new
ones are created private (0700). Any other folder is refused: the kernels then
compile in memory, with one :class:`CacheWarning`.

Every file is sealed (a format tag and the SHA-256 of its bytes) and every code
file names the entry it was saved for, so a truncated, garbled or mismatched
entry (a full disk, a killed writer, a bad copy) is dropped and compiled again,
with one warning naming the folder, instead of crashing each later call. A
folder that can be read but not written (a shared cache filled beforehand) is
used read-only. Only this cache is consulted for fastbp's kernels: never Numba's
fallback into the package folder.
"""

import functools
import hashlib
import inspect
import io
import os
import pickle
import shutil
import stat
import sys
import tempfile
import uuid
import warnings

import numba
import numpy as np
from numba.core import caching, config
from numba.misc.appdirs import AppDirs

from ._blas import BLAS


class CacheWarning(UserWarning):
    """The kernel cache was refused, damaged or could not be written."""


#: Set ``FASTBP_NO_CACHE=1`` to compile in memory only (no on-disk cache).
REQUESTED = os.environ.get("FASTBP_NO_CACHE", "").strip().lower() in ("", "0", "false", "no")

#: Where the compiled kernels are cached: ``NUMBA_CACHE_DIR`` when set, else the
#: user's cache folder (``~/.cache/fastbp`` on Linux), never the package folder,
#: where files that ``pip uninstall`` does not know of would outlive the install
#: and shadow the next one.
CACHE_ROOT = AppDirs(appname="fastbp", appauthor=False).user_cache_dir

KERNELS_DIR = os.path.dirname(os.path.abspath(__file__))

#: Kernels compiled when the package was built (``pip install .`` fills it; see
#: ``fastbp.precompile``), copied into the cache on first import.
PREBUILT_DIR = os.path.join(KERNELS_DIR, "_prebuilt")

_SEAL = b"fastbp-kernel-cache-1\n"
_DIGEST_SIZE = hashlib.sha256().digest_size


def _numba_caching(name):
    """``numba.core.caching.<name>``, under its public name where a numba version
    has one, else the private one."""
    return getattr(caching, name.lstrip("_"), None) or getattr(caching, name)


@functools.cache
def _file_digest(path, mtime_ns, size):
    """sha256 of a file's bytes (memoised per modification time and size)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def content_digest(path):
    stat_ = os.stat(path)
    return _file_digest(path, stat_.st_mtime_ns, stat_.st_size)


def sources_key(folder=KERNELS_DIR):
    """One name for this exact set of kernel sources (the ``.py`` files of
    ``folder``), Numba, NumPy and the BLAS bound (:mod:`._blas`): a change to any
    kernel file (a callee's too: compiled callers embed it) starts a fresh cache
    folder, and copies of the same sources (venvs, installs, the build that
    filled :data:`PREBUILT_DIR`) share one."""
    digest = hashlib.sha256()
    try:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(".py") and not name.startswith(".") and os.path.isfile(path):
                digest.update(f"{name}:{content_digest(path)};".encode())
    except OSError:  # sources that cannot be listed or read: a folder of this copy's own
        digest.update(os.path.abspath(folder).encode())
    numpy_version = ".".join(np.__version__.split(".")[:2])
    versions = f"numba{numba.__version__}-numpy{numpy_version}-{BLAS}blas"
    return f"kernels-{digest.hexdigest()[:24]}-{versions}"


SOURCES_KEY = sources_key()

_warned = set()


def _warn_once(topic, message):
    if topic not in _warned:
        _warned.add(topic)
        warnings.warn(f"fastbp: {message}", CacheWarning, stacklevel=3)


# -- which folder -----------------------------------------------------------------


def _user_id():
    return os.geteuid() if hasattr(os, "geteuid") else None


def distrust(path):
    """Why the existing folder ``path`` may not hold code this process loads, or
    None if it may: another user than this one (or root) owns it, or a link to
    it, or anyone else can write it."""
    uid = _user_id()
    if uid is None:  # no POSIX owners (Windows): the folder's ACLs decide
        return None if os.path.isdir(path) else "is not a folder"
    trusted = (uid, 0)
    link = os.lstat(path)
    if stat.S_ISLNK(link.st_mode) and link.st_uid not in trusted:
        return f"is a link owned by user {link.st_uid}"
    target = os.stat(path)
    if not stat.S_ISDIR(target.st_mode):
        return "is not a folder"
    if target.st_uid not in trusted:
        return f"is owned by user {target.st_uid}, not by this user ({uid})"
    if target.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"can be written by other users (mode {stat.S_IMODE(target.st_mode):o})"
    return None


def _can_write(folder):
    try:
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def _candidate_roots():
    yield config.CACHE_DIR or CACHE_ROOT
    try:  # a read-only home: a folder of this user's in the temporary directory
        temporary = tempfile.gettempdir()
    except OSError:  # FileNotFoundError where no temporary directory is usable
        return
    user = str(_user_id()) if hasattr(os, "geteuid") else os.environ.get("USERNAME", "user")
    yield os.path.join(temporary, f"fastbp-cache-{user}")


def choose_folder():
    """``(folder, writable)`` for this copy's kernels, or ``(None, False)``: the
    first candidate root in which the key folder exists or can be created, if it
    and its root are trusted (:func:`distrust`); one with entries that cannot be
    written is used read-only."""
    for root in _candidate_roots():
        folder = os.path.join(root, SOURCES_KEY)
        try:
            os.makedirs(root, mode=0o700, exist_ok=True)
            if not os.path.isdir(folder):
                os.mkdir(folder, mode=0o700)
        except OSError:
            if not os.path.isdir(folder):
                continue  # cannot be made here (a read-only home, a file in the way)
        for path in (root, folder):
            reason = distrust(path)
            if reason is not None:
                _warn_once(("distrust", path), f"the kernel cache folder {path} {reason}; "
                           "refusing it, the kernels compile in memory")
                return None, False
        if _can_write(folder):
            return folder, True
        if os.access(folder, os.R_OK | os.X_OK) and any(
                name.endswith(".nbi") for name in os.listdir(folder)):
            return folder, False  # a shared cache filled beforehand: read it, add nothing
    return None, False


# -- the kernels built with the package ---------------------------------------------


def prebuilt_folder():
    """The build-time kernels for exactly these sources: this copy's, else an
    installed copy's on ``sys.path`` (a source checkout run beside its own
    install, as ``pip install . && python -m fastbp`` in the checkout does). A
    folder another user could have written is passed over."""
    roots = [os.path.dirname(PREBUILT_DIR)]
    roots += [os.path.join(p or os.curdir, "fastbp", "kernels") for p in sys.path
              if isinstance(p, str)]
    for root in roots:
        folder = os.path.join(root, "_prebuilt", SOURCES_KEY)
        if os.path.isdir(folder) and distrust(folder) is None:
            return folder
    return None


def copy_prebuilt(source, target):
    """Make ``source`` (compiled kernels) the cache folder ``target``, if that
    does not exist or is empty: copied beside it into a private folder, then
    renamed into place in one step, so a process never sees half a copy and a
    cache filled meanwhile by another process is never overwritten. Where nothing
    can be written, kernels compile as usual."""
    if os.path.isdir(target) and os.listdir(target):
        return  # a cache already
    staging = f"{target}.copy-{uuid.uuid4().hex}"
    try:
        os.makedirs(staging, mode=0o700)
        for name in os.listdir(source):
            if name.endswith((".nbi", ".nbc")):
                shutil.copyfile(os.path.join(source, name), os.path.join(staging, name))
        # replaces an empty target (the folder choice makes one); fails on a filled one
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


# -- the files ----------------------------------------------------------------------


class DamagedEntry(Exception):
    """A cache file that does not hold what fastbp wrote."""


def seal(body):
    return _SEAL + hashlib.sha256(body).digest() + body


def unseal(raw):
    """The body of a sealed file's bytes ``raw``; :class:`DamagedEntry` if they
    are not exactly what :func:`seal` wrote."""
    head = len(_SEAL) + _DIGEST_SIZE
    body = raw[head:]
    if (len(raw) < head or not raw.startswith(_SEAL)
            or hashlib.sha256(body).digest() != raw[len(_SEAL):head]):
        raise DamagedEntry("not a complete fastbp cache file")
    return body


class _KernelLocator(_numba_caching("_SourceFileBackedLocatorMixin"),
                     _numba_caching("_CacheLocator")):
    """The cache folder chosen at import, with entries stamped by their source
    file's content (not its modification time, which an install does not keep)."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = FOLDER

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return content_digest(self._py_file)

    def ensure_cache_path(self):
        os.makedirs(self._cache_path, mode=0o700, exist_ok=True)

    @classmethod
    def from_function(cls, py_func, py_file):
        return cls(py_func, py_file)


class _KernelCacheImpl(caching.CompileResultCacheImpl):
    """Numba's compile-result cache with :class:`_KernelLocator` as its only
    locator: a kernel never falls back to Numba's folder beside its source."""

    def __init__(self, py_func):
        self._lineno = py_func.__code__.co_firstlineno
        self._locator = _KernelLocator(py_func, inspect.getfile(py_func))
        modname = os.path.splitext(os.path.basename(inspect.getfile(py_func)))[0]
        self._filename_base = self.get_filename_base(f"{modname}.{py_func.__qualname__}",
                                                     getattr(sys, "abiflags", ""))


class _SealedCacheFile(caching.IndexDataCacheFile):
    """Numba's index and code files, sealed; a code file holds its entry's key."""

    def _read(self, path):
        """The body of the sealed file ``path``; None if it is absent or damaged
        (then reported and, where the folder can be written, removed)."""
        try:
            with open(path, "rb") as f:
                return unseal(f.read())
        except FileNotFoundError:
            return None
        except (OSError, DamagedEntry) as exc:
            self._drop(path, exc)
            return None

    def _drop(self, path, exc):
        action = "dropped; its kernels compile again" if WRITABLE else "ignored"
        _warn_once(("damaged", self._cache_path),
                   f"a damaged entry in the kernel cache {self._cache_path} "
                   f"({os.path.basename(path)}: {exc}) was {action}")
        if WRITABLE:
            try:
                os.unlink(path)
            except OSError:
                pass

    def _load_index(self):
        body = self._read(self._index_path)
        if body is None:
            return {}
        try:
            stream = io.BytesIO(body)
            version = pickle.load(stream)
            if version != self._version:
                return {}
            stamp, overloads = pickle.loads(stream.read())
        except Exception as exc:  # what unpickling a sealed but foreign file raises
            self._drop(self._index_path, exc)
            return {}
        return overloads if stamp == self._source_stamp else {}

    def _save_index(self, overloads):
        body = pickle.dumps(self._version, protocol=-1)
        body += self._dump((self._source_stamp, overloads))
        with self._open_for_write(self._index_path) as f:
            f.write(seal(body))

    def save(self, key, data):
        super().save(key, (key, data))

    def load(self, key):
        name = self._load_index().get(key)
        saved = None if name is None else self._load_data(name)
        if saved is None:
            return None
        if not (isinstance(saved, tuple) and len(saved) == 2 and saved[0] == key):
            # an index entry paired with another entry's code (two writers at once)
            self._drop(self._data_path(name), DamagedEntry("it holds another entry's code"))
            return None
        return saved[1]

    def _load_data(self, name):
        path = self._data_path(name)
        body = self._read(path)
        if body is None:
            return None
        try:
            return pickle.loads(body)
        except Exception as exc:
            self._drop(path, exc)
            return None

    def _save_data(self, name, data):
        with self._open_for_write(self._data_path(name)) as f:
            f.write(seal(self._dump(data)))


class KernelCache(caching.FunctionCache):
    """:class:`numba.core.caching.FunctionCache` over :class:`_SealedCacheFile`
    in :data:`FOLDER`: damaged entries compile again, a read-only folder is only
    read, and a failed write keeps the kernel in memory."""

    _impl_class = _KernelCacheImpl

    def __init__(self, py_func):
        super().__init__(py_func)
        self._cache_file = _SealedCacheFile(cache_path=self._cache_path,
                                            filename_base=self._impl.filename_base,
                                            source_stamp=self._impl.locator.get_source_stamp())

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception as exc:  # code that unpickled but cannot be rebuilt
            self._cache_file._drop(self._cache_file._index_path, exc)
            return None

    def save_overload(self, sig, data):
        if not WRITABLE:
            return
        try:
            super().save_overload(sig, data)
        except OSError as exc:
            _warn_once(("write", self._cache_path),
                       f"cannot write to the kernel cache {self._cache_path} ({exc}); "
                       "newly compiled kernels are kept in memory only")


FOLDER, WRITABLE = choose_folder() if REQUESTED else (None, False)

#: Whether fastbp's kernels are read from (and, if :data:`WRITABLE`, written to)
#: the on-disk cache.
ENABLED = FOLDER is not None

if ENABLED and WRITABLE:
    _source = prebuilt_folder()
    if _source is not None:
        copy_prebuilt(_source, FOLDER)


#: Every kernel's dispatcher, as :func:`attach` saw it.
_ATTACHED = []


def attach(dispatcher):
    """Give a kernel's dispatcher the cache (a plain Python function, under
    ``NUMBA_DISABLE_JIT``, is returned as it is)."""
    if hasattr(dispatcher, "_cache"):
        _ATTACHED.append(dispatcher)
        if ENABLED and not _detached:
            dispatcher._cache = KernelCache(dispatcher.py_func)
    return dispatcher


def any_compiled():
    """Whether any kernel has been compiled (or loaded from the cache) yet."""
    return any(d.overloads for d in _ATTACHED)


#: Set once the tables are extended: kernels made from then on (an added piece's
#: loops) get no cache either.
_detached = False


def detach_all():
    """Compile every kernel in memory from now on, those made later included: the
    tables were extended, and the cache is keyed on the package's own sources (an
    added piece's loops share their template's code, so a cached one could be
    another process's piece of the same name)."""
    global _detached
    _detached = True
    for dispatcher in _ATTACHED:
        dispatcher._cache = caching.NullCache()
