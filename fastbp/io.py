"""Saving and loading networks as one ``.npz`` file, never through pickle.

The file holds ``W0, b0, W1, b1, ...`` (no ``b*`` without biases) and ``header``, a
JSON string with the format version, the network's settings, its training record
(``loss_curve_``, ``n_iter_``; absent from older files, which load with an empty
record) and a SHA-256 of the parameters, so a truncated, tampered or mismatched
file is refused with a ``ValueError`` that says what is wrong.

:func:`load` treats the file as untrusted: it checks the zip directory, the header
and every array's ``.npy`` header against each other before it reads any array
data, so a small file cannot make it decompress or allocate much more than the
network it describes (see :data:`MAX_BYTES`, :data:`HEADER_MAX_BYTES` and
:data:`MAX_RATIO`). :func:`save` replaces the file atomically.
"""

import contextlib
import hashlib
import io  # the standard library's: imports are absolute
import json
import math
import numbers
import os
import secrets
import stat
import struct
import zipfile

import numpy as np

FORMAT = "fastbp-network"
FORMAT_VERSION = 1

#: Default bound of :func:`load` on the bytes of parameters a file may declare (2 GiB).
MAX_BYTES = 2 << 30
#: Largest ``header.npy`` entry read (32 MiB: a loss curve of some 400 000 epochs).
HEADER_MAX_BYTES = 32 << 20
#: A compressed entry expanding more than this many times is refused as a zip bomb;
#: float parameters hardly compress, and ``np.savez`` stores entries uncompressed.
MAX_RATIO = 100
#: Entries up to this size are never refused for their compression ratio.
_SMALL_ENTRY = 1 << 20
#: Bytes read from the zip at a time, so a read never needs a second full-size buffer.
_CHUNK = 16 << 20
_MAX_DIM = np.iinfo(np.intp).max
#: Errors that zipfile and numpy's .npy reader raise for malformed input.
_FORMAT_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                  KeyError, struct.error, NotImplementedError, OverflowError)


def _digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a))  # its buffer: no copy of the bytes
    return h.hexdigest()


def _named_arrays(net):
    """``{"W0": W0, "b0": b0, "W1": ...}`` views, in file order."""
    arrays = {}
    for l, W in enumerate(net.weights):
        arrays[f"W{l}"] = W
        if net.bias:
            arrays[f"b{l}"] = net.biases[l]
    return arrays


