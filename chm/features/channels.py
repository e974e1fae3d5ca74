"""The user's own feature channels: per-pixel feature images given with each image.

Other microscope channels, another model's probability map, a distance transform: any (H, W) or
(H, W, E) array of the image's size can join the filter bank as E extra columns
(:class:`FilterBank` with ``channels=``). The cascade stacks them behind the image's own planes
(:meth:`chm.cascade.spec.CascadeSpec.prepare`), so they are halved with the image at every pyramid
level, cut with it into tiles, keyed with it in the feature cache, and then normalised with the
other features.

A channel is a per-pixel value: its support is 0 (:data:`chm.features.bank.FRAME_SUPPORT` needs
no entry for it). Raw values may have any scale (uint16 counts, logits), but training rows and
cached features are float16, which overflows above 65504 and keeps about 3 significant digits:
:class:`FeatureChannels` therefore standardises each channel by the mean and standard deviation
of the training images' pixels, learned in :meth:`FeatureChannels.fit` and saved with the model.
"""

import numpy as np

__all__ = ["FeatureChannels", "check_channels"]


def _as_planes(array, name):
    """``array`` as an (H, W, E) view, its dtype checked (no copy)."""
    arr = np.asarray(array)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(f"{name} must be an (H, W) or (H, W, E) array of its image's size, got shape {arr.shape}")
    return arr if arr.ndim == 3 else arr[:, :, None]


def _describe(names):
    return ", ".join(repr(n) for n in names)


def check_channels(channels, images, expected=None, name="channels"):
    """Validate the feature channels given with ``images``; returns them as (H, W, E) arrays.

    Parameters
    ----------
    channels : list of array_like or None
        One (H, W) or (H, W, E) real array per image, of that image's (H, W); E the same for
        every image. None: no channels.
    images : list of arrays
        The validated images (only their shapes are read).
    expected : FeatureChannels, int or None
        What a fitted model reads: its :class:`FeatureChannels` (E and the names the messages
        cite), or 0 for a model fitted without channels. None (fitting): any E.
    name : str
        What to call the argument in messages.

    Returns
    -------
    list of (H, W, E) ndarray or None
        The arrays themselves, or views of them (a 2-D array gets a trailing axis); not converted.

    Raises
    ------
    TypeError
        ``channels`` is not a list, or an array does not hold real numbers.
    ValueError
        Channels missing where the model needs them (or given where it has none), a count that
        is not one array per image, an array that is not of its image's size, another E than
        the model's (or than the first image's), or NaN / infinite values. The message says
        what is expected.
    """
    want = expected if isinstance(expected, FeatureChannels) else None
    if channels is None:
        if want is not None:
            raise ValueError(f"this model was fitted with {len(want)} feature channel(s) ({_describe(want.names)}): "
                             f"pass {name}=[one (H, W{', ' + str(len(want)) if len(want) > 1 else ''}) array per "
                             "image], the same channels in the same order as in fit")
        return None
    if expected is not None and want is None:
        raise ValueError(f"this model was fitted without feature channels: {name} must be None")
    if isinstance(channels, np.ndarray) and (channels.ndim == 2 or (channels.ndim == 3
                                                                    and len(channels) != len(images))):
        raise TypeError(f"{name} must be a list with one array per image, got a single array of shape "
                        f"{channels.shape}; wrap it in a list")
    try:
        channels = list(channels)
    except TypeError:
        raise TypeError(f"{name} must be a list with one array per image, got {type(channels).__name__}") from None
    if len(channels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(channels)} arrays of {name}: give one per image")
    n = len(want) if want is not None else None
    out = []
    for i, (ch, im) in enumerate(zip(channels, images)):
        what = f"{name}[{i}]"
        arr = _as_planes(ch, what)
        h, w = np.shape(im)[:2]
        if arr.shape[:2] != (h, w):
            raise ValueError(f"{what} has shape {np.shape(ch)} but images[{i}] is {h} x {w}: expected "
                             f"({h}, {w}{', ' + str(n) if n and n > 1 else ''}), the image's size")
        if n is None:
            n = arr.shape[2]
        elif arr.shape[2] != n:
            first = (f"the model was fitted with {n} ({_describe(want.names)})" if want is not None
                     else f"{name}[0] has {n}")
            raise ValueError(f"{what} has {arr.shape[2]} channel(s) but {first}: every image needs the same "
                             "channels")
        bad = ~np.isfinite(arr)
        if bad.any():
            y, x, c = (int(v[0]) for v in np.nonzero(bad))
            channel = f"channel {want.names[c]!r}" if want is not None else f"channel {c}"
            raise ValueError(f"{what} holds NaN or infinite values ({channel}, e.g. at row {y}, column {x}): "
                             "fill them first (e.g. numpy.nan_to_num)")
        out.append(arr)
    return out


