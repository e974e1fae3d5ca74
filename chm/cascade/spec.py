"""What a cascade is, before and after training: :class:`CascadeSpec` (its shape and every
classifier's settings) and :class:`FittedCascade` (its trained classifiers and decision rule).

The estimator (:class:`chm.CHM`) builds a spec from its parameters and the data, hands it to
:func:`chm.cascade.training.fit_cascade`, and keeps the :class:`FittedCascade` it gets back: the
training loop never sees the estimator.
"""

import dataclasses

import numpy as np

from ..classifiers import NETWORKS, from_state, make_classifier
from ..features import FilterBank
from ..io.images import as_float_image, to_channels
from .cache import FeatureSource
from .contexts import ContextProjection, stencil_spec
from .inference import cascade

__all__ = ["CascadeSpec", "CLASS_PRIORS", "FittedCascade", "FUSION_CONTEXTS", "LABEL_POOLINGS"]

#: Rules for the labels of the coarse levels (``CHM(label_pooling=...)``).
LABEL_POOLINGS = ("max", "mean")

#: Where the decision rule's class prior comes from (``CHM(class_prior=...)``).
CLASS_PRIORS = ("labels", "em")

#: How the fusion classifiers sample the upsampled coarse maps (``CHM(fusion_context=...)``).
FUSION_CONTEXTS = ("original", "scaled")


