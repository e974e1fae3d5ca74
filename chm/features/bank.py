"""The CHM filter bank: several families stacked into one feature array."""

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._utils import check_image
from . import sift as _sift
from .channels import FeatureChannels
from .colour import N_FEATURES as _N_COLOUR
from .colour import SIGMAS as _COLOUR_SIGMAS
from .colour import check_colour_image, colour
from .edge import edge
from .gabor import SIGMAS as _GABOR_SIGMAS
from .gabor import gabor
from .haar import haar
from .hog import hog
from .position import N_FEATURES as _N_POSITION
from .position import position
from .sift import sift
from .stencil import intensity

__all__ = ["ALL_FAMILIES", "COLOUR_FAMILIES", "FAMILIES", "FilterBank", "Frame", "FRAME_SUPPORT", "POSITION_FAMILIES",
           "SUPPORT"]

#: name -> (function, number of features), in MATLAB CHM order: the original gray bank.
FAMILIES = {
    "haar": (haar, 2),
    "hog": (hog, 36),
    "edge": (edge, 49),
    "gabor": (gabor, 180),
    "sift": (sift, 128),
    "intensity": (intensity, 81),
}

#: Families computed on a colour image (the others see its luminance), same layout.
COLOUR_FAMILIES = {"colour": (colour, _N_COLOUR)}

#: Where a pixel lies in its image (any image; scene classes have location priors).
POSITION_FAMILIES = {"position": (position, _N_POSITION)}

#: Every family :class:`FilterBank` knows, by name.
ALL_FAMILIES = {**FAMILIES, **COLOUR_FAMILIES, **POSITION_FAMILIES}
_DEFAULT = tuple(FAMILIES)

#: Per family, the farthest pixel (rows or columns away) whose value reaches a pixel's features,
#: or None when they depend on the whole image; :meth:`FilterBank.at` crops by it.
SUPPORT = {
    "haar": 8,                                   # window rows y-7 .. y+8
    "hog": 9,                                    # cells y-7 .. y+8, gradient 1
    "edge": 6,                                   # 7x7 derivative kernel, 7x7 neighbourhood
    "gabor": int(np.ceil(3 * max(_GABOR_SIGMAS))),  # kernel half-width
    "sift": _sift.SUPPORT,                        # and the image-wide peak, passed in
    "intensity": 10,                             # the radius-10 stencil
    "colour": int(4 * max(_COLOUR_SIGMAS) + 0.5),  # scipy's Gaussian truncated at 4 sigma
    "position": None,                            # relative to the image size
}

#: :data:`SUPPORT` when the bank is given the image's :class:`Frame`: position then reads only the
#: pixel's own place, and SIFT's image-wide peak comes with the frame.
FRAME_SUPPORT = {**SUPPORT, "position": 0}


@dataclasses.dataclass(frozen=True)
class Frame:
    """Where an image lies in a larger one (a tile in a whole image), and the larger image's
    statistic that a family reads.

    Given its frame, the bank of a tile equals the bank of the whole image at every pixel of the
    tile farther than :data:`FRAME_SUPPORT` from the tile's sides that are not the whole image's.

    Parameters
    ----------
    origin : (int, int)
        Row and column of the image's first pixel in the larger image.
    shape : (int, int)
        (H, W) of the larger image.
    sift_peak : float or None
        The larger image's :func:`chm.features.sift.peak` (:meth:`FilterBank.sift_peak`); a bank
        with the sift family needs it.
    """

    origin: tuple
    shape: tuple
    sift_peak: float = None


def _rgb2gray(rgb):
    from skimage.color import rgb2gray

    return rgb2gray(rgb)


def _family(name, image, **kw):
    """Family ``name`` of ``image``, written into a column slice of a wider array as in a bank: numba
    then reuses the kernels compiled for the bank's non-contiguous outputs (a contiguous ``out``
    would compile a second version of each, ~1.5 s in a fresh process)."""
    fn, k = ALL_FAMILIES[name]
    return fn(image, out=np.empty(image.shape[:2] + (k + 1,), dtype=np.float32)[:, :, :k], **kw)


def _frame_args(name, frame):
    """What family ``name`` reads of a :class:`Frame` (None: nothing, the image is whole)."""
    if frame is None:
        return {}
    if name == "position":
        return {"origin": frame.origin, "shape": frame.shape}
    if name == "sift":
        return {"peak": frame.sift_peak}
    return {}