def save(net, path):
    """Write ``net`` to ``path`` (used exactly as given), atomically.

    The file is written to a temporary file in the same folder and renamed over
    ``path``, so a failed or interrupted save leaves any previous file intact. A new
    file gets the mode ``open(path, "wb")`` would give it; a replaced one keeps its own.
    """
    from . import __version__

    arrays = _named_arrays(net)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastbp_version": __version__,
        "layer_sizes": list(net.layer_sizes),
        "activations": list(net.activations),
        "loss": net.loss,
        "l2": net.l2,
        "bias": net.bias,
        "dtype": net.dtype.name,
        "backend": net.backend,
        "loss_curve": [float(loss) for loss in net.loss_curve_],
        "n_iter": int(net.n_iter_),
        "sha256": _digest(arrays.values()),
    }
    target = os.fspath(path)
    if os.path.islink(target):
        # open(path, "wb") writes through a link; replacing the link would cut it
        target = os.path.realpath(target)
    try:
        # the permission bits only: a rewritten file is no longer set-user-ID
        mode = stat.S_IMODE(os.stat(target).st_mode) & 0o777
    except FileNotFoundError:
        mode = None
    tmp, fd = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.chmod(tmp, mode)
            # a file object, so that np.savez writes to it and appends no ".npz"
            np.savez(f, header=np.array(json.dumps(header)), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(os.path.dirname(target))


def _create_temporary(target):
    """A new, uniquely named file beside ``target``: ``(path, descriptor)``."""
    folder, name = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        # the name cut short so that the temporary one stays within NAME_MAX
        tmp = os.path.join(folder, f".{name[:200]}.{secrets.token_hex(6)}.tmp")
        try:
            # mode 0o666 as open() asks for it, so the umask (and any default ACL)
            # gives the new file the mode a plain open(path, "wb") would
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def _fsync_folder(folder):
    """Make the rename durable where the platform allows a folder to be synced."""
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path, *, max_bytes=MAX_BYTES):
    """Read a network written by :meth:`fastbp.Network.save`.

    The file is checked before any array data is read or any memory is allocated
    for it: the zip entries must be exactly ``header.npy`` and the network's
    arrays, each ``.npy`` header must match the shape and dtype the JSON header
    implies, and compressed entries may not expand more than :data:`MAX_RATIO`
    times (zip bombs). Files that fail a check raise ``ValueError``.

    Parameters
    ----------
    path : str or path-like
    max_bytes : int or None, keyword-only
        The most bytes of parameters the file may declare (default
        :data:`MAX_BYTES`, 2 GiB); ``None`` for no bound, for files you trust.

    Returns
    -------
    Network
        With the saved settings, parameters, ``loss_curve_`` and ``n_iter_``.
    """
    from .kernels import _validation as v
    from .network import Network

    if max_bytes is not None:
        max_bytes = v.positive_int(max_bytes, "max_bytes")
    try:
        fh = open(os.fspath(path), "rb")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    with fh:
        try:
            zf = zipfile.ZipFile(fh)
        except _FORMAT_ERRORS as exc:
            raise _unreadable(path, exc) from exc
        with zf:
            entries = _entries(zf, os.fstat(fh.fileno()).st_size, path)
            if "header" not in entries:
                raise ValueError(f"{path!s} has no fastbp header")
            header = _read_header(zf, entries.pop("header"), path)
            settings, sizes, dtype = _settings(header, path)
            record = _training_record(header, path)
            shapes = _shapes(sizes, settings["bias"])
            n_params = sum(math.prod(shape) for shape in shapes.values())
            if max_bytes is not None and n_params * dtype.itemsize > max_bytes:
                raise ValueError(
                    f"{path!s}: the header declares {n_params} {dtype} parameters "
                    f"({n_params * dtype.itemsize} bytes), more than max_bytes={max_bytes}; "
                    "pass a larger max_bytes (or None) to load a file you trust"
                )
            if sorted(entries) != sorted(shapes):
                raise ValueError(
                    f"{path!s}: expected arrays {sorted(shapes)}, found {sorted(entries)}"
                )
            # every entry's .npy header first: nothing is read or allocated for a
            # file whose last array is wrong
            layouts = {name: _array_layout(zf, entries[name], name, shape, dtype, path)
                       for name, shape in shapes.items()}
            arrays = {name: _read_array(zf, entries[name], name, shapes[name], dtype,
                                        *layouts[name], path)
                      for name in shapes}
    if _digest(arrays.values()) != header.get("sha256"):
        raise ValueError(f"{path!s}: the parameters do not match the header's checksum")
    try:
        net = Network(sizes, **settings)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path!s}: the header does not describe a valid network ({exc})") from exc
    for name, target in _named_arrays(net).items():
        target[...] = arrays.pop(name)  # pop: each file array is freed once copied
    net.loss_curve_, net.n_iter_ = record
    return net


def _unreadable(path, what):
    return ValueError(f"{path!s} is not a readable fastbp .npz file: {what}")


