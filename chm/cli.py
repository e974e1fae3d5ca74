"""The ``chm`` command line: train a model from label images, segment images, inspect a model.

::

    chm train IMAGES LABELS -o MODEL.npz [--levels 3] [--stages 2] [--classifier ldnn|logistic]
              [--network small] [--semi-supervised auto|superpixels|self-training|tv|contrast] [--alpha A] [--beta B]
              [--superpixel-scale S]
              [--features haar,hog,...] [--channels DIR] [--epochs N] [--n-jobs N] [--seed S]
    chm predict MODEL.npz IMAGES -o OUTDIR [--proba] [--threshold T] [--format png|npy]
              [--preview] [--overwrite] [--tile-size N] [--channels DIR] [--n-jobs N]
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
are recognised by their extension (:data:`chm.files.IMAGE_SUFFIXES`). Colour images (RGB; an
alpha channel is dropped) train a colour model; a model trained on gray images reads colour
images as their luminance.

``LABELS`` is a folder of label images matched to the images by file stem: the label image
of ``img1.png`` is ``LABELS/img1.<ext>`` or ``LABELS/img1_labels.<ext>`` (any image
extension; exactly one must exist). Every label image must match an image. ``LABELS`` may be
the images' own folder: its ``*_labels`` files are then not taken as training images.

TIFF stacks (``.tif`` / ``.tiff`` files of Z slices, (Z, H, W) or (Z, H, W, 3), read by
:func:`chm.io.stacks.read_stack`) may be among the images: each slice is an image. A stack's
label image is a label stack of the same Z, H and W (matched by stem as above); its slices
without any label are left out of training, and one line says how many.

Label images follow the scikit-image / ilastik convention, since an image file cannot hold
-1: **0 = unlabelled, k + 1 = class k** (two classes: 1 = background, 2 = foreground; any
number of classes). They are single-channel integer images of the same size as their image
(gray PNG/TIFF, or an indexed PNG whose palette indices are the values); avoid JPEG, whose
compression alters values. File discovery and label decoding live in :mod:`chm.files`.

``--channels DIR`` adds your own per-pixel feature images to the filter bank
(:meth:`chm.CHM.fit`'s ``channels``): ``DIR/<stem>.npy`` or ``DIR/<stem>.tif`` per image, (H, W),
(H, W, E) or (E, H, W) of the image's size (:mod:`chm.io.channels`). A model trained with them
needs the same channels of every image it predicts (``chm predict ... --channels DIR``).

Outputs
-------
``train`` writes the model atomically (:meth:`chm.CHM.save`; ``.npz`` is appended if
missing) and replaces an existing model file. ``predict`` writes one file per input image
into ``OUTDIR`` (created if needed), named by the input's stem (a TIFF stack's slices are
predicted in parallel like images, and written as one ``stem.tif`` stack of the PNGs' values,
or one (Z, H, W[, K]) ``stem.npy``; its preview is ``stem_preview.tif``):

* default, two classes: ``stem.png``, the mask as uint8, 0 = background, 255 = foreground
  (P(foreground) > ``--threshold``, by default the model's ``threshold_``);
* default, K > 2 classes: ``stem.png``, the class index 0 .. K-1 of every pixel (uint8;
  uint16 above 256 classes), the most probable class under the model's ``predict`` rule;
* ``--proba`` (two classes): ``stem.png``, P(foreground) as uint8 ``round(p * 255)``;
* ``--format npy``: ``stem.npy``, P(foreground) as a float32 (H, W) array, or the class
  probabilities as a float32 (H, W, K) array;
* ``--preview``: also ``stem_preview.png``, an RGB picture with one colour per class
  (:func:`palette`).

Existing output files are replaced only with ``--overwrite``; otherwise ``predict`` stops
before any work. Each output is written to a temporary file and renamed, so no file is ever
half-written.

Exit status: 0 on success, 2 on a usage or input error (message ``chm: error: ...`` on
stderr), 128 + the signal number when stopped by Ctrl-C (130), SIGTERM (143) or SIGHUP (129):
the joblib workers are stopped first, and every output file already written is complete. When
the reader of its output has gone (``chm info MODEL.npz | head -1``), ``chm`` ends quietly with
141 = 128 + SIGPIPE, the status of a Unix tool stopped by that signal (as ``cat`` or ``ls``).
"""

