"""Model files: one ``.npz`` archive holding arrays and a JSON header, no pickle.

Layout (format ``chm-model``, version 1)::

    __chm__          uint8 array: UTF-8 JSON header
                     {"format": "chm-model", "version": 1, "chm_version": ..., "params": {...},
                      "bank": FilterBank.to_dict(), "n_classes": 2,
                      "classifiers": [{"stage": s, "level": l, "type": ..., "params": {...}}, ...]}
    s{s}_l{l}_W      float32 weights of classifier (stage s, level l), shape (N*M, d+1)

Format ``chm-convnet`` (version 1), a :class:`chm.ConvNet`: the header holds ``params``,
``n_classes`` and ``n_channels``; the arrays are ``net.<name>`` (the network's weights) and
``mean`` / ``std`` (input normalisation). :func:`load` dispatches on the header's ``format``.

Loading uses ``numpy.load(..., allow_pickle=False)``, so a model file cannot run code.
Files are written to a temporary name and renamed, so a failed save never clobbers an
existing model.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "chm-model"
VERSION = 1
CONVNET_FORMAT = "chm-convnet"
_VERSIONS = {FORMAT: VERSION, CONVNET_FORMAT: 1}
_HEADER = "__chm__"

__all__ = ["save_model", "write_container", "load", "FORMAT", "VERSION", "CONVNET_FORMAT"]


def _jsonable(v):
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
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


def save_model(model, path):
    """Write a fitted :class:`chm.CHM` to ``path`` (``.npz`` is appended if missing)."""
    params = model.get_params(deep=False)
    params["feature_cache"] = None  # a cache folder is local to the machine that trained
    header = {"params": _jsonable(params), "bank": model.bank_.to_dict(),
              "n_classes": int(model.n_classes_), "threshold": float(model.threshold_), "classifiers": []}
    arrays = {}
    for (s, l), clf in model.classifiers_.items():
        meta, arrs = clf.to_state()
        header["classifiers"].append(_jsonable({"stage": s, "level": l, **meta}))
        for name, a in arrs.items():
            arrays[f"s{s}_l{l}_{name}"] = a
    return write_container(path, FORMAT, header, arrays)


def write_container(path, fmt, header, arrays):
    """Write ``arrays`` and the JSON ``header`` (plus format, version) to ``path`` (.npz appended)."""
    from . import __version__

    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    header = {"format": fmt, "version": _VERSIONS[fmt], "chm_version": __version__, **_jsonable(header)}
    arrays = dict(arrays)
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".npz.part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _upgrade_params(params):
    """Parameters of files written by earlier versions, in today's names."""
    params = dict(params)
    if isinstance(params.get("semi_supervised"), dict):  # a custom SpatialLoss, saved by to_dict()
        from .losses import SpatialLoss

        params["semi_supervised"] = SpatialLoss.from_dict(params["semi_supervised"])
    params.pop("tv_centres", None)  # spatial-loss centres are drawn afresh every epoch now
    loss = params.pop("spatial_loss", None)
    if loss is not None and (params.get("alpha") or 0) > 0 and params.get("semi_supervised") is None:
        params["semi_supervised"] = loss if isinstance(loss, str) else None
        if isinstance(loss, dict):
            from .losses import SpatialLoss

            params["semi_supervised"] = SpatialLoss.from_dict(loss)
    return params


def load(path):
    """Read a model written by :meth:`chm.CHM.save` or :meth:`chm.ConvNet.save`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is truncated, not an ``.npz`` archive, not a chm model, or of a newer format version.
    """
    from features import FilterBank

    from .classifiers import LDNN
    from .model import CHM

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
    if fmt == CONVNET_FORMAT:
        from .convnet import ConvNet  # needs torch, so only for ConvNet files

        try:
            return ConvNet._from_state(header, arrays)
        except (KeyError, TypeError, RuntimeError) as e:
            raise ValueError(f"model file '{path}' is incomplete or corrupt ({e})") from None
    params = _upgrade_params(header["params"])
    for key in ("features", "tv_levels"):
        if params.get(key) is not None:
            params[key] = tuple(params[key])
    model = CHM(**params)
    model.bank_ = FilterBank.from_dict(header["bank"])
    model.n_classes_ = header["n_classes"]
    model.threshold_ = float(header.get("threshold", 0.5))  # files written before it was learned used 0.5
    model.classifiers_ = {}
    try:
        for c in header["classifiers"]:
            s, l = c["stage"], c["level"]
            state = {k.split("_", 2)[2]: v for k, v in arrays.items() if k.startswith(f"s{s}_l{l}_")}
            model.classifiers_[(s, l)] = LDNN.from_state(c, state)
    except (KeyError, TypeError) as e:
        raise ValueError(f"model file '{path}' is incomplete or corrupt (missing {e})") from None
    if sorted(model.classifiers_) != sorted(model._schedule()):
        raise ValueError(f"model file '{path}' is incomplete: its classifiers do not match levels/stages")
    return model
