"""The ``chm`` command line: train a model from label images, segment images, inspect a model.

::

    chm train IMAGES LABELS -o MODEL.npz [--levels 3] [--stages 2] [--classifier ldnn|logistic]
              [--network small] [--semi-supervised auto|self-training|tv|contrast] [--alpha A] [--beta B]
              [--features haar,hog,...] [--epochs N] [--n-jobs N] [--seed S]
    chm predict MODEL.npz IMAGES -o OUTDIR [--proba] [--threshold T] [--format png|npy]
              [--overwrite] [--n-jobs N]
    chm info MODEL.npz

Every command also takes ``--quiet`` (no progress output, warnings and errors only),
``--verbose`` (debug messages, tracebacks of errors) and ``--progress`` (progress bars even
when stderr is not a terminal; by default a terminal gets bars and a log file a few plain
lines per stage). ``python -m chm`` is the same program.

Inputs
------
``IMAGES`` is a folder (its image files, not recursive, hidden files skipped, sorted by
name), a text file listing image paths (one per line; blank lines and ``#`` comments
skipped; relative paths are relative to the list file), or a single image file. Image files
are recognised by their extension (:data:`IMAGE_SUFFIXES`); colour images are read as gray.

``LABELS`` is a folder of label images matched to the images by file stem: the label image
of ``img1.png`` is ``LABELS/img1.<ext>`` or ``LABELS/img1_labels.<ext>`` (any image
extension; exactly one must exist). Every label image must match an image. ``LABELS`` may be
the images' own folder: its ``*_labels`` files are then not taken as training images.

Label images follow the scikit-image / ilastik convention, since an image file cannot hold
-1: **0 = unlabelled, 1 = background, 2 = foreground** (file value k + 1 is class k). They
are single-channel integer images of the same size as their image (gray PNG/TIFF, or an
indexed PNG whose palette indices are the values); avoid JPEG, whose compression alters
values.

Outputs
-------
``train`` writes the model atomically (:meth:`chm.CHM.save`; ``.npz`` is appended if
missing) and replaces an existing model file. ``predict`` writes one file per input image
into ``OUTDIR`` (created if needed), named by the input's stem:

* default: ``stem.png``, the mask as uint8, 0 = background, 255 = foreground
  (P(foreground) > ``--threshold``, by default the model's ``threshold_``);
* ``--proba``: ``stem.png``, P(foreground) as uint8 ``round(p * 255)``;
* ``--format npy``: ``stem.npy``, P(foreground) as a float32 (H, W) array.

Existing output files are replaced only with ``--overwrite``; otherwise ``predict`` stops
before any work. Each output is written to a temporary file and renamed, so no file is ever
half-written.

Exit status: 0 on success, 2 on a usage or input error (message ``chm: error: ...`` on
stderr), 128 + the signal number when stopped by Ctrl-C (130), SIGTERM (143) or SIGHUP (129):
the joblib workers are stopped first, and every output file already written is complete.
"""

import argparse
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from . import __version__
from ._progress import bar
from ._signals import exit_status, interruptible

__all__ = ["main", "build_parser", "list_images", "match_labels", "read_labels", "labels_from_values",
           "IMAGE_SUFFIXES", "LABEL_SUFFIX"]

logger = logging.getLogger(__name__)

#: Extensions (lower case) taken as image files in folders.
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".pnm", ".webp")
#: A label image is named like its image, optionally with this suffix added to the stem.
LABEL_SUFFIX = "_labels"

EXIT_OK = 0
EXIT_ERROR = 2  # argparse's own status for usage errors, so all user errors share one code

# Expected problems: reported as one line, not as a traceback. OSError covers missing files and
# unwritable outputs; FloatingPointError is a diverged training (a message with advice).
_USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)


# ---------------------------------------------------------------------------------------------
# Inputs

def _is_image_file(path):
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _image_files_in(folder):
    return sorted((p for p in folder.iterdir() if p.is_file() and _is_image_file(p)), key=lambda p: p.name)