import argparse
import itertools
import json
import logging
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ._version import __version__
from .utils._progress import bar
from .utils._signals import exit_status, interruptible
from .io.channels import match_channels, read_channels
from .io.files import LABEL_SUFFIX, list_images, match_labels, output_paths, read_labels, write_atomic

__all__ = ["main", "build_parser"]

logger = logging.getLogger(__name__)

#: Colour-coded previews (``chm predict --preview``) are written next to the outputs with this suffix.
PREVIEW_SUFFIX = "_preview.png"
#: The outputs of a TIFF stack: one TIFF stack each, slice by slice as the input.
STACK_SUFFIX = ".tif"
STACK_PREVIEW_SUFFIX = "_preview.tif"

EXIT_OK = 0
EXIT_ERROR = 2  # argparse's own status for usage errors, so all user errors share one code
# The output's reader has gone: 128 + SIGPIPE, as the shell reports a tool that SIGPIPE stopped
# (Python ignores SIGPIPE and sees EPIPE instead). Not 0: the output was cut short, which
# `set -o pipefail` scripts see as with `cat`; not 2: nothing was wrong with the input.
EXIT_PIPE = 128 + 13

# Expected problems: reported as one line, not as a traceback. OSError covers missing files and
# unwritable outputs; FloatingPointError is a diverged training (a message with advice).
_USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)


# ---------------------------------------------------------------------------------------------
# Inputs

def _name_files(exc, names):
    """Re-raise an API error whose message says ``images[i]``/``labels[i]`` with the file names.

    The CHM API only knows list positions; a command-line user needs the file (and a stack's
    slice): ``names`` maps "images" and "labels" to what to say for each position.
    """
    def sub(match):
        files = names.get(match.group(1))
        i = int(match.group(2))
        return f"{match.group(0)} ({files[i]})" if files is not None and i < len(files) else match.group(0)

    message = re.sub(r"\b(images|labels|channels)\[(\d+)\]", sub, str(exc))
    if message == str(exc):
        raise exc
    raise type(exc)(message) from exc


def _read_channels(files, arrays, images):
    """The feature channels of the images ``arrays`` (files ``images``) from their channel
    ``files``, as ``CHM.fit`` and ``predict_proba`` take them; None without ``--channels``."""
    if files is None:
        return None
    return [read_channels(f, im.shape, p) for f, im, p in zip(files, arrays, images)]


def _check_channel_option(model, folder):
    """``--channels`` given exactly when the model reads feature channels."""
    names = model.feature_channels_
    if names and folder is None:
        raise ValueError(f"the model was trained with {len(names)} feature channel(s) ({', '.join(names)}): give "
                         "--channels DIR, a folder with each image's channels as <stem>.npy or <stem>.tif")
    if folder is not None and not names:
        raise ValueError("the model was trained without feature channels: drop --channels")


