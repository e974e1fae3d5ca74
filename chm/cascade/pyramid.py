"""Resampling between CHM levels: bicubic halving, pixel replication, label pooling.

A CHM level ``l`` works on the image halved ``l`` times. The three operators
here reproduce the original MATLAB code exactly (``MyDownSample``,
``MyUpSample``, ``Mymaxpooling``), because the classifiers of one level are
fed the resampled outputs of the others and any half-pixel shift or different
kernel changes what they learn.

Sizes follow MATLAB: every halving maps a length ``n`` to ``ceil(n / 2)``.
"""

import numpy as np

__all__ = [
    "check_pooled_classes",
    "BICUBIC_HALVING_WEIGHTS",
    "HALVING_REACH",
    "downsample",
    "downsample_n",
    "level_shape",
    "upsample",
    "majority_pool_labels",
    "maxpool_labels",
    "pool_label_fractions",
    "pyramid",
]

# MATLAB's antialiased cubic (a = -0.5) sampled at scale 0.5: the kernel is
# stretched to 8 taps and output r is centred on input 2r + 0.5. These are
# exact binary fractions (multiples of 1/256) that sum to exactly 1.
BICUBIC_HALVING_WEIGHTS = np.array(
    [
        -0.01171875,
        -0.03515625,
        0.11328125,
        0.43359375,
        0.43359375,
        0.11328125,
        -0.03515625,
        -0.01171875,
    ]
)
BICUBIC_HALVING_WEIGHTS.flags.writeable = False

#: Inputs an output sample of one halving reads past the two it sits on, on either side: output
#: ``r`` reads inputs ``2r - 3 .. 2r + 4``. Halving ``l`` times, a pixel reaches
#: ``HALVING_REACH * (2**l - 1)`` full-resolution pixels past its ``2**l`` block.
HALVING_REACH = (len(BICUBIC_HALVING_WEIGHTS) - 2) // 2

_EDGE_MODES = ("replicate", "symmetric")


def _check_image(image, name="image"):
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be 2-D (H, W) or 3-D (H, W, C), got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    return arr


def _tap_indices(n, mode):
    """Input indices of the 8 taps for every output sample along one axis.

    MATLAB first appends a copy of the last sample when ``n`` is odd, then
    resizes the padded length ``m`` to ``m / 2``. We work on the padded
    index range and only at the end map the virtual padded sample ``n`` back
    to ``n - 1``, which is what the copy holds; no padded array is built.
    """
    m = n + (n % 2)
    out = m // 2
    idx = 2 * np.arange(out)[:, None] - HALVING_REACH + np.arange(len(BICUBIC_HALVING_WEIGHTS))[None, :]
    if mode == "replicate":
        idx = np.clip(idx, 0, m - 1)
    else:
        # Half-sample mirror about both ends of the padded range, as in
        # imresize's aux = [1:m, m:-1:1] indexing (MATLAB R2017 and later).
        period = 2 * m
        idx = np.mod(idx, period)
        idx = np.where(idx < m, idx, period - 1 - idx)
    return np.minimum(idx, n - 1)


def _halve_axis(arr, axis, mode):
    idx = _tap_indices(arr.shape[axis], mode)
    w = BICUBIC_HALVING_WEIGHTS
    # Accumulate tap by tap (not one big gather) so peak memory stays at two
    # output-sized arrays, and in tap order so the sum is reproducible.
    out = w[0] * np.take(arr, idx[:, 0], axis=axis)
    for k in range(1, 8):
        out += w[k] * np.take(arr, idx[:, k], axis=axis)
    return out