@dataclasses.dataclass(frozen=True)
class CascadeSpec:
    """The cascade's shape and the settings of each of its classifiers (see :class:`chm.CHM`,
    whose parameters of the same names these are; ``n_classes`` and ``n_channels`` come from
    the data). Validated on creation."""

    levels: int = 3
    stages: int = 2
    n_classes: int = 2
    n_channels: int = 1
    classifier: str = "ldnn"
    network: str = "small"
    classifier_params: dict = None
    epochs: int = None
    spatial_rate: float = 4.0
    weight_decay: float = 0.0
    tv_levels: tuple = (0,)
    context_radius: int = 7
    context_channels: int = 8
    fusion_context: str = "original"
    label_pooling: str = None
    max_samples: object = None
    class_prior: str = "labels"

    def __post_init__(self):
        for name, lo in (("levels", 0), ("stages", 1), ("context_radius", 1), ("context_channels", 1),
                         ("n_classes", 2)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if self.n_channels not in (1, 3):
            raise ValueError(f"n_channels must be 1 or 3, got {self.n_channels!r}")
        if self.classifier not in ("ldnn", "logistic"):
            raise ValueError(f"classifier must be 'ldnn' or 'logistic', got {self.classifier!r}")
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {sorted(NETWORKS)}, got {self.network!r}")
        if self.fusion_context not in FUSION_CONTEXTS:
            raise ValueError(f"fusion_context must be one of {FUSION_CONTEXTS}, got {self.fusion_context!r}")
        if self.class_prior not in CLASS_PRIORS:
            raise ValueError(f"class_prior must be one of {CLASS_PRIORS}, got {self.class_prior!r}")
        if self.label_pooling is not None and self.label_pooling not in LABEL_POOLINGS:
            raise ValueError(f"label_pooling must be None or one of {LABEL_POOLINGS}, got {self.label_pooling!r}")
        for name in ("weight_decay", "spatial_rate"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float, np.number)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if any(not isinstance(l, (int, np.integer)) or not 0 <= l <= self.levels for l in self.tv_levels):
            raise ValueError(f"tv_levels must lie in 0..levels={self.levels}, got {self.tv_levels!r}")
        self.level_caps(1)

    def schedule(self):
        """(stage, level) pairs in training order (stages and levels count from 1 and 0)."""
        return [(s, l) for s in range(1, self.stages + 1)
                for l in (range(self.levels + 1) if s < self.stages else [0])]

    def stencil(self, s, l):
        """(radius, dilation per context map) of classifier (s, l)."""
        return stencil_spec(self.fusion_context, self.context_radius, s, l, self.levels)

    def level_caps(self, n_images, default=None):
        """Per level: labelled pixels kept per class and image, or None (no cap). ``default``: the
        total per class and level when ``max_samples`` is None (labels too many to keep all)."""
        caps = self.max_samples if self.max_samples is not None else default
        if caps is None or np.isscalar(caps):
            caps = [caps] * (self.levels + 1)
        caps = list(caps)
        if len(caps) != self.levels + 1 or any(c is not None and (not isinstance(c, (int, np.integer)) or c < 1)
                                               for c in caps):
            raise ValueError(f"max_samples must be None, an integer >= 1 or a sequence of {self.levels + 1} "
                             f"such values (one per level), got {self.max_samples!r}")
        return [None if c is None else max(1, -(-int(c) // n_images)) for c in caps]

    def make_classifier(self, stage, level, seed):
        """The untrained classifier of (stage, level); the ``tv_levels`` get ``weight_decay``."""
        overrides = dict(self.classifier_params or {})
        overrides.setdefault("spatial_rate", self.spatial_rate)
        if level in self.tv_levels and self.weight_decay:
            overrides.setdefault("weight_decay", self.weight_decay)
        if self.epochs is not None:
            overrides.setdefault("epochs", self.epochs)
        elif level == 0:
            overrides.setdefault("epochs", 15 if stage == 1 else 6)
        return make_classifier(self.classifier, coarse=level > 0, network=self.network, random_state=seed,
                               n_classes=self.n_classes, **overrides)

    def prepare(self, image, channels=None):
        """A validated image as float64 with the cascade's channels, and the user's feature
        channels behind its planes.

        Parameters
        ----------
        image : array
            As :func:`chm.io.images.as_float_image` takes it.
        channels : (H, W, E) array or None
            The image's feature channels (:func:`chm.features.check_channels`), raw.

        Returns
        -------
        float64 ndarray
            (H, W) or (H, W, 3); with channels (H, W, 1 + E) or (H, W, 3 + E), what a bank with
            E feature channels takes. Every level image, tile and cache entry comes from this
            array, so the channels are halved, cut and keyed with the image.
        """
        image = to_channels(as_float_image(image), self.n_channels)
        if channels is None:
            return image
        planes = image[:, :, None] if image.ndim == 2 else image
        return np.concatenate([planes, np.asarray(channels, dtype=np.float64)], axis=2)

    def image_of(self, prepared):
        """The image planes of an array from :meth:`prepare` (a view): what the MRF proposals,
        superpixels and contrast-sensitive losses see, without the feature channels."""
        if prepared.ndim == 2 or prepared.shape[2] == self.n_channels:
            return prepared
        return prepared[:, :, 0] if self.n_channels == 1 else prepared[:, :, :3]


@dataclasses.dataclass
class FittedCascade:
    """A trained cascade: its spec, filter bank, classifiers and decision rule.

    Attributes
    ----------
    spec : CascadeSpec
    bank : chm.features.FilterBank
    classifiers : dict
        (stage, level) -> trained classifier, in training order.
    projections : dict
        (stage, level) -> :class:`chm.cascade.contexts.ContextProjection` (K-class models: the
        compression of a map that serves as a context).
    threshold : float or None
        Two classes: the decision threshold on P(foreground).
    class_weights : ndarray or None
        K classes: the weights of the decision rule ``argmax_k w_k p_k``.
    prior : float, ndarray or None
        The class prior the decision rule decides for: the foreground fraction (two classes) or
        the K class fractions, from the labels or estimated by EM (``spec.class_prior``).
    timings : dict
        Seconds per stage of the fit that made it.
    rounds : list of dict
        Self-training: each round's seconds and its proposals' class fractions.
    spatial_share : dict or None
        (stage, level) -> the spatial loss's share of the gradient in the last epoch of each
        classifier trained with one (``spatial_share_`` of :class:`chm.classifiers.LDNN` and
        :class:`chm.classifiers.SoftmaxMLP`); None when none was. A diagnostic of the fit that
        made it, not kept in model files.
    """

    spec: CascadeSpec
    bank: FilterBank
    classifiers: dict = dataclasses.field(default_factory=dict)
    projections: dict = dataclasses.field(default_factory=dict)
    threshold: float = None
    class_weights: np.ndarray = None
    prior: object = None
    timings: dict = dataclasses.field(default_factory=dict)
    rounds: list = dataclasses.field(default_factory=list)
    spatial_share: dict = None

    def predict_image(self, image, stage=None, cache=None, n_threads=1, frames=None):
        """The full-resolution map of one prepared image (:meth:`CascadeSpec.prepare`): (H, W)
        P(foreground) or (H, W, K) probabilities; ``stage`` stops after that stage's fusion.
        ``frames``: the image is a tile of a larger one, one :class:`chm.features.Frame` per level
        (:func:`chm.cascade.tiling.predict_tiled`)."""
        schedule = self.schedule(stage)
        stencils = {sl: self.spec.stencil(*sl) for sl in schedule}
        return cascade(image, FeatureSource(self.bank, cache), self.classifiers, schedule, self.spec.levels,
                       stencils, self.projections, n_threads, reuse=True, frames=frames)[0][schedule[-1]]

    def schedule(self, stage=None):
        """The classifiers that run, in order, up to the fusion of ``stage`` (None = all)."""
        schedule = self.spec.schedule()
        if stage is not None:
            if stage not in range(1, self.spec.stages + 1):
                raise ValueError(f"stage must be None or in 1..{self.spec.stages}, got {stage!r}")
            schedule = schedule[:schedule.index((stage, 0)) + 1]
        return schedule

    def decide(self, probas, threshold=None):
        """Label maps from probability maps: ``p > threshold`` (two classes; None = the learned
        one) or the most probable class after the class weights (K classes)."""
        if self.spec.n_classes > 2:
            if threshold is not None:
                raise ValueError(f"threshold is for two-class models; this one has {self.spec.n_classes} classes")
            dtype = np.uint8 if self.spec.n_classes <= 256 else np.int16
            w = self.class_weights.astype(np.float32)
            return [(p * w).argmax(axis=2).astype(dtype) for p in probas]
        t = self.threshold if threshold is None else threshold
        return [(p > t).astype(np.uint8) for p in probas]

    def to_state(self):
        """(JSON-able header, {name: array}): the bank, the decision rule and every classifier."""
        header = {"bank": self.bank.to_dict(), "n_classes": int(self.spec.n_classes),
                  "n_channels": int(self.spec.n_channels), "classifiers": []}
        arrays = {}
        if self.prior is not None:
            header["prior"] = np.atleast_1d(np.asarray(self.prior, dtype=np.float64)).tolist()
        if self.spec.n_classes == 2:
            header["threshold"] = float(self.threshold)
        else:
            arrays["class_weights"] = self.class_weights
        for (s, l), clf in self.classifiers.items():
            meta, arrs = clf.to_state()
            if (s, l) in self.projections:
                arrs = {**arrs, **self.projections[(s, l)].to_arrays()}
            header["classifiers"].append({"stage": s, "level": l, **meta})
            arrays.update((f"s{s}_l{l}_{name}", a) for name, a in arrs.items())
        return header, arrays

    @classmethod
    def from_state(cls, spec, header, arrays):
        """The cascade of a model file (format versions 1 and 2) whose parameters gave ``spec``."""
        out = cls(spec=spec, bank=FilterBank.from_dict(header["bank"]))
        if header.get("prior") is not None:  # older files have none
            prior = np.asarray(header["prior"], dtype=np.float64)
            out.prior = float(prior[0]) if spec.n_classes == 2 else prior
        if spec.n_classes == 2:
            out.threshold = float(header.get("threshold", 0.5))  # files written before it was learned used 0.5
        else:
            out.class_weights = np.asarray(arrays["class_weights"], dtype=np.float64)
        for c in header["classifiers"]:
            s, l = c["stage"], c["level"]
            state = {k.split("_", 2)[2]: v for k, v in arrays.items() if k.startswith(f"s{s}_l{l}_")}
            out.classifiers[(s, l)] = from_state(c, state)
            if "ctx_mean" in state:
                out.projections[(s, l)] = ContextProjection.from_arrays(state)
        if sorted(out.classifiers) != sorted(spec.schedule()):
            raise ValueError("its classifiers do not match levels/stages")
        return out