def _check_channel_files(model, inputs, folder):
    """The channel file of every input, each read and checked against its image and the model
    (before any output is written); returns the files."""
    from .features import check_channels
    from .io.images import read_image

    files = match_channels(inputs, folder)
    for p, f in zip(inputs, files):
        image = read_image(p)
        try:
            check_channels(_read_channels([f], [image], [p]), [image], expected=model.bank_.channels)
        except (ValueError, TypeError) as exc:
            _name_files(exc, {"images": [f"'{p}'"], "channels": [f"'{f}'"]})
    return files


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
    from .io.images import read_image
    from .io.stacks import is_stack_file, labelled_slices, read_label_stack, read_stack
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
    channel_files = None if args.channels is None else match_channels(images, args.channels)

    is_stack = [is_stack_file(p) for p in images]  # headers only: refuse before reading any pixels
    if channel_files is not None and any(is_stack):
        raise ValueError("--channels is for 2-D images; TIFF stacks with feature channels are not supported yet")
    arrays, labels, image_names, label_names = [], [], [], []
    for image_path, label_path, stack in zip(images, label_files, is_stack):
        if stack:
            # A stack's labelled slices are training images; labelled_slices says how many are left out.
            slices, labs, kept = labelled_slices(read_stack(image_path), read_label_stack(label_path),
                                                 f"stack '{image_path}'", f"label stack '{label_path}'")
            arrays += slices
            labels += labs
            image_names += [f"'{image_path}' slice {z}" for z in kept]
            label_names += [f"'{label_path}' slice {z}" for z in kept]
            continue
        arrays.append(read_image(image_path))
        lab = read_labels(label_path)
        if lab.shape != arrays[-1].shape[:2]:
            raise ValueError(f"label image '{label_path}' is {lab.shape[0]} x {lab.shape[1]} pixels but its image "
                             f"'{image_path}' is {arrays[-1].shape[0]} x {arrays[-1].shape[1]}")
        labels.append(lab)
        image_names.append(f"'{image_path}'")
        label_names.append(f"'{label_path}'")
    if not arrays:
        raise ValueError("no labelled pixel in the label images (0 = unlabelled, 1 = background, 2 = foreground)")
    channels = _read_channels(channel_files, arrays, images)
    counts = np.bincount(np.concatenate([lab[lab >= 0] for lab in labels]).astype(np.int64), minlength=2)
    # Checked here to phrase the error in the file convention, not the API's 0..K-1.
    if np.count_nonzero(counts) < 2:
        raise ValueError("the label images hold " + ", ".join(f"{n} pixels of value {k + 1}" for k, n in enumerate(counts))
                         + "; at least two classes are needed (1 = background, 2 = foreground, k + 1 = class k)")
    logger.info("%d images, %d labelled pixels in %d classes (%s)", len(arrays), int(counts.sum()), len(counts),
                ", ".join(f"value {k + 1}: {n}" for k, n in enumerate(counts)))

    model = CHM(levels=args.levels, stages=args.stages, classifier=args.classifier, network=args.network,
                semi_supervised=args.semi_supervised, alpha=args.alpha, beta=args.beta, rounds=args.rounds,
                superpixel_scale=args.superpixel_scale, weight_decay=args.weight_decay,
                features=args.features, epochs=args.epochs, max_samples=args.max_samples,
                class_prior=args.class_prior,
                label_pooling=args.label_pooling, fusion_context=args.fusion_context, n_jobs=args.n_jobs,
                progress=_progress(args), random_state=args.seed)
    logger.debug("%r with %s", model, model.get_params(deep=False))
    t0 = time.perf_counter()
    try:
        model.fit(arrays, labels, channels=channels)
    except (ValueError, TypeError) as exc:
        _name_files(exc, {"images": image_names, "labels": label_names,
                          "channels": channel_files and [f"'{f}'" for f in channel_files]})
    logger.info("trained in %.1f s", time.perf_counter() - t0)
    model.save(out)
    logger.info("saved the model to '%s'", out)
    return EXIT_OK


def palette(n_classes):
    """(K, 3) uint8 colours for class previews: well-separated hues, alternating brightness."""
    from skimage.color import hsv2rgb

    k = np.arange(n_classes)
    hsv = np.stack([(k * 0.618034) % 1.0, np.where(k % 2, 0.65, 0.9), np.where(k % 3 == 2, 0.6, 0.95)], axis=1)
    return np.round(hsv2rgb(hsv[None])[0] * 255).astype(np.uint8)