def _entries(zf, file_size, path):
    """The zip's entries by array name (``"W0.npy"`` -> ``"W0"``), checked from the
    zip directory alone: no duplicates, no encryption, stored or deflated, sizes that
    fit in the file and no zip bomb."""
    entries = {}
    for info in zf.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name in entries:
            raise _unreadable(path, f"entry {info.filename!r} appears more than once")
        if info.flag_bits & 0x1:
            raise _unreadable(path, f"entry {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _unreadable(path, f"entry {info.filename!r} uses compression method "
                                    f"{info.compress_type}; only stored and deflated are read")
        if info.header_offset + info.compress_size > file_size or (
                info.compress_type == zipfile.ZIP_STORED
                and info.compress_size != info.file_size):
            raise _unreadable(path, f"entry {info.filename!r} declares sizes that do not "
                                    "fit in the file")
        if (info.compress_type != zipfile.ZIP_STORED and info.file_size > _SMALL_ENTRY
                and info.file_size > MAX_RATIO * info.compress_size):
            raise ValueError(
                f"{path!s}: entry {info.filename!r} would expand from {info.compress_size} "
                f"to {info.file_size} bytes, more than {MAX_RATIO} times: refused as a zip bomb"
            )
        entries[name] = info
    return entries


def _read_header(zf, info, path):
    """The header's JSON, parsed, from an entry of bounded size."""
    if info.file_size > HEADER_MAX_BYTES:
        raise ValueError(f"{path!s}: the header entry declares {info.file_size} bytes, "
                         f"more than the {HEADER_MAX_BYTES} a fastbp header may have")
    try:
        with zf.open(info) as f:
            raw = f.read()
    except _FORMAT_ERRORS as exc:
        raise _unreadable(path, f"the header entry: {exc}") from exc
    f = _Counted(io.BytesIO(raw))
    shape, _, dtype = _npy_header(f, "header", path)
    if dtype.hasobject:
        raise _unreadable(path, "the header holds Python objects, which load never unpickles")
    if shape != () or dtype.kind != "U":
        raise ValueError(f"{path!s}: the header is not valid JSON (a {dtype} array "
                         f"of shape {shape}, not a string)")
    if len(raw) != f.count + dtype.itemsize:
        raise _unreadable(path, f"the header entry holds {len(raw)} bytes; "
                                f"its .npy header implies {f.count + dtype.itemsize}")
    try:
        return json.loads(str(np.frombuffer(raw, dtype, count=1, offset=f.count)[0]))
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and integers longer than Python converts;
        # RecursionError a header nested deeper than the parser's stack
        raise ValueError(f"{path!s}: the header is not valid JSON ({exc})") from None


class _Counted:
    """A reader that counts the bytes read through it (the length of a .npy header)."""

    def __init__(self, f):
        self._f, self.count = f, 0

    def read(self, n):
        data = self._f.read(n)
        self.count += len(data)
        return data


def _settings(header, path):
    """``(Network keyword arguments, layer sizes, dtype)`` from the header, checked
    without building the network (its parameters could be huge)."""
    from .network import Network

    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path!s} is not a fastbp network file")
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path!s} has format version {header.get('format_version')!r}; "
            f"this fastbp reads version {FORMAT_VERSION}"
        )
    try:
        sizes, activations = header["layer_sizes"], header["activations"]
        if not isinstance(sizes, list) or len(sizes) < 2:
            raise ValueError(f"layer_sizes must be a list of at least two sizes; got {sizes!r}")
        for i, n in enumerate(sizes):
            # above the largest array dimension numpy has, no file can hold the layer
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_DIM:
                raise ValueError(f"layer_sizes[{i}] must be a positive integer up to "
                                 f"{_MAX_DIM}; got {n!r}")
        if not isinstance(activations, list) or not activations:
            raise ValueError("activations must be a non-empty list")
        if not all(isinstance(a, str) for a in activations):
            raise ValueError(f"activations must be names; got {activations!r}")
        if not isinstance(header["bias"], bool):
            raise ValueError(f"bias must be true or false; got {header['bias']!r}")
        dtype = header["dtype"]
        if not isinstance(dtype, str) or np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64; got {dtype!r}")
        l2 = header["l2"]
        if isinstance(l2, bool) or not isinstance(l2, numbers.Real):
            raise ValueError(f"l2 must be a number; got {l2!r}")
        settings = {
            # without hidden layers the one activation is the output's (softmax, say)
            "activation": activations[0] if len(activations) > 1 else "identity",
            "output_activation": activations[-1],
            "bias": header["bias"], "loss": header["loss"], "l2": l2, "dtype": dtype,
            "backend": header["backend"],
        }
        # the constructor's own checks of every setting, on a network of one unit a
        # layer (one hidden layer where the file has any): the real one could be huge
        probe = Network([1] * min(len(sizes), 3), **settings)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path!s}: the header does not describe a valid network ({exc})") from exc
    if [probe.activations[0]] * (len(sizes) - 2) + [probe.activations[-1]] != activations:
        raise ValueError(f"{path!s}: activations {activations} cannot be rebuilt")
    return settings, sizes, np.dtype(dtype)


