"""Model files: one ``.npz`` archive holding arrays and a JSON header, no pickle.

This module only reads and writes the container; each estimator gives and takes its own state
(``est._to_state() -> (header, arrays)``, ``Class._from_state(header, arrays)``), so neither
imports the other. Every header holds ``format``, ``version`` and ``chm_version``; :func:`load`
dispatches on the format to the class that reads it (:data:`READERS`).

Format ``chm-model`` (a :class:`chm.CHM`)::

    __chm__          uint8 array: UTF-8 JSON header
                     {"format": "chm-model", "version": 2, "chm_version": ..., "params": {...},
                      "bank": FilterBank.to_dict(), "n_classes": K, "n_channels": 1 or 3,
                      "threshold": t (K = 2), "classifiers": [{"stage": s, "level": l,
                      "type": ..., "params": {...}}, ...]}
    s{s}_l{l}_W      float32 weights of classifier (stage s, level l) (LDNN: (N*M, d+1))
    s{s}_l{l}_...    further arrays of that classifier (a K-class network's layers, the
                     compression of its map as a context)
    class_weights    K > 2: per-class weights of the decision rule

Version 1 (chm 0.1, binary gray models only) had no ``n_channels`` and no K-class arrays; it
still loads. Format ``chm-convnet`` (version 3), a :class:`chm.ConvNet`: the header holds
``params``, ``n_classes`` and ``n_channels``; the arrays are ``net.<name>`` (the network's
weights) and ``mean`` / ``std`` (input normalisation). Version 2 added the ``training``,
``crop_size`` and ``crops_per_step`` params, version 3 the ``optimizer``, ``lr_schedule`` and
``supervised_loss`` params and the ``"contrast"`` values of ``semi_supervised`` (an older chm
cannot build the estimator from them, so it says "upgrade chm"); older files load with the
defaults of the params they lack (version 1: patch training; 1 and 2: Adam, cosine decay,
cross-entropy).

Loading uses ``numpy.load(..., allow_pickle=False)``, so a model file cannot run code.
Files are written to a temporary name and renamed, so a failed save never clobbers an
existing model.
"""

import importlib
import json
import os
import zipfile

import numpy as np

from .._version import __version__
from .files import write_atomic

FORMAT = "chm-model"
VERSION = 2
CONVNET_FORMAT = "chm-convnet"
_VERSIONS = {FORMAT: VERSION, CONVNET_FORMAT: 3}
#: format -> "module:Class" whose ``_from_state(header, arrays)`` reads it; imported only when a
#: file of that format is loaded (the ConvNet needs torch).
READERS = {FORMAT: "chm.model:CHM", CONVNET_FORMAT: "chm.convnet:ConvNet"}
_HEADER = "__chm__"

__all__ = ["CONVNET_FORMAT", "FORMAT", "READERS", "VERSION", "jsonable", "load", "read_container",
           "write_container"]


def jsonable(v):
    """``v`` with tuples, numpy scalars, paths and objects with ``to_dict`` made JSON-serialisable."""
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.random.Generator):
        return None  # a Generator has no stable JSON form; the fitted weights are what matter
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if hasattr(v, "to_dict"):
        return v.to_dict()
    return v


def write_container(path, fmt, header, arrays):
    """Write ``arrays`` and the JSON ``header`` (plus format, version) to ``path`` (.npz appended).

    Returns the path written.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    header = {"format": fmt, "version": _VERSIONS[fmt], "chm_version": __version__, **jsonable(header)}
    arrays = dict(arrays)
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    write_atomic(path, lambda fh: np.savez_compressed(fh, **arrays))
    return path


def read_container(path):
    """(header, arrays) of a model file, its format and version checked.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is truncated, not an ``.npz`` archive, not a chm model, or of a newer format version.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at '{path}'")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = z.files
            header = json.loads(z[_HEADER].tobytes().decode("utf-8")) if _HEADER in files else None
            arrays = {k: z[k] for k in files if k != _HEADER}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, AttributeError) as e:
        # np.load takes non-zip bytes for a pickle and refuses it with a ValueError.
        raise ValueError(f"cannot read model file '{path}': it is truncated or not a chm model ({e})") from None
    if header is None:
        raise ValueError(f"'{path}' is not a chm model file (no '{_HEADER}' header)")
    fmt = header.get("format")
    if fmt not in _VERSIONS:
        raise ValueError(f"'{path}' is not a chm model file (format {fmt!r})")
    if not isinstance(header.get("version"), int) or header["version"] > _VERSIONS[fmt]:
        raise ValueError(f"'{path}' has {fmt} format version {header.get('version')!r}; this chm reads "
                         f"versions up to {_VERSIONS[fmt]}: upgrade chm")
    return header, arrays


def load(path):
    """Read a model written by :meth:`chm.CHM.save` or :meth:`chm.ConvNet.save`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is truncated, not an ``.npz`` archive, not a chm model, of a newer format
        version, or incomplete.
    """
    header, arrays = read_container(path)
    module, name = READERS[header["format"]].split(":")
    cls = getattr(importlib.import_module(module), name)
    try:
        return cls._from_state(header, arrays)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"model file '{os.fspath(path)}' is incomplete or corrupt ({e})") from None