def _encode(proba, args, model):
    """One probability map (H, W) or (H, W, K) as the options say: ``(values, classes)``, the array
    to write and the class map that ``--preview`` colours (None for ``--format npy``). K classes
    are decided by the model's own rule (its class weights), as ``model.predict`` does."""
    if args.format == "npy":
        return np.asarray(proba, dtype=np.float32), None
    if proba.ndim == 3:
        classes = model.decide([proba])[0]
        return classes, classes
    classes = (proba > args.threshold).astype(np.uint8)
    if args.proba:
        return np.round(np.clip(proba, 0.0, 1.0) * 255).astype(np.uint8), classes
    return classes * np.uint8(255), classes


def _save_prediction(path, preview, encoded, stack, colours, args):
    """Write one input's outputs, each atomically: ``encoded`` holds the :func:`_encode` of each of
    its slices; a 2-D image's go to a PNG (or .npy), a stack's to one TIFF stack (or (Z, ...) .npy)."""
    import imageio.v3 as iio

    from .io.stacks import write_stack

    def write(path, slices):
        if stack:
            write_stack(path, np.stack(slices))
        else:
            write_atomic(path, lambda fh: iio.imwrite(fh, slices[0], extension=".png"))

    values = [v for v, _ in encoded]
    if args.format == "npy":
        arr = np.stack(values) if stack else values[0]
        write_atomic(path, lambda fh: np.save(fh, arr))
    else:
        write(path, values)
    if args.preview:
        write(preview, [colours[c] for _, c in encoded])


def _read_input(path):
    """``(slices, is_stack)``: a TIFF stack's slices, or the one image of any other file."""
    from .io.images import read_image
    from .io.stacks import is_stack_file, read_stack

    if is_stack_file(path):
        return read_stack(path), True
    return [read_image(path)], False


def _predicted_slices(model, inputs, batch, channel_files=None):
    """``(input index, probability map)`` of every slice of every input, in order: ``batch`` slices
    at a time go to ``predict_proba`` (its workers share them), and only one input is held at a time.
    ``channel_files``: each (2-D) input's feature channels, or None."""
    def slices():
        for i, path in enumerate(inputs):
            for im in _read_input(path)[0]:
                ch = None if channel_files is None else _read_channels([channel_files[i]], [im], [path])[0]
                yield i, im, ch

    work = slices()
    while chunk := list(itertools.islice(work, batch)):
        channels = None if channel_files is None else [ch for _, _, ch in chunk]
        yield from zip((i for i, _, _ in chunk), model.predict_proba([im for _, im, _ in chunk], channels=channels))