def downsample(image, mode="replicate"):
    """Halve an image once with MATLAB's antialiased bicubic ``imresize``.

    Reproduces one step of CHM's ``MyDownSample``: odd dimensions get a copy
    of their last row/column appended, then ``imresize(I, 0.5)`` (bicubic,
    antialiased) is applied. Output sample ``r`` along an axis is
    ``sum_n w[n] * x[clamp(2 r - 3 + n)]`` with the weights
    :data:`BICUBIC_HALVING_WEIGHTS`, applied to rows first, then columns.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        Real-valued image; channels are resampled independently.
    mode : {"replicate", "symmetric"}, optional
        How taps beyond the border are filled. ``"replicate"`` (default)
        clamps indices to the edge, like MATLAB's ``imresize`` up to about
        R2016 and PyCHM. ``"symmetric"`` mirrors them, like newer MATLAB
        releases. Only the outermost few output samples differ.

    Returns
    -------
    ndarray of float64, shape (ceil(H/2), ceil(W/2)[, C])
        The halved image.

    Notes
    -----
    MATLAB CHM passes uint8 images to ``imresize``, which rounds and clips
    the result back to uint8 at every halving. This function always
    computes in float64 and never re-quantises (as PyCHM), so coarse levels
    keep their full precision; integer inputs are converted to float64
    without rescaling. Bicubic overshoot is not clipped, so a map in [0, 1]
    may come out slightly outside it, again as in MATLAB.

    Examples
    --------
    >>> downsample(np.ones((7, 5))).shape
    (4, 3)
    """
    if mode not in _EDGE_MODES:
        raise ValueError(f"mode must be one of {_EDGE_MODES}, got {mode!r}")
    arr = _check_image(image).astype(np.float64, copy=False)
    # imresize orders dimensions by scale and breaks the tie (both 0.5)
    # with rows first; the order matters only to the last bit.
    return _halve_axis(_halve_axis(arr, 0, mode), 1, mode)


def downsample_n(image, n, mode="replicate"):
    """Halve an image ``n`` times (MATLAB ``MyDownSample(I, n)``).

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        Real-valued image.
    n : int
        Number of halvings, ``n >= 0``; ``n = 0`` returns a float64 copy.
    mode : {"replicate", "symmetric"}, optional
        Border handling, see :func:`downsample`.

    Returns
    -------
    ndarray of float64
        Image of shape :func:`level_shape` ``(image.shape, n)``.
    """
    n = _check_count(n, "n")
    out = np.array(_check_image(image), dtype=np.float64)
    for _ in range(n):
        out = downsample(out, mode=mode)
    return out