def _crops_pay(name, n, area):
    """Whether ``n`` crops of family ``name`` cover at most half of an image of ``area`` pixels."""
    r = SUPPORT[name]
    return r is not None and 2 * n * (2 * r + 1) ** 2 <= area


class FilterBank:
    """A selection of filter families computed into one (H, W, n) array.

    Parameters
    ----------
    families : sequence of str, optional
        Family names from :data:`ALL_FAMILIES`, in the
        order their blocks appear in the output. The default is the full MATLAB
        CHM bank, 476 features. Colour families need colour images.
    channels : chm.features.channels.FeatureChannels, optional
        The user's own feature channels (E of them): the bank then takes the image's planes
        followed by the E channel planes, ``(H, W, 1 + E)`` (gray) or ``(H, W, 3 + E)`` (colour),
        and appends the standardised channels as its last E columns (block ``"channels"``).

    Raises
    ------
    ValueError
        If ``families`` is empty, holds an unknown name or a duplicate.

    Examples
    --------
    >>> import numpy as np
    >>> bank = FilterBank(("haar", "edge"))
    >>> bank.n_features, bank.slices["edge"]
    (51, slice(2, 51, None))
    >>> bank(np.zeros((4, 5))).shape
    (4, 5, 51)
    """

    def __init__(self, families=_DEFAULT, channels=None):
        if isinstance(families, str):
            families = (families,)
        families = tuple(families)
        if not families:
            raise ValueError(f"FilterBank needs at least one family; valid names: {list(ALL_FAMILIES)}")
        unknown = [f for f in families if f not in ALL_FAMILIES]
        if unknown:
            raise ValueError(f"unknown filter famil{'y' if len(unknown) == 1 else 'ies'} "
                             f"{unknown}; valid names: {list(ALL_FAMILIES)}")
        if len(set(families)) != len(families):
            raise ValueError(f"duplicate family names in {list(families)}")
        if channels is not None and not isinstance(channels, FeatureChannels):
            raise TypeError(f"channels must be None or a FeatureChannels, got {type(channels).__name__}")
        self._families = families
        self._channels = channels

    @property
    def families(self):
        """tuple of str: the family names, in output order."""
        return self._families

    @property
    def channels(self):
        """FeatureChannels or None: the user's feature channels, the bank's last columns."""
        return self._channels

    @property
    def n_extra(self):
        """int: the number of feature channels (planes after the image's, columns after the families')."""
        return 0 if self._channels is None else len(self._channels)

    @property
    def n_features(self):
        """int: total number of features per pixel."""
        return sum(ALL_FAMILIES[f][1] for f in self._families) + self.n_extra

    @property
    def slices(self):
        """dict: family name (and ``"channels"``) -> slice of its block along the last axis."""
        slices, start = {}, 0
        for f in self._families:
            n = ALL_FAMILIES[f][1]
            slices[f] = slice(start, start + n)
            start += n
        if self.n_extra:
            slices["channels"] = slice(start, start + self.n_extra)
        return slices

    def _family_slices(self):
        return {f: sl for f, sl in self.slices.items() if f != "channels"}

    @property
    def names(self):
        """list of str: one name per feature column, e.g. ``"gabor[17]"``, ``"channels[dapi]"``."""
        extra = [] if self._channels is None else [f"channels[{n}]" for n in self._channels.names]
        return [f"{f}[{i}]" for f in self._families for i in range(ALL_FAMILIES[f][1])] + extra

    @property
    def needs_colour(self):
        """bool: whether a family of :data:`COLOUR_FAMILIES` is selected."""
        return any(f in COLOUR_FAMILIES for f in self._families)

    def __call__(self, image, *, out=None, frame=None):
        """Compute all selected families of a float image.

        Parameters
        ----------
        image : (H, W) or (H, W, 3) ndarray of float
            Grey or RGB image in [0, 1]. The gray families see an RGB image's luminance
            (:func:`skimage.color.rgb2gray`); colour families need an RGB image. With
            ``channels``: the image's planes, then the channels' raw planes (see :class:`FilterBank`).
        out : (H, W, n_features) float32 ndarray, optional
            Preallocated output (e.g. a slice of a bigger training matrix).
        frame : Frame, optional
            The image is a tile of a larger image: its features are the larger image's (see
            :class:`Frame`).

        Returns
        -------
        features : (H, W, n_features) float32 ndarray
            Channels-last; family blocks in :attr:`slices`.
        """
        image, rgb, extra = self._inputs(image)
        shape = image.shape + (self.n_features,)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != shape:
            raise ValueError(f"out must be a float32 array of shape {shape}")
        self._check_frame(frame)
        # each family writes straight into its block: no per-family temporaries
        for name, sl in self._family_slices().items():
            ALL_FAMILIES[name][0](rgb if name in COLOUR_FAMILIES else image, out=out[:, :, sl],
                                  **_frame_args(name, frame))
        if extra is not None:
            self._channels(extra, out=out[:, :, self.slices["channels"]])
        return out

    def at(self, image, rows, cols):
        """The features of some pixels only: ``self(image)[rows, cols]``, up to float rounding.

        Each family with a finite :data:`SUPPORT` ``r`` is computed on the (2r+1)-pixel square
        crop around each pixel (clipped at the image border, so borders are padded as in the
        whole image; SIFT is given the whole image's peak), unless the crops would cover more
        than half of the image (:meth:`crops_pay`); the others are computed on the whole image. With a few pixels
        per image, as in sparse labels, this costs a fraction of :meth:`__call__`.

        Parameters
        ----------
        image : (H, W) or (H, W, 3) ndarray of float
            As :meth:`__call__`.
        rows, cols : (n,) array_like of int
            Pixel coordinates.

        Returns
        -------
        features : (n, n_features) float32 ndarray
        """
        gray, rgb, extra = self._inputs(image)
        h, w = gray.shape
        rows, cols = np.asarray(rows, dtype=np.intp).ravel(), np.asarray(cols, dtype=np.intp).ravel()
        if rows.shape != cols.shape:
            raise ValueError(f"rows and cols must have the same length, got {rows.size} and {cols.size}")
        if rows.size and (rows.min() < 0 or rows.max() >= h or cols.min() < 0 or cols.max() >= w):
            raise ValueError(f"pixel coordinates outside the {h} x {w} image")
        out = np.empty((rows.size, self.n_features), dtype=np.float32)
        if extra is not None:  # per-pixel values: no crop needed
            self._channels(extra[rows, cols], out=out[:, self.slices["channels"]])
        for name, sl in self._family_slices().items():
            src = rgb if name in COLOUR_FAMILIES else gray
            r = SUPPORT[name]
            if not _crops_pay(name, rows.size, h * w):
                out[:, sl] = _family(name, src)[rows, cols]
                continue
            kw = {"peak": _sift.peak(gray)} if name == "sift" else {}
            for i, (y, x) in enumerate(zip(rows, cols)):
                y0, x0 = max(y - r, 0), max(x - r, 0)
                out[i, sl] = _family(name, src[y0:y + r + 1, x0:x + r + 1], **kw)[y - y0, x - x0]
        return out

    def crops_pay(self, shape, n):
        """Whether :meth:`at` computes some family of ``n`` pixels of an image of ``shape`` on crops
        (if not, it costs as much as :meth:`__call__`)."""
        return any(_crops_pay(name, n, shape[0] * shape[1]) for name in self._families)

    def sift_peak(self, image, window=None):
        """The statistic of an image a :class:`Frame` carries: :func:`chm.features.sift.peak` of
        what the sift family sees (the luminance of a colour image), over ``window`` (a pair of
        slices; default the whole image) only; None if the bank has no sift family."""
        if "sift" not in self._families:
            return None
        return float(_sift.peak(self._inputs(image)[0], window))

    def _check_frame(self, frame):
        if frame is not None and "sift" in self._families and frame.sift_peak is None:
            raise ValueError("a Frame for a bank with the sift family needs the whole image's sift_peak "
                             "(FilterBank.sift_peak)")

    def _inputs(self, image):
        """(gray, rgb or None, channel planes or None): what the gray and the colour families and
        the feature channels see, validated."""
        rgb = extra = None
        if self.n_extra:
            shape, n = np.shape(image), self.n_extra
            if len(shape) != 3 or shape[2] - n not in (1, 3):
                raise ValueError(f"this bank has {n} feature channel(s): it takes the image's planes followed by "
                                 f"the channels', (H, W, 1 + {n}) or (H, W, 3 + {n}), got shape {shape}")
            extra = image[:, :, shape[2] - n:]
            image = image[:, :, 0] if shape[2] - n == 1 else image[:, :, :3]
        if np.ndim(image) == 3:
            rgb = check_colour_image(image)
            image = np.clip(_rgb2gray(rgb), 0.0, 1.0)
        elif self.needs_colour:
            raise ValueError(f"the {', '.join(f for f in self._families if f in COLOUR_FAMILIES)} features need "
                             f"an (H, W, 3) colour image, got shape {np.shape(image)}")
        return check_image(image), rgb, extra

    def many(self, images, n_threads=1, *, out=None, frames=None):
        """The bank of several images (e.g. the levels of a pyramid), computed by threads.

        The families release the GIL for most of their work (FFTs, scipy.ndimage, numpy), so
        threads over (image, family) pairs speed up a single prediction on several cores. The
        result is the same as ``[self(im) for im in images]``, bit for bit: every task writes
        its own block.

        Parameters
        ----------
        images : list of ndarray
            As :meth:`__call__`.
        n_threads : int
            Threads to use; 1 computes in this thread.
        out : list of (float32 ndarray or None), optional
            Where to write each image's features (as :meth:`__call__`'s ``out``).
        frames : list of (Frame or None), optional
            Each image's frame (as :meth:`__call__`'s ``frame``).

        Returns
        -------
        list of (H, W, n_features) float32 ndarray
        """
        out = [None] * len(images) if out is None else out
        frames = [None] * len(images) if frames is None else frames
        if n_threads <= 1:
            return [self(im, out=o, frame=f) for im, o, f in zip(images, out, frames)]
        inputs = [self._inputs(im) for im in images]
        for f in frames:
            self._check_frame(f)
        outs = [np.empty(gray.shape + (self.n_features,), dtype=np.float32) if o is None else o
                for (gray, _, _), o in zip(inputs, out)]
        for (_, _, extra), o in zip(inputs, outs):
            if extra is not None:  # a copy: no thread needed
                self._channels(extra, out=o[:, :, self.slices["channels"]])
        # Biggest images first, and in each the families with most features first, so that the
        # threads' first-come queue ends with small tasks and no thread idles long at the end.
        order = sorted(range(len(images)), key=lambda i: -inputs[i][0].size)
        fams = sorted(self._family_slices().items(), key=lambda kv: -(kv[1].stop - kv[1].start))
        with ThreadPoolExecutor(n_threads) as pool:
            futures = [pool.submit(ALL_FAMILIES[name][0], inputs[i][1] if name in COLOUR_FAMILIES else inputs[i][0],
                                   out=outs[i][:, :, sl], **_frame_args(name, frames[i]))
                       for i in order for name, sl in fams]
            for f in futures:
                f.result()
        return outs

    def to_dict(self):
        """JSON-serialisable description, for model files (``channels`` only when there are some)."""
        d = {"type": "FilterBank", "families": list(self._families), "n_features": self.n_features}
        if self._channels is not None:
            d["channels"] = self._channels.to_dict()
        return d

    @classmethod
    def from_dict(cls, d):
        """Rebuild a bank from :meth:`to_dict` output (checks ``n_features``)."""
        if not isinstance(d, dict) or "families" not in d:
            raise ValueError("expected a dict with a 'families' list (from FilterBank.to_dict)")
        channels = d.get("channels")  # files of banks without feature channels have none
        bank = cls(d["families"], None if channels is None else FeatureChannels.from_dict(channels))
        if "n_features" in d and d["n_features"] != bank.n_features:
            raise ValueError(f"n_features mismatch: stored {d['n_features']}, "
                             f"families give {bank.n_features}")
        return bank

    def __eq__(self, other):
        return (isinstance(other, FilterBank) and other._families == self._families
                and other._channels == self._channels)

    def __hash__(self):
        return hash((self._families, self._channels))

    def __repr__(self):
        extra = "" if self._channels is None else f", channels={self._channels!r}"
        return f"FilterBank({self._families!r}{extra})"
