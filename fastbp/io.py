"""Saving and loading networks as one ``.npz`` file, never through pickle.

The file holds ``W0, b0, W1, b1, ...`` (no ``b*`` without biases) and ``header``, a
JSON string with the format version, the network's settings, its training record
(``loss_curve_``, ``n_iter_``; absent from older files, which load with an empty
record) and a SHA-256 of the parameters, so a truncated, tampered or mismatched
file is refused with a ``ValueError`` that says what is wrong.
"""

import hashlib
import json
import os
import zipfile

import numpy as np

FORMAT = "fastbp-network"
FORMAT_VERSION = 1


def _digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
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
    """Write ``net`` to ``path`` (used exactly as given)."""
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
    with open(os.fspath(path), "wb") as f:
        np.savez(f, header=np.array(json.dumps(header)), **arrays)


def _read(path):
    try:
        # Open the file ourselves so that it is closed even when np.load fails.
        with open(os.fspath(path), "rb") as fh, np.load(fh, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path!s} is not a readable fastbp .npz file: {exc}") from exc


def load(path):
    """Read a network written by :meth:`fastbp.Network.save`.

    Returns
    -------
    Network
        With the saved settings, parameters, ``loss_curve_`` and ``n_iter_``.
    """
    from .network import Network

    data = _read(path)
    if "header" not in data:
        raise ValueError(f"{path!s} has no fastbp header")
    try:
        header = json.loads(str(data.pop("header")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{path!s}: the header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path!s} is not a fastbp network file")
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path!s} has format version {header.get('format_version')!r}; "
            f"this fastbp reads version {FORMAT_VERSION}"
        )
    try:
        activations = header["activations"]
        if not isinstance(activations, list) or not activations:
            raise ValueError("activations must be a non-empty list")
        net = Network(
            header["layer_sizes"],
            # without hidden layers the one activation is the output's (softmax, say)
            activation=activations[0] if len(activations) > 1 else "identity",
            output_activation=activations[-1],
            bias=header["bias"],
            loss=header["loss"],
            l2=header["l2"],
            dtype=header["dtype"],
            backend=header["backend"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path!s}: the header does not describe a valid network ({exc})") from exc
    if list(net.activations) != activations:
        raise ValueError(f"{path!s}: activations {activations} cannot be rebuilt")
    targets = _named_arrays(net)
    if sorted(data) != sorted(targets):
        raise ValueError(f"{path!s}: expected arrays {sorted(targets)}, found {sorted(data)}")
    for name, target in targets.items():
        arr = data[name]
        if arr.shape != target.shape or arr.dtype != target.dtype:
            raise ValueError(
                f"{path!s}: array {name} has shape {arr.shape} and dtype {arr.dtype}; "
                f"expected {target.shape} and {target.dtype}"
            )
    if _digest(data[name] for name in targets) != header.get("sha256"):
        raise ValueError(f"{path!s}: the parameters do not match the header's checksum")
    for name, target in targets.items():
        target[...] = data[name]
    net.loss_curve_, net.n_iter_ = _training_record(header, path)
    return net


def _training_record(header, path):
    losses, n_iter = header.get("loss_curve", []), header.get("n_iter", 0)
    if not (isinstance(losses, list) and all(isinstance(x, (int, float)) for x in losses)):
        raise ValueError(f"{path!s}: loss_curve in the header must be a list of numbers")
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
        raise ValueError(f"{path!s}: n_iter in the header must be a non-negative integer")
    return [float(x) for x in losses], n_iter