def list_images(source):
    """The image files named by a command-line ``IMAGES`` argument.

    Parameters
    ----------
    source : str or os.PathLike
        A folder (its image files, sorted by name), a single image file, or a text file
        with one image path per line (``#`` comments and blank lines skipped; relative
        paths are relative to the list file's folder).

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    FileNotFoundError
        ``source`` or a listed file does not exist.
    ValueError
        No image found, or the list file is not text.
    """
    source = Path(source)
    if source.is_dir():
        paths = _image_files_in(source)
        if not paths:
            raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder '{source}'")
        return paths
    if not source.exists():
        raise FileNotFoundError(f"no such file or folder: '{source}'")
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return [source]
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"'{source}' is neither an image (by its extension) nor a text file listing "
                         "image paths") from None
    paths = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line).expanduser()
        if not path.is_absolute():
            path = source.parent / path
        if not path.is_file():
            raise FileNotFoundError(f"'{path}' (line {number} of '{source}') is not an existing file")
        paths.append(path)
    if not paths:
        raise ValueError(f"the image list '{source}' names no file")
    return paths


def _check_unique_stems(paths, why):
    seen = {}
    for p in paths:
        if p.stem in seen:
            raise ValueError(f"'{seen[p.stem]}' and '{p}' have the same name stem '{p.stem}': {why}")
        seen[p.stem] = p


def match_labels(images, label_dir):
    """The label image of every image, matched by file stem.

    The label image of ``name.ext`` is ``label_dir/name.*`` or ``label_dir/name_labels.*``
    (any extension of :data:`IMAGE_SUFFIXES`). An image file is never its own label image.

    Parameters
    ----------
    images : list of pathlib.Path
    label_dir : str or os.PathLike
        Folder of label images.

    Returns
    -------
    list of pathlib.Path
        One label image per image, in the same order.

    Raises
    ------
    FileNotFoundError
        ``label_dir`` is not a folder.
    ValueError
        An image has no label image or several, two images share a stem, or a label image
        matches no image.
    """
    label_dir = Path(label_dir)
    if not label_dir.is_dir():
        raise FileNotFoundError(f"label folder '{label_dir}' does not exist or is not a folder")
    _check_unique_stems(images, "their label images cannot be told apart")
    image_set = {p.resolve() for p in images}
    by_stem = {}
    for p in _image_files_in(label_dir):
        if p.resolve() not in image_set:  # labels may sit next to their images
            by_stem.setdefault(p.stem, []).append(p)
    matched, used = [], set()
    for image in images:
        candidates = by_stem.get(image.stem, []) + by_stem.get(image.stem + LABEL_SUFFIX, [])
        if not candidates:
            raise ValueError(f"no label image for '{image}': expected '{label_dir / image.stem}.<ext>' "
                             f"or '{label_dir / (image.stem + LABEL_SUFFIX)}.<ext>'")
        if len(candidates) > 1:
            raise ValueError(f"several label images match '{image}': "
                             + ", ".join(f"'{c}'" for c in candidates) + "; keep one")
        matched.append(candidates[0])
        used.add(candidates[0])
    unmatched = [p for group in by_stem.values() for p in group if p not in used]
    if unmatched:
        shown = ", ".join(f"'{p}'" for p in unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
        raise ValueError(f"{len(unmatched)} label image(s) in '{label_dir}' match no training image: {shown} "
                         f"(a label image is named like its image, optionally with '{LABEL_SUFFIX}' "
                         "added to the stem)")
    return matched


def labels_from_values(values, name="label image"):
    """Convert label-image values (0 = unlabelled, 1 = background, 2 = foreground) to API labels.

    Parameters
    ----------
    values : array_like of int
        Pixel values of a label image; bool and integral floats are accepted.
    name : str
        What to call the array in error messages (e.g. the file name).

    Returns
    -------
    ndarray of int8
        -1 = unlabelled, 0 = background, 1 = foreground (value - 1).

    Raises
    ------
    TypeError
        Non-integral values.
    ValueError
        Values outside 0..2.
    """
    arr = np.asarray(values)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    elif not np.issubdtype(arr.dtype, np.integer):
        integral = (np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all()
                    and np.array_equal(arr, np.round(arr)))
        if not integral:
            raise TypeError(f"{name} must hold integers 0, 1, 2, got dtype {arr.dtype}")
    bad = (arr < 0) | (arr > 2)
    if bad.any():
        hint = " (it looks like a 0/255 mask)" if arr.max() == 255 else ""
        raise ValueError(f"{name} has values outside 0..2 (e.g. {arr[bad].flat[0]:g}){hint}; label images use "
                         "0 = unlabelled, 1 = background, 2 = foreground")
    return arr.astype(np.int8) - np.int8(1)


def read_labels(path):
    """Read a label image file and convert it with :func:`labels_from_values`.

    Parameters
    ----------
    path : str or os.PathLike
        Single-channel integer image: gray, gray stored as identical RGB channels, or an
        indexed (palette) PNG, whose indices are taken as the values.

    Returns
    -------
    ndarray of int8, shape (H, W)
        -1 = unlabelled, 0 = background, 1 = foreground.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError, TypeError
        Unreadable file, colour or multi-image file, or values outside 0..2; the message
        names the file.
    """
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label image not found: '{path}'")
    try:
        arr = np.asarray(iio.imread(path))
        if arr.ndim == 3 and iio.immeta(path).get("mode") == "P":
            # imageio applies the palette by default; the indices are the label values.
            arr = np.asarray(iio.imread(path, mode="P"))
    except Exception as exc:  # decoders raise many exception types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot read label image '{path}': {reason}") from exc
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[2] in (2, 3, 4):
        colour = arr[..., :3] if arr.shape[2] >= 3 else arr[..., :1]
        if not (colour == colour[..., :1]).all():
            raise ValueError(f"label image '{path}' has colour pixels: save labels as a single-channel "
                             "image (0 = unlabelled, 1 = background, 2 = foreground)")
        arr = arr[..., 0]  # gray saved as RGB(A) by a paint program
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"label image '{path}' must be a single 2-D image, got shape {arr.shape}")
    return labels_from_values(arr, name=f"label image '{path}'")