def cmd_predict(args):
    """``chm predict``: segment images with a saved model, one output file per image or stack."""
    from joblib import effective_n_jobs

    from .cascade.tiling import check_tile_size
    from .io.persistence import load

    model = load(args.model)
    if args.tile_size is not None:
        model.tile_size = args.tile_size
    check_tile_size(model.tile_size, model.levels)  # before any work
    k = model.n_classes_
    if k > 2 and (args.threshold is not None or (args.proba and args.format == "png")):
        raise ValueError(f"the model has {k} classes: --threshold and --proba PNGs are for two-class models; "
                         "use --format npy for the (H, W, K) class probabilities")
    if args.preview and args.format == "npy":
        raise ValueError("--preview goes with PNG (and TIFF stack) outputs, not --format npy")
    if args.threshold is None and k == 2:
        args.threshold = model.threshold_
    _check_channel_option(model, args.channels)
    inputs = list_images(args.images)
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise FileExistsError(f"output '{outdir}' exists and is not a folder")
    # Decode every input once up front so that a bad file stops the run before any output is
    # written; images are read again batch by batch below to keep memory flat.
    depths, stacks = [], []
    for p in bar(inputs, desc="check inputs", enabled=_progress(args)):
        slices, stack = _read_input(p)
        depths.append(len(slices))
        stacks.append(stack)
    # A stack's outputs are TIFF stacks where an image's are PNGs.
    suffixes = [".npy" if args.format == "npy" else STACK_SUFFIX if stack else ".png" for stack in stacks]
    outputs = output_paths(inputs, outdir, suffixes, args.overwrite)
    previews = [None] * len(inputs)
    if args.preview:
        previews = output_paths(inputs, outdir, [STACK_PREVIEW_SUFFIX if stack else PREVIEW_SUFFIX for stack in stacks],
                                args.overwrite)
    if args.channels is not None and any(stacks):
        raise ValueError("--channels is for 2-D images; TIFF stacks with feature channels are not supported yet")
    channel_files = None if args.channels is None else _check_channel_files(model, inputs, args.channels)
    outdir.mkdir(parents=True, exist_ok=True)

    if args.format == "npy":
        what = "float32 probabilities" + (f" (H, W, {k})" if k > 2 else "")
    elif k > 2:
        what = f"class indices (0..{k - 1})"
    elif args.proba:
        what = "probabilities as round(p * 255)"
    else:
        what = f"masks (255 where p > {args.threshold:g})"
    n_stacks = sum(stacks)
    counted = (f"{len(inputs) - n_stacks} images and {n_stacks} stack(s), {sum(depths)} slices in all" if n_stacks
               else f"{len(inputs)} images")
    logger.info("%s -> %s in '%s'", counted, what, outdir)
    model.n_jobs = args.n_jobs
    model.progress = False  # one bar over all slices below, not one per batch
    jobs = effective_n_jobs(args.n_jobs)
    colours = palette(k)
    encoded = []  # the current input's slices so far
    t0 = time.perf_counter()
    with bar(total=sum(depths), desc="predict", enabled=_progress(args)) as pbar:
        for i, proba in _predicted_slices(model, inputs, 1 if jobs == 1 else 2 * jobs, channel_files):
            values, classes = _encode(proba, args, model)
            encoded.append((values, classes if args.preview else None))
            if len(encoded) == depths[i]:  # its last slice: write the input's files now
                _save_prediction(outputs[i], previews[i], encoded, stacks[i], colours, args)
                encoded = []
            pbar.update(1)
    logger.info("wrote %d files in %.1f s", len(outputs), time.perf_counter() - t0)
    return EXIT_OK


def _format_value(value):
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "()"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _family_sizes(families):
    from .features import FilterBank

    return [FilterBank((f,)).n_features for f in families]