class FeatureChannels:
    """The extra feature channels of a filter bank: their names and standardisation.

    Made by :meth:`fit` from the training images' channels (:meth:`chm.CHM.fit` with
    ``channels=``); a :class:`chm.features.FilterBank` given one appends
    ``(value - offset) / scale`` of each channel as a column after its families.

    Parameters
    ----------
    names : sequence of str
        One distinct name per channel, in column order.
    offset, scale : sequence of float
        Per channel: its value is mapped to ``(value - offset) / scale`` (scale > 0).

    Examples
    --------
    >>> fc = FeatureChannels.fit([np.array([[[1.0], [3.0]]])], names=["dapi"])  # one 1 x 2 image
    >>> fc.names, fc.offset, fc.scale
    (('dapi',), (2.0,), (1.0,))
    """

    def __init__(self, names, offset, scale):
        names = (names,) if isinstance(names, str) else tuple(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"channel names must be non-empty strings, one per channel, got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be distinct, got {list(names)}")
        self.names = names
        self.offset = tuple(float(v) for v in offset)
        self.scale = tuple(float(v) for v in scale)
        if not len(self.offset) == len(self.scale) == len(names):
            raise ValueError(f"{len(names)} channel names need as many offsets and scales, got "
                             f"{len(self.offset)} and {len(self.scale)}")
        if not all(np.isfinite(self.offset)) or not all(np.isfinite(s) and s > 0 for s in self.scale):
            raise ValueError("channel offsets must be finite and scales finite and > 0")

    @classmethod
    def fit(cls, channels, names=None):
        """Names and standardisation of the training images' channels.

        Parameters
        ----------
        channels : list of (H, W, E) arrays
            As :func:`check_channels` returns them.
        names : sequence of str, optional
            One per channel; default ``"channel 0"``, ``"channel 1"``, ...

        Returns
        -------
        FeatureChannels
            Offset and scale: the mean and standard deviation of each channel over every pixel
            of every image (scale 1 for a constant channel).
        """
        n = channels[0].shape[2]
        if names is None:
            names = [f"channel {c}" for c in range(n)]
        else:
            names = [names] if isinstance(names, str) else list(names)
            if len(names) != n:
                raise ValueError(f"channel_names names {len(names)} channel(s) but the channels have {n}")
        count = sum(ch.shape[0] * ch.shape[1] for ch in channels)
        total = sum(ch.reshape(-1, n).sum(axis=0, dtype=np.float64) for ch in channels)
        mean = total / count
        var = sum(((ch.reshape(-1, n) - mean) ** 2).sum(axis=0) for ch in channels) / count
        std = np.sqrt(var)
        # A constant channel tells nothing, but must not divide by zero.
        return cls(names, mean, np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0))

    def __len__(self):
        return len(self.names)

    def __call__(self, planes, out=None):
        """The channels' columns of some pixels: ``(planes - offset) / scale`` as float32.

        Parameters
        ----------
        planes : (..., E) array
            Raw channel values (e.g. the last E planes of a prepared level image).
        out : float32 array of the same shape, optional
            Where to write them (a bank's column block).
        """
        planes = np.asarray(planes)
        if planes.shape[-1] != len(self):
            raise ValueError(f"expected {len(self)} channel planes ({_describe(self.names)}), got {planes.shape[-1]}")
        values = (planes - np.asarray(self.offset)) / np.asarray(self.scale)  # in float64, then rounded once
        if out is None:
            return values.astype(np.float32)
        out[...] = values
        return out

    def to_dict(self):
        """JSON-serialisable description (in a model file's bank)."""
        return {"names": list(self.names), "offset": list(self.offset), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, d):
        """Rebuild from :meth:`to_dict` output."""
        if not isinstance(d, dict) or not {"names", "offset", "scale"} <= set(d):
            raise ValueError("expected a dict with 'names', 'offset' and 'scale' (from FeatureChannels.to_dict)")
        return cls(d["names"], d["offset"], d["scale"])

    def __eq__(self, other):
        return isinstance(other, FeatureChannels) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash((self.names, self.offset, self.scale))

    def __repr__(self):
        return f"FeatureChannels(names={self.names!r}, offset={self.offset!r}, scale={self.scale!r})"