def _name_files(exc, names):
    """Re-raise an API error whose message says ``images[i]``/``labels[i]`` with the file names.

    The CHM API only knows list positions; a command-line user needs the file.
    """
    def sub(match):
        files = names.get(match.group(1))
        i = int(match.group(2))
        return f"{match.group(0)} ('{files[i]}')" if files is not None and i < len(files) else match.group(0)

    message = re.sub(r"\b(images|labels)\[(\d+)\]", sub, str(exc))
    if message == str(exc):
        raise exc
    raise type(exc)(message) from exc


# ---------------------------------------------------------------------------------------------
# Commands

def _model_path(output):
    """The path CHM.save writes to, checked before the long training rather than after it."""
    path = Path(output if str(output).endswith(".npz") else f"{output}.npz")
    if path.is_dir():
        raise ValueError(f"output '{path}' is a folder; give a model file name, e.g. '{path / 'model.npz'}'")
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"output folder '{folder}' is not writable")
    return path


def _progress(args):
    """The ``progress`` value of the options: False with --quiet, True with --progress, else None (auto)."""
    return False if args.quiet else True if args.progress else None


def cmd_train(args):
    """``chm train``: read images and label images, fit a CHM, save it."""
    from .images import read_image
    from .model import CHM

    out = _model_path(args.output)
    images = list_images(args.images)
    label_dir = Path(args.labels)
    if label_dir.is_dir():
        # Label images living next to the images are not training images themselves.
        images = [p for p in images
                  if not (p.stem.endswith(LABEL_SUFFIX) and p.parent.resolve() == label_dir.resolve())]
        if not images:
            raise ValueError(f"'{args.images}' holds only label images ('*{LABEL_SUFFIX}')")
    label_files = match_labels(images, label_dir)

    arrays, labels = [], []
    for image_path, label_path in zip(images, label_files):
        arrays.append(read_image(image_path))
        lab = read_labels(label_path)
        if lab.shape != arrays[-1].shape:
            raise ValueError(f"label image '{label_path}' is {lab.shape[0]} x {lab.shape[1]} pixels but its image "
                             f"'{image_path}' is {arrays[-1].shape[0]} x {arrays[-1].shape[1]}")
        labels.append(lab)
    n_bg = sum(int((lab == 0).sum()) for lab in labels)
    n_fg = sum(int((lab == 1).sum()) for lab in labels)
    # Checked here to phrase the error in the file convention, not the API's 0/1.
    if n_bg == 0 or n_fg == 0:
        raise ValueError(f"the label images hold {n_bg} background pixels (value 1) and {n_fg} foreground pixels "
                         "(value 2); both classes are needed")
    logger.info("%d images, %d labelled pixels (%d background, %d foreground)", len(images), n_bg + n_fg, n_bg, n_fg)

    model = CHM(levels=args.levels, stages=args.stages, classifier=args.classifier, network=args.network,
                semi_supervised=args.semi_supervised, alpha=args.alpha, beta=args.beta, rounds=args.rounds,
                weight_decay=args.weight_decay,
                features=args.features, epochs=args.epochs, max_samples=args.max_samples,
                label_pooling=args.label_pooling, fusion_context=args.fusion_context, n_jobs=args.n_jobs,
                progress=_progress(args), random_state=args.seed)
    logger.debug("%r with %s", model, model.get_params(deep=False))
    t0 = time.perf_counter()
    try:
        model.fit(arrays, labels)
    except (ValueError, TypeError) as exc:
        _name_files(exc, {"images": images, "labels": label_files})
    logger.info("trained in %.1f s", time.perf_counter() - t0)
    model.save(out)
    logger.info("saved the model to '%s'", out)
    return EXIT_OK