def _shapes(sizes, bias):
    """``{"W0": (n0, n1), "b0": (n1,), ...}``, in file order."""
    shapes = {}
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"W{l}"] = (n_in, n_out)
        if bias:
            shapes[f"b{l}"] = (n_out,)
    return shapes


def _npy_header(f, name, path):
    """``(shape, fortran_order, dtype)`` from the ``.npy`` header at the start of ``f``."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
    except _FORMAT_ERRORS as exc:
        raise _unreadable(path, f"array {name}: {exc}") from exc
    raise _unreadable(path, f"array {name} has .npy format version {version}")


def _array_layout(zf, info, name, shape, dtype, path):
    """Check entry ``name``'s ``.npy`` header and zip sizes against the expected
    ``shape`` and ``dtype`` without reading its data: ``(header bytes, fortran_order)``."""
    try:
        f = zf.open(info)
    except _FORMAT_ERRORS as exc:
        raise _unreadable(path, f"array {name}: {exc}") from exc
    with f:
        counted = _Counted(f)
        file_shape, fortran_order, file_dtype = _npy_header(counted, name, path)
        header_bytes = counted.count
    if file_dtype.hasobject:
        raise _unreadable(path, f"array {name} holds Python objects, which load never unpickles")
    if file_shape != shape or file_dtype != dtype:
        raise ValueError(
            f"{path!s}: array {name} has shape {file_shape} and dtype {file_dtype}; "
            f"expected {shape} and {dtype}"
        )
    if info.file_size != header_bytes + math.prod(shape) * dtype.itemsize:
        raise _unreadable(path, f"entry {info.filename!r} declares {info.file_size} bytes; "
                                f"a {shape} {dtype} array takes "
                                f"{header_bytes + math.prod(shape) * dtype.itemsize}")
    return header_bytes, fortran_order


def _read_array(zf, info, name, shape, dtype, header_bytes, fortran_order, path):
    """Entry ``name``'s data, its size already checked: read in bounded chunks."""
    # np.savez writes a Fortran-ordered file for a Fortran-contiguous array
    arr = np.empty(shape, dtype, order="F" if fortran_order else "C")
    view = memoryview(arr.T if fortran_order else arr).cast("B")
    try:
        with zf.open(info) as f:
            f.read(header_bytes)  # the .npy header, checked by _array_layout
            pos = 0
            while pos < len(view):
                n = f.readinto(view[pos:pos + _CHUNK])
                if not n:
                    raise EOFError(f"{len(view) - pos} bytes missing")
                pos += n
            f.read(1)  # at the end, so that zipfile checks the entry's CRC-32
    except _FORMAT_ERRORS as exc:
        raise _unreadable(path, f"array {name}: {exc}") from exc
    return arr


def _training_record(header, path):
    losses, n_iter = header.get("loss_curve", []), header.get("n_iter", 0)
    if not (isinstance(losses, list) and all(isinstance(x, (int, float)) for x in losses)):
        raise ValueError(f"{path!s}: loss_curve in the header must be a list of numbers")
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
        raise ValueError(f"{path!s}: n_iter in the header must be a non-negative integer")
    return [float(x) for x in losses], n_iter