def level_shape(shape, level):
    """Shape of an image after ``level`` halvings.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` or ``(H, W, C)``; trailing dimensions are kept.
    level : int
        Number of halvings, ``level >= 0``.

    Returns
    -------
    tuple of int
        ``(H', W', ...)`` with each of ``H``, ``W`` halved and rounded up
        ``level`` times (equal to ``ceil(H / 2**level)``).

    Examples
    --------
    >>> level_shape((7, 5), 1), level_shape((7, 5), 3)
    ((4, 3), (1, 1))
    """
    level = _check_count(level, "level")
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or min(shape[:2]) < 1:
        raise ValueError(f"shape must start with two positive sizes, got {shape}")
    # ceil(ceil(x / 2) / 2) == ceil(x / 4), so one division suffices.
    f = 2**level
    return (-(-shape[0] // f), -(-shape[1] // f)) + shape[2:]


def upsample(image, n, shape):
    """Enlarge an image ``2**n`` times by pixel replication, then crop.

    Reproduces MATLAB ``MyUpSample(I, n)`` followed by CHM's crop to the
    finer image: every pixel becomes a ``2**n x 2**n`` block and the
    top-left ``shape`` part is kept. Because bicubic halving centres output
    ``r`` on input ``2 r + 0.5``, replication introduces no half-pixel
    shift.

    Parameters
    ----------
    image : array_like, shape (h, w) or (h, w, C)
        Coarse map.
    n : int
        Number of doublings, ``n >= 0``.
    shape : tuple of int
        Target ``(H, W)``; must satisfy ``H <= h * 2**n`` and
        ``W <= w * 2**n``. Trailing entries, if given, must match.

    Returns
    -------
    ndarray
        Array of shape ``(H, W[, C])`` with the dtype of ``image``.
    """
    n = _check_count(n, "n")
    arr = _check_image(image)
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or shape[2:] not in ((), arr.shape[2:]):
        raise ValueError(
            f"shape {shape} is not compatible with an image of shape {arr.shape}"
        )
    f = 2**n
    h, w = shape[:2]
    if not (0 < h <= arr.shape[0] * f and 0 < w <= arr.shape[1] * f):
        raise ValueError(
            f"cannot crop a {arr.shape[:2]} image upsampled {f}x to {shape[:2]}"
        )
    # n repeated doublings equal one repeat by 2**n; crop first so we never
    # build rows or columns that are thrown away.
    rows = -(-h // f)
    cols = -(-w // f)
    out = np.repeat(np.repeat(arr[:rows, :cols], f, axis=0), f, axis=1)
    return out[:h, :w]


def maxpool_labels(labels, n):
    """Pool a sparse label map ``n`` times by 2x2 blocks.

    Generalises MATLAB ``Mymaxpooling`` to sparse labels. In each 2x2 block
    the coarse label is -1 when no fine pixel is labelled, otherwise the
    largest class index among the labelled pixels. In the binary case that
    is MATLAB's rule: positive if any labelled fine pixel is positive.

    Parameters
    ----------
    labels : array_like of int, shape (H, W)
        -1 for unlabelled pixels, ``0 .. K-1`` for classes. A boolean map is
        read as fully labelled 0/1.
    n : int
        Number of poolings, ``n >= 0``.

    Returns
    -------
    ndarray of int, shape :func:`level_shape` ``((H, W), n)``
        Pooled labels, same integer dtype as ``labels`` (int8 for bool).

    Notes
    -----
    Odd dimensions are padded with -1 (unlabelled) so padding never creates
    labels. MATLAB pads with 0 (negative); on a fully labelled map both give
    the same result, because every padded block still holds a real pixel
    whose label is >= 0.

    For ``K > 2`` classes "largest index wins" is an arbitrary but
    deterministic choice that keeps the binary rule; a majority vote over
    the labelled pixels would be a reasonable alternative.
    """
    n = _check_count(n, "n")
    arr = _check_label_map(labels)
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        # -1 padding needs a signed type; unsigned maps are fully labelled.
        arr = arr.astype(np.result_type(arr.dtype, np.int8))
    for _ in range(n):
        h, w = arr.shape
        if h % 2 or w % 2:
            arr = np.pad(arr, ((0, h % 2), (0, w % 2)), constant_values=-1)
        # -1 is below every class, so a plain block max is -1 exactly when
        # the block is unlabelled and the largest labelled class otherwise.
        arr = arr.reshape(arr.shape[0] // 2, 2, arr.shape[1] // 2, 2).max(axis=(1, 3))
    return arr if n else arr.copy()


def pool_label_fractions(labels, n, n_classes=2):
    """Fraction of each class among the labelled fine pixels of every coarse pixel.

    The soft counterpart of :func:`maxpool_labels`: the same blocks (``2**n`` x ``2**n`` fine
    pixels, odd sizes padded with unlabelled pixels at each halving), but instead of one class
    per block it gives the share of each class among the block's labelled pixels.

    Parameters
    ----------
    labels : array_like of int, shape (H, W)
        -1 for unlabelled pixels, ``0 .. n_classes-1`` for classes.
    n : int
        Number of poolings, ``n >= 0``.
    n_classes : int
        Number of classes K.

    Returns
    -------
    ndarray of float32, shape (h, w, K)
        Class fractions (each labelled block sums to 1); NaN where no fine pixel is labelled.
    """
    n = _check_count(n, "n")
    arr = _check_label_map(labels)
    if arr.max() >= n_classes:
        raise ValueError(f"labels must be -1 (unlabelled) or a class index in 0..{n_classes - 1}")
    counts = (arr[:, :, None] == np.arange(n_classes)).astype(np.float64)
    for _ in range(n):
        h, w, _k = counts.shape
        counts = np.pad(counts, ((0, h % 2), (0, w % 2), (0, 0)))  # padding adds no labelled pixel
        counts = counts.reshape(counts.shape[0] // 2, 2, counts.shape[1] // 2, 2, n_classes).sum(axis=(1, 3))
    total = counts.sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts / total).astype(np.float32)  # 0/0 -> NaN: unlabelled block


def majority_pool_labels(labels, n, n_classes):
    """Pool a sparse label map ``n`` times to each block's most frequent labelled class.

    The K-class counterpart of :func:`maxpool_labels` (whose "largest index wins" has no
    meaning beyond foreground/background): the same ``2**n`` x ``2**n`` blocks, -1 where no
    fine pixel is labelled; ties go to the smaller class index.

    Parameters
    ----------
    labels : array_like of int, shape (H, W)
        -1 for unlabelled pixels, ``0 .. n_classes-1`` for classes.
    n : int
        Number of poolings, ``n >= 0``.
    n_classes : int

    Returns
    -------
    ndarray of int16, shape :func:`level_shape` ``((H, W), n)``
    """
    n = _check_count(n, "n")
    arr = _check_label_map(labels)
    h, w = level_shape(arr.shape, n)
    out = np.full(h * w, -1, dtype=np.int16)
    ys, xs = np.nonzero(arr >= 0)
    if len(ys):
        # Count (block, class) pairs of the labelled pixels only: cheap for sparse labels.
        codes = ((ys >> n) * w + (xs >> n)) * n_classes + arr[ys, xs].astype(np.int64)
        pairs, counts = np.unique(codes, return_counts=True)
        blocks, classes = np.divmod(pairs, n_classes)
        # Within a block, the largest count wins; pairs are sorted by class, so a stable sort on
        # -count keeps the smaller class first among ties.
        order = np.lexsort((classes, -counts, blocks))
        first = np.ones(len(order), dtype=bool)
        first[1:] = blocks[order][1:] != blocks[order][:-1]
        out[blocks[order][first]] = classes[order][first]
    return out.reshape(h, w)


def pyramid(image, levels, mode="replicate"):
    """All CHM levels of an image.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        Level-0 image.
    levels : int
        Number of halvings, ``levels >= 0``.
    mode : {"replicate", "symmetric"}, optional
        Border handling, see :func:`downsample`.

    Returns
    -------
    list of ndarray of float64
        ``levels + 1`` arrays; entry ``l`` is the image halved ``l`` times.
    """
    levels = _check_count(levels, "levels")
    out = [np.array(_check_image(image), dtype=np.float64)]
    for _ in range(levels):
        out.append(downsample(out[-1], mode=mode))
    return out


def _check_label_map(labels):
    """A 2-D integer label map (bool read as 0/1) with values >= -1."""
    arr = np.asarray(labels)
    if arr.dtype == bool:
        arr = arr.astype(np.int8)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"labels must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {arr.dtype}")
    if arr.min() < -1:
        raise ValueError("labels must be -1 (unlabelled) or a class index >= 0")
    return arr


def _check_count(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def check_pooled_classes(labels, levels, n_classes=2):
    """Raise unless every pyramid level keeps labelled pixels of two classes or more.

    Binary coarse labels are max-pooled (a block with a foreground click is foreground), so
    background clicks close to foreground ones vanish at coarse levels; K-class ones take each
    block's majority. Checked before any features are computed, with what to do about it.
    """
    if n_classes > 2:
        for level in range(1, levels + 1):
            seen = set()
            for lab in labels:
                p = majority_pool_labels(lab, level, n_classes)
                seen.update(np.unique(p[p >= 0]).tolist())
            if len(seen) < 2:
                raise ValueError(f"at pyramid level {level} every labelled {2 ** level} x {2 ** level} block has the "
                                 f"same majority class ({seen.pop() if seen else '-'}), so that level has one class "
                                 f"to learn from; label more classes or use levels={level - 1}")
        return
    for level in range(1, levels + 1):
        pooled = [maxpool_labels(lab, level) for lab in labels]
        if not any((p == 0).any() for p in pooled):
            side = 2 ** level
            raise ValueError(f"at pyramid level {level} every labelled background pixel shares its {side} x {side} "
                             "block with a labelled foreground pixel, so that level has no background to learn "
                             f"from; label background farther (> {side} px) from the foreground, or use "
                             f"levels={level - 1}")