def cmd_info(args):
    """``chm info``: print what a model file holds."""
    from .io.persistence import load, read_container

    model = load(args.model)  # validates the file before its header is read below
    header, _ = read_container(args.model)
    lines = [f"model file: {args.model}",
             f"written by chm {header.get('chm_version', '?')} (format {header['format']} version "
             f"{header.get('version')}); "
             f"this is chm {__version__}",
             "parameters:"]
    params = model.get_params(deep=False)
    for key, value in params.items():
        if key in ("n_jobs", "progress"):  # runtime settings of the training run, not of the model
            continue
        lines.append(f"  {key:<18} {_format_value(value)}")
    families = model.bank_.families
    lines.append("feature families: " + ", ".join(f"{f} ({n})" for f, n in zip(families, _family_sizes(families)))
                 + (f" + {len(model.feature_channels_)} feature channel(s) ({', '.join(model.feature_channels_)})"
                    if model.feature_channels_ else "")
                 + f" = {model.bank_.n_features} features per pixel")
    lines.append(f"images: {'colour' if model.n_channels_ == 3 else 'gray'}; classes: {model.n_classes_}")
    if model.n_classes_ == 2:
        lines.append(f"mask threshold: {model.threshold_:.4g} (chm predict's default --threshold)")
    else:
        lines.append("class weights of the decision: " + ", ".join(f"{w:.3g}" for w in model.class_weights_))
    lines.append("classifiers (training order):")
    lines.append(f"  {'stage':>5}  {'level':>5}  {'type':<24} weights")
    for entry in header["classifiers"]:
        s, l = entry["stage"], entry["level"]
        clf = model.classifiers_[(s, l)]
        kind = entry["type"]
        if kind == "LDNN":
            kind += f" {clf.n_groups}x{clf.n_nodes}" + (" dropout" if clf.dropout else "")
        weights = [clf.W_] if hasattr(clf, "W_") else clf.layers_
        if kind == "SoftmaxMLP":
            kind += f" {clf.n_hidden} hidden"
        shapes = " + ".join(str(tuple(W.shape)) for W in weights)
        lines.append(f"  {s:>5}  {l:>5}  {kind:<24} {shapes} {weights[0].dtype}")
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
    from .features import ALL_FAMILIES

    valid = list(ALL_FAMILIES)
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in valid]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(valid)}, got {text!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a family appears twice in {text!r}")
    return names


def build_parser():
    """The argument parser of the ``chm`` program (sub-commands ``train``, ``predict``, ``info``)."""
    from .features import ALL_FAMILIES

    from .cascade.tiling import TILE_BYTES
    from .classifiers import NETWORKS
    from .model import CLASS_PRIORS, DEFAULT_FEATURES, FUSION_CONTEXTS, LABEL_POOLINGS, SEMI_SUPERVISED

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
                      help="parallel workers over images and stack slices (-1 = all CPUs; default: 1)")

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train", parents=[common, jobs], help="train a model from images and label images",
        description="Train a CHM from images and sparse label images and save it.",
        epilog=f"Label images: 0 = unlabelled, k + 1 = class k (1 = background, 2 = foreground). The label image of "
               f"'name.ext' is LABELS/name.* or LABELS/name{LABEL_SUFFIX}.*; every image needs exactly one "
               "and every label image must match an image. A TIFF stack's slices are images; its label image is a "
               "label stack of the same shape, and its slices without labels are left out.")
    train.add_argument("images", metavar="IMAGES", help="folder of images, text file listing image paths, or "
                                                        "one image (TIFF stacks too)")
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
                       help="learn from the unlabelled pixels too: auto (recommended for sparse labels: "
                            "superpixels + self-training for two classes, self-training for more), self-training (refit on MRF proposals), superpixels (labels spread "
                            "over superpixels), tv (the paper's TV loss), contrast (contrast-sensitive loss) "
                            "(default: supervised only)")
    train.add_argument("--alpha", type=_float_in(0.0), default=None, metavar="A",
                       help="weight of the tv / contrast loss (default: the method's recommended weight; "
                            "without --semi-supervised, A > 0 selects tv)")
    train.add_argument("--beta", type=_float_in(0.0), default=None, metavar="B",
                       help="self-training: Potts weight of the proposals' MRF (default: recommended)")
    train.add_argument("--rounds", type=_int_at_least(0), default=None, metavar="R",
                       help="self-training: proposal-and-refit rounds (default: recommended)")
    train.add_argument("--superpixel-scale", type=_float_in(1e-6), default=None, metavar="S",
                       help="superpixels: Felzenszwalb scale of the segments the labels spread over "
                            "(default: recommended)")
    train.add_argument("--weight-decay", type=_float_in(0.0), default=0.0, metavar="L",
                       help="L2 penalty on the full-resolution classifiers' weights (default: 0)")
    train.add_argument("--features", type=_families, default=DEFAULT_FEATURES, metavar="F1,F2,...",
                       help=f"filter families among {','.join(ALL_FAMILIES)} "
                            f"(default: {','.join(DEFAULT_FEATURES)}, plus colour for colour images; add "
                            "position for scene photographs)")
    train.add_argument("--channels", default=None, metavar="DIR",
                       help="your own per-pixel feature images, added to the filter bank: DIR/<stem>.npy or "
                            "<stem>.tif per image, (H, W), (H, W, E) or (E, H, W) of its size; 'chm predict' "
                            "then needs them too (default: none)")
    train.add_argument("--epochs", type=_int_at_least(1), default=None, metavar="N",
                       help="SGD epochs per classifier (default: 15, and 6 for the full-resolution "
                            "classifiers of later stages)")
    train.add_argument("--max-samples", type=_int_at_least(1), default=None, metavar="N",
                       help="with densely labelled images: keep at most N labelled pixels per class and level, "
                            "drawn at random (default: keep all)")
    train.add_argument("--class-prior", choices=CLASS_PRIORS, default="labels",
                       help="class balance the decision rule decides for: labels = the labelled pixels' own "
                            "(right for pixels drawn at random), em = estimated from the model's outputs on the "
                            "training images (for clicks, whose balance follows the clicker) (default: labels)")
    train.add_argument("--label-pooling", choices=LABEL_POOLINGS, default=None,
                       help="labels of the coarse levels: max = a block is foreground if any labelled pixel "
                            "in it is (the original CHM), mean = the block's foreground fraction (better with "
                            "dense labels) (default: max for the given labels, mean for self-training's "
                            "dense proposals)")
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
        epilog="Two classes: PNG masks hold 0 (background) and 255 (foreground), --proba PNGs round(p * 255). "
               "K classes: PNGs hold the class index 0..K-1. --format npy writes float32 probabilities. A TIFF "
               "stack gives one TIFF stack of these values (or one .npy), its slices predicted in parallel.")
    predict.add_argument("model", metavar="MODEL.npz", help="model file written by 'chm train'")
    predict.add_argument("images", metavar="IMAGES", help="folder of images, text file listing image paths, or "
                                                          "one image (TIFF stacks too)")
    predict.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if needed)")
    predict.add_argument("--proba", action="store_true", help="write P(foreground) as round(p * 255) instead of "
                                                              "a mask")
    predict.add_argument("--threshold", type=_float_in(0.0, 1.0), default=None, metavar="T",
                         help="foreground where P(foreground) > threshold (default: the model's threshold_, "
                              "0.5 unless sample caps rebalanced the classes)")
    predict.add_argument("--format", choices=("png", "npy"), default="png",
                         help="png (default) or npy: float32 probabilities, (H, W) P(foreground) or (H, W, K) "
                              "with K classes (implies --proba)")
    predict.add_argument("--preview", action="store_true",
                         help=f"also write a colour-coded NAME{PREVIEW_SUFFIX} per image (one colour per class)")
    predict.add_argument("--overwrite", action="store_true", help="replace existing output files")
    predict.add_argument("--tile-size", type=_int_at_least(1), default=None, metavar="N",
                         help="predict in tiles of N x N px (a multiple of 2**levels), the same maps with "
                              "less memory (default: tiles only for images whose filter bank would exceed "
                              f"{TILE_BYTES // 2**20} MiB)")
    predict.add_argument("--channels", default=None, metavar="DIR",
                         help="the feature channels of every image, for a model trained with --channels: "
                              "DIR/<stem>.npy or <stem>.tif per image")
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
        signal (130 Ctrl-C, 143 SIGTERM), 141 when the reader of the output has gone.
    """
    try:
        status = _main(argv)
        if sys.stdout is not None:
            sys.stdout.flush()  # a reader that has gone shows here, not as an error at exit
        return status
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone():
    """End quietly when the reader of the output has gone (``chm info m | head -1``): output not
    yet written is dropped (its stream is pointed at the null device, so the interpreter's final
    flush cannot fail either) and the status is :data:`EXIT_PIPE`."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                try:
                    os.dup2(null, stream.fileno())
                finally:
                    os.close(null)
            except (OSError, ValueError, AttributeError):  # no file descriptor: nothing to flush at exit
                pass
    return EXIT_PIPE


def _main(argv):
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
    except BrokenPipeError:  # not a user error: main() ends quietly
        raise
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