def _output_paths(inputs, outdir, suffix, overwrite):
    """Output file of every input; refuses collisions and, unless told, existing files."""
    _check_unique_stems(inputs, "their outputs would have the same name")
    outputs = [outdir / (p.stem + suffix) for p in inputs]
    input_set = {p.resolve() for p in inputs}
    for out in outputs:
        if out.resolve() in input_set:  # even --overwrite must not destroy the inputs
            raise ValueError(f"output '{out}' would replace an input image; choose another output folder")
    existing = [out for out in outputs if out.exists()]
    if existing and not overwrite:
        shown = ", ".join(f"'{p}'" for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise FileExistsError(f"{len(existing)} output file(s) exist already: {shown}; "
                              "use --overwrite to replace them")
    return outputs


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomic(path, write, mode):
    """Write through ``write(file_object)`` to a temporary file, then rename it to ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".part{path.suffix}")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, mode)  # mkstemp creates owner-only files; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _save_prediction(path, proba, args, mode):
    """Write one probability map in the format chosen on the command line."""
    import imageio.v3 as iio

    if args.format == "npy":
        arr = np.asarray(proba, dtype=np.float32)
        _write_atomic(path, lambda fh: np.save(fh, arr), mode)
        return
    if args.proba:
        arr = np.round(np.clip(proba, 0.0, 1.0) * 255).astype(np.uint8)
    else:
        arr = np.where(proba > args.threshold, 255, 0).astype(np.uint8)
    _write_atomic(path, lambda fh: iio.imwrite(fh, arr, extension=".png"), mode)


def cmd_predict(args):
    """``chm predict``: segment images with a saved model, one output file per image."""
    from joblib import effective_n_jobs

    from .images import read_image
    from .persistence import load

    model = load(args.model)
    if args.threshold is None:
        args.threshold = model.threshold_
    inputs = list_images(args.images)
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise FileExistsError(f"output '{outdir}' exists and is not a folder")
    suffix = ".npy" if args.format == "npy" else ".png"
    outputs = _output_paths(inputs, outdir, suffix, args.overwrite)
    # Decode every input once up front so that a bad file stops the run before any output is
    # written; images are read again batch by batch below to keep memory flat.
    for p in bar(inputs, desc="check inputs", enabled=_progress(args)):
        read_image(p)
    outdir.mkdir(parents=True, exist_ok=True)

    if args.format == "npy":
        what = "float32 probabilities"
    elif args.proba:
        what = "probabilities as round(p * 255)"
    else:
        what = f"masks (255 where p > {args.threshold:g})"
    logger.info("%d images -> %s in '%s'", len(inputs), what, outdir)
    mode = 0o666 & ~_umask()
    model.n_jobs = args.n_jobs
    model.progress = False  # one bar over all images below, not one per batch
    jobs = effective_n_jobs(args.n_jobs)
    batch = 1 if jobs == 1 else 2 * jobs
    t0 = time.perf_counter()
    with bar(total=len(inputs), desc="predict", enabled=_progress(args)) as pbar:
        for start in range(0, len(inputs), batch):
            chunk = inputs[start:start + batch]
            probas = model.predict_proba([read_image(p) for p in chunk])
            for out, p in zip(outputs[start:start + batch], probas):
                _save_prediction(out, p, args, mode)
                pbar.update(1)
    logger.info("wrote %d files in %.1f s", len(outputs), time.perf_counter() - t0)
    return EXIT_OK


def _format_value(value):
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "()"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def cmd_info(args):
    """``chm info``: print what a model file holds."""
    from features import FAMILIES

    from .persistence import FORMAT, _HEADER, load

    model = load(args.model)  # validates the file before its header is read below
    with np.load(args.model, allow_pickle=False) as z:
        header = json.loads(z[_HEADER].tobytes().decode("utf-8"))
    lines = [f"model file: {args.model}",
             f"written by chm {header.get('chm_version', '?')} (format {FORMAT} version {header.get('version')}); "
             f"this is chm {__version__}",
             "parameters:"]
    params = model.get_params(deep=False)
    for key, value in params.items():
        if key in ("n_jobs", "progress"):  # runtime settings of the training run, not of the model
            continue
        lines.append(f"  {key:<18} {_format_value(value)}")
    families = model.bank_.families
    lines.append("feature families: " + ", ".join(f"{f} ({FAMILIES[f][1]})" for f in families)
                 + f" = {model.bank_.n_features} features per pixel")
    lines.append(f"mask threshold: {model.threshold_:.4g} (chm predict's default --threshold)")
    lines.append("classifiers (training order):")
    lines.append(f"  {'stage':>5}  {'level':>5}  {'type':<24} weights")
    for entry in header["classifiers"]:
        s, l = entry["stage"], entry["level"]
        clf = model.classifiers_[(s, l)]
        kind = entry["type"]
        if kind == "LDNN":
            kind += f" {clf.n_groups}x{clf.n_nodes}" + (" dropout" if clf.dropout else "")
        lines.append(f"  {s:>5}  {l:>5}  {kind:<24} {tuple(clf.W_.shape)} {clf.W_.dtype}")
    print("\n".join(lines))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Parser

def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


def _n_jobs(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1, or negative to count back from the number of CPUs "
                                         "(-1 = all)")
    return value


def _float_in(low, high=math.inf):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low:g}, {high:g}], got {text}")
        return value
    return parse


def _families(text):
    from features import FAMILIES

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FAMILIES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(FAMILIES)}, got {text!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a family appears twice in {text!r}")
    return names


def build_parser():
    """The argument parser of the ``chm`` program (sub-commands ``train``, ``predict``, ``info``)."""
    from features import FAMILIES

    from .classifiers import NETWORKS
    from .model import DEFAULT_FEATURES, FUSION_CONTEXTS, LABEL_POOLINGS, SEMI_SUPERVISED

    parser = argparse.ArgumentParser(
        prog="chm", description="Contextual Hierarchical Model: segmentation learnt from a few labelled pixels.",
        epilog="Run 'chm COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"chm {__version__}")

    common = argparse.ArgumentParser(add_help=False)
    talk = common.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="no progress output; only warnings and errors")
    talk.add_argument("-v", "--verbose", action="store_true", help="debug messages and tracebacks of errors")
    common.add_argument("--progress", action="store_true",
                        help="progress bars even when stderr is not a terminal (default: bars on a terminal, "
                             "a few plain lines per stage otherwise)")
    jobs = argparse.ArgumentParser(add_help=False)
    jobs.add_argument("--n-jobs", type=_n_jobs, default=1, metavar="N",
                      help="parallel workers over images (-1 = all CPUs; default: 1)")

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train", parents=[common, jobs], help="train a model from images and label images",
        description="Train a CHM from images and sparse label images and save it.",
        epilog=f"Label images: 0 = unlabelled, 1 = background, 2 = foreground. The label image of "
               f"'name.ext' is LABELS/name.* or LABELS/name{LABEL_SUFFIX}.*; every image needs exactly one "
               "and every label image must match an image.")
    train.add_argument("images", metavar="IMAGES", help="folder of images, text file listing image paths, or "
                                                        "one image")
    train.add_argument("labels", metavar="LABELS", help="folder of label images")
    train.add_argument("-o", "--output", required=True, metavar="MODEL.npz", help="model file to write")
    train.add_argument("--levels", type=_int_at_least(0), default=3, metavar="N", help="pyramid levels above full resolution "
                                                                          "(default: 3)")
    train.add_argument("--stages", type=_int_at_least(1), default=2, metavar="N", help="cascade stages (default: 2)")
    train.add_argument("--classifier", choices=("ldnn", "logistic"), default="ldnn",
                       help="pixel classifier (default: ldnn)")
    train.add_argument("--network", choices=tuple(NETWORKS), default="small",
                       help="LDNN sizes: small = 6 x 6 at every level (sparse labels), original = the original "
                            "CHM's 10 x 20 / 24 x 24 (dense labels) (default: small)")
    train.add_argument("--semi-supervised", choices=sorted(SEMI_SUPERVISED), default=None, metavar="METHOD",
                       help="learn from the unlabelled pixels too: auto (recommended for sparse labels), "
                            "self-training, tv (the paper's TV loss), contrast (contrast-sensitive loss) "
                            "(default: supervised only)")
    train.add_argument("--alpha", type=_float_in(0.0), default=None, metavar="A",
                       help="weight of the tv / contrast loss (default: the method's recommended weight; "
                            "without --semi-supervised, A > 0 selects tv)")
    train.add_argument("--beta", type=_float_in(0.0), default=None, metavar="B",
                       help="self-training: Potts weight of the proposals' MRF (default: recommended)")
    train.add_argument("--rounds", type=_int_at_least(0), default=None, metavar="R",
                       help="self-training: proposal-and-refit rounds (default: recommended)")
    train.add_argument("--weight-decay", type=_float_in(0.0), default=0.0, metavar="L",
                       help="L2 penalty on the full-resolution classifiers' weights (default: 0)")
    train.add_argument("--features", type=_families, default=DEFAULT_FEATURES, metavar="F1,F2,...",
                       help=f"filter families among {','.join(FAMILIES)} (default: {','.join(DEFAULT_FEATURES)})")
    train.add_argument("--epochs", type=_int_at_least(1), default=None, metavar="N",
                       help="SGD epochs per classifier (default: 15, and 6 for the full-resolution "
                            "classifiers of later stages)")
    train.add_argument("--max-samples", type=_int_at_least(1), default=None, metavar="N",
                       help="with densely labelled images: keep at most N labelled pixels per class and level, "
                            "drawn at random (default: keep all)")
    train.add_argument("--label-pooling", choices=LABEL_POOLINGS, default="max",
                       help="labels of the coarse levels: max = a block is foreground if any labelled pixel "
                            "in it is (the original CHM), mean = the block's foreground fraction (better with "
                            "dense labels) (default: max)")
    train.add_argument("--fusion-context", choices=FUSION_CONTEXTS, default="original",
                       help="how the full-resolution fusion classifiers sample the coarse maps: original = "
                            "stencil at full-resolution spacing, scaled = at each map's own pixel spacing "
                            "(default: original)")
    train.add_argument("--seed", type=_int_at_least(0), default=None, metavar="S",
                       help="random seed; the same seed gives the same model (default: random)")
    train.set_defaults(run=cmd_train)

    predict = sub.add_parser(
        "predict", parents=[common, jobs], help="segment images with a trained model",
        description="Segment images with a trained model: one output file per image, named by its stem.",
        epilog="PNG masks hold 0 (background) and 255 (foreground); --proba PNGs hold round(p * 255); "
               "--format npy writes float32 probabilities.")
    predict.add_argument("model", metavar="MODEL.npz", help="model file written by 'chm train'")
    predict.add_argument("images", metavar="IMAGES", help="folder of images, text file listing image paths, or "
                                                          "one image")
    predict.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if needed)")
    predict.add_argument("--proba", action="store_true", help="write P(foreground) as round(p * 255) instead of "
                                                              "a mask")
    predict.add_argument("--threshold", type=_float_in(0.0, 1.0), default=None, metavar="T",
                         help="foreground where P(foreground) > threshold (default: the model's threshold_, "
                              "0.5 unless sample caps rebalanced the classes)")
    predict.add_argument("--format", choices=("png", "npy"), default="png",
                         help="png (default) or npy: float32 probabilities (implies --proba)")
    predict.add_argument("--overwrite", action="store_true", help="replace existing output files")
    predict.set_defaults(run=cmd_predict)

    info = sub.add_parser("info", parents=[common], help="describe a model file",
                          description="Print the parameters, classifiers and features of a model file.")
    info.add_argument("model", metavar="MODEL.npz")
    info.set_defaults(run=cmd_info)
    return parser


# ---------------------------------------------------------------------------------------------
# Entry point

class _Formatter(logging.Formatter):
    """Plain progress messages; argparse-style prefixes for warnings and errors."""

    def format(self, record):
        text = super().format(record)
        if record.levelno >= logging.ERROR:
            return f"chm: error: {text}"
        if record.levelno >= logging.WARNING:
            return f"chm: warning: {text}"
        return text


def _log_warning(message, category, filename, lineno, file=None, line=None):
    logger.warning("%s", message)


def main(argv=None):
    """Run the ``chm`` program.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 success, 2 usage or input error, 128 + signal number when stopped by a
        signal (130 Ctrl-C, 143 SIGTERM).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: keep main() returning a status
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    if args.quiet and args.progress:
        print("chm: error: --quiet and --progress contradict each other", file=sys.stderr)
        return EXIT_ERROR

    # A handler for this call only, on the current stderr, so repeated calls (tests, scripts)
    # neither duplicate messages nor leave global logging state behind.
    package_logger = logging.getLogger("chm")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(message)s"))
    saved = package_logger.level, package_logger.propagate
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    package_logger.propagate = False
    try:
        with interruptible(), warnings.catch_warnings():
            warnings.showwarning = _log_warning  # "chm: warning: ..." like every other message
            return args.run(args)
    except _USER_ERRORS as exc:
        logger.error("%s", exc, exc_info=args.verbose)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP: workers are stopped already
        logger.error("interrupted%s; files written so far are complete", f" by {exc}" if str(exc) else "")
        return exit_status(exc)
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(saved[0])
        package_logger.propagate = saved[1]
