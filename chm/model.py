"""The Contextual Hierarchical Model: a cascade of pixel classifiers over an image pyramid.

Training order (chm-reference 1.1): stage 1 levels 0..L (bottom-up), then every later stage
levels 0..L, the last stage level 0 only (the top-down fusion). Each classifier sees the
filter-bank features of its level's image plus 57 context features (a radius-7 stencil) per
context map (chm-reference 1.2):

* stage 1 or level > 0: the outputs of the same stage's lower levels, halved down to this level;
* stage >= 2, level 0: every level's output of the previous stage, pixel-replicated up to full size.

Contexts are the soft outputs of the trained classifiers on the training images themselves.

Two classes (gray or colour images): LDNNs, one P(foreground) map per classifier. K > 2 classes:
one softmax network per classifier (``chm.softmax``) whose K-class map is compressed to a few
principal components before it serves as a context (``chm.contexts.ContextProjection``), so
cost grows gently with K. Colour images add the colour filter family; the others see the
luminance.

The steps live in modules named for them: ``chm.training`` (the training loop), ``chm.sampling``
(training rows), ``chm.contexts``, ``chm.normalisation``, ``chm.thresholds`` (decision rules),
``chm.inference`` (the cascade over whole images); ``chm.persistence`` holds the file container.

Memory: features are computed per image (joblib over images) and kept, as float16, only at the
labelled rows that SGD needs. A binary model's spatial loss draws fresh centres from every pixel
for every epoch (``chm.sampling.ImageCentres``), so its classifiers read the filter bank of whole
images from a feature cache on disk (a temporary one when ``feature_cache`` is None); a K-class
model keeps a pool of random centres per image instead (``spatial_rate`` x labelled pixels:
scene datasets would need 30-100 GB of cache). Inference streams image by image.
"""

import tempfile
import time

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from .features import COLOUR_FAMILIES, FilterBank

from .cascade import pyramid
from .cascade.pyramid import check_pooled_classes
from .utils._progress import bar
from .base import Estimator
from .cascade.cache import FeatureCache
from .utils._validation import check_random_state
from .classifiers import NETWORKS, from_state, make_classifier
from .cascade.contexts import ContextProjection, stencil_spec
from .io.images import as_float_image, check_image_list, check_labels, to_channels
from .cascade.inference import predict_image
from .semi.losses import SpatialLoss, get_spatial_loss
from .io.persistence import FORMAT, jsonable, write_container
from .semi.superpixels import RECOMMENDED_SCALE, check_scale, expand_labels
from .cascade.training import FewLabelsWarning, fit_cascade, self_train

__all__ = ["CHM", "CONTEXT_CHANNELS", "DEFAULT_FEATURES", "FUSION_CONTEXTS", "FewLabelsWarning", "LABEL_POOLINGS",
           "SEMI_SUPERVISED", "SEMI_SUPERVISED_MULTICLASS"]

#: The default filter families: the original 476-feature bank without Gabor and intensity (215
#: features). Gabor bought the least accuracy per second in benchmarks/run.py's ablation (+0.42 /
#: -0.06 pp when left out, 35-42 % less fit + predict); the 81 raw intensity stencils cost accuracy:
#: leaving them out lowered the held-out error on training horses by 0.84 +- 0.36 pp over five label
#: draws, left held-out Stanford equal, and saves ~14 % of the time (docs/results.md).
#: ``features.FAMILIES`` is the full original bank.
DEFAULT_FEATURES = ("haar", "hog", "edge", "sift")

#: Rules for the labels of the coarse levels (``CHM(label_pooling=...)``).
LABEL_POOLINGS = ("max", "mean")

#: How the fusion classifiers sample the upsampled coarse maps (``CHM(fusion_context=...)``).
FUSION_CONTEXTS = ("original", "scaled")

#: Ways of learning from the unlabelled pixels (``CHM(semi_supervised=...)``) and the weights each
#: gets when none is given (chosen on held-out training images; docs/results.md). "tv" and
#: "contrast" add a spatial loss with weight ``alpha``; "self-training" refits the cascade on
#: graph-cut proposals (:mod:`chm.selftraining`) with Potts weight ``beta``, ``rounds`` times;
#: "tv+self-training" and "contrast+self-training" start the self-training from a model trained
#: with that loss; "superpixels" spreads the sparse labels over superpixels of size ``scale``
#: (:mod:`chm.superpixels`) and fits on them; "superpixels+self-training" then self-trains;
#: "auto" is the recommended one of these.
SEMI_SUPERVISED = {
    "tv": {"loss": "tv", "alpha": 0.3},
    "contrast": {"loss": "contrast", "alpha": 0.1},
    "self-training": {"beta": 16.0, "rounds": 1},
    "tv+self-training": {"loss": "tv", "alpha": 0.3, "beta": 16.0, "rounds": 1},
    "contrast+self-training": {"loss": "contrast", "alpha": 0.1, "beta": 16.0, "rounds": 1},
    "superpixels": {"scale": RECOMMENDED_SCALE},
    "superpixels+self-training": {"scale": RECOMMENDED_SCALE, "beta": 16.0, "rounds": 1},
    "auto": {"scale": RECOMMENDED_SCALE, "beta": 16.0, "rounds": 1},
}

#: The methods of K-class models (K > 2): the spatial losses on the K-channel probability image,
#: whose softmax cross-entropy has another scale than the LDNN's squared error, hence their own
#: weights (the binary defaults of chm 0.1; on held-out Stanford training images, tv at 0.1 did not
#: beat the supervised CHM: docs/results.md). K-class self-training decodes its proposals by
#: alpha-expansion (:func:`chm.selftraining.class_proposal`). "auto" is self-training: on held-out
#: Stanford training images it alone beat the supervised CHM (docs/results.md, "K-class
#: self-training on held-out training images").
SEMI_SUPERVISED_MULTICLASS = {
    "tv": {"loss": "tv", "alpha": 0.1},
    "contrast": {"loss": "contrast", "alpha": 0.3},
    "superpixels": {"scale": RECOMMENDED_SCALE},
    "self-training": {"beta": 16.0, "rounds": 1},
}
SEMI_SUPERVISED_MULTICLASS["auto"] = SEMI_SUPERVISED_MULTICLASS["self-training"]

#: Context channels a K-class map is compressed to, at most (``CHM(context_channels=...)``).
CONTEXT_CHANNELS = 8

#: Labelled pixels per class and level kept from the proposals of a self-training round when
#: ``max_samples`` is None (the proposals label every pixel).
PROPOSAL_SAMPLES = 50_000

#: Self-training keeps the proposals' foreground fraction within this relative distance of the
#: sparse labels' estimate (the guard against collapse of :mod:`chm.selftraining`).
PRIOR_TOLERANCE = 0.25

_MIN_COARSE_SIDE = 4  # the coarsest level must keep this many pixels per side


class CHM(Estimator):
    """Contextual Hierarchical Model trained from sparse pixel labels, optionally with a TV loss.

    Parameters
    ----------
    levels : int
        Levels above full resolution (level l works on the image halved l times).
    stages : int
        Cascade stages; the last one trains the full-resolution fusion classifier only.
    classifier : {"ldnn", "logistic"}
        Two classes: an LDNN or logistic regression per (stage, level). K > 2 classes: a softmax
        network with as many hidden units as the LDNN's (N x M), or none (multinomial logistic).
    network : {"small", "original"}
        LDNN sizes (``chm.classifiers.NETWORKS``): "small" = 6 x 6 at every level (sparse labels:
        as accurate, 2.5-3x faster); "original" = the original CHM's 10 x 20 at full resolution and
        24 x 24 at coarse levels (better with dense labels).
    n_classes : int or None
        Number of classes K; None = the largest label + 1 (at least 2). Give it when a class may
        be missing from the labels (e.g. a rare class in a sparse draw).
    semi_supervised : None, "tv", "contrast", "self-training", "superpixels", "auto", ... or SpatialLoss
        How the unlabelled pixels take part. None: not at all (supervised), unless ``alpha > 0``,
        which selects "tv" as in earlier versions. "tv": the paper's total-variation loss
        (eq. 8-15). "contrast": a contrast-sensitive pairwise loss (chm.losses.ContrastSensitive):
        like TV, but a boundary costs little where the image has an edge. "self-training": fit,
        decode every training image with a contrast-sensitive Potts MRF (its labelled pixels
        fixed), refit on these proposals
        (:mod:`chm.selftraining`); "tv+self-training" / "contrast+self-training": the same,
        starting from a model trained with that loss. "superpixels": every superpixel whose
        labelled pixels share one class gives it to all its pixels (:mod:`chm.superpixels`), and
        the cascade is fitted on these labels; "superpixels+self-training": then self-trained.
        "auto": the recommended method for sparse labels (:data:`SEMI_SUPERVISED`). K > 2 classes
        take "tv", "contrast", "superpixels", "self-training" (alpha-expansion proposals) and
        "auto" (= "self-training"; :data:`SEMI_SUPERVISED_MULTICLASS`), fit raises for the others. A SpatialLoss: that loss,
        with an explicit ``alpha``.
    alpha : float or None
        Weight of the unsupervised spatial loss (paper: E_S + alpha E_U), as the ratio of the mean
        spatial loss per pixel to the mean supervised loss per labelled pixel. None: the
        method's recommended weight (:data:`SEMI_SUPERVISED`, :data:`SEMI_SUPERVISED_MULTICLASS`
        for K > 2), 0 without a method. K classes: the loss of the K-channel probability image
        (the sum over the class channels, paper eq. 8).
    beta : float or None
        Self-training: Potts weight of the MRF that makes the proposals (None: recommended).
    rounds : int or None
        Self-training: proposal-and-refit rounds (None: recommended).
    superpixel_scale : float or None
        Superpixels: the Felzenszwalb scale of the segments the labels spread over, for images in
        [0, 1]; larger = larger segments, more labelled pixels, more of them wrong (None:
        recommended).
    tv_levels : sequence of int or None
        Levels whose classifiers get the spatial loss (and ``weight_decay``); None = (0,), the
        paper's choice (the full-resolution classifiers of every stage).
    spatial_rate : float
        Spatial-loss centres per labelled pixel and epoch, drawn afresh every epoch from all
        pixels of the training images (sampling rate; does not change the objective).
    weight_decay : float
        L2 (Tikhonov) penalty on the weights of the ``tv_levels`` classifiers, the paper's other
        regulariser: ``weight_decay / 2 ||w||^2`` next to the mean supervised loss.
    features : sequence of str
        Filter families (see ``features.FAMILIES``); the default, :data:`DEFAULT_FEATURES`, is the
        original bank without Gabor and intensity, chosen on speed/accuracy evidence; ``tuple(features.FAMILIES)``
        is the original CHM bank. These see gray images, or the luminance of colour ones; colour
        images add the ``colour`` family (``features.COLOUR_FAMILIES``) unless it is listed.
        ``DEFAULT_FEATURES + ("position",)`` adds each pixel's place in its image, which scene
        photographs reward (sky at the top: 0.8 and 1.7 points on held-out Stanford Background and
        SIFT Flow training images) and horses do not (docs/results.md).
    context_radius : int
        Stencil radius of the context features (7 -> 57 values per map and channel).
    context_channels : int
        K-class models: each context map is compressed to min(K - 1, context_channels) principal
        components of the classifier's outputs (:class:`chm.contexts.ContextProjection`).
    fusion_context : {"original", "scaled"}
        How the full-resolution fusion classifiers (level 0 of stages >= 2) sample the map of
        level j, upsampled to full size. "original": the stencil at full-resolution spacing, so a
        coarse map gives nearly constant values (a level-5 pixel covers 32 x 32). "scaled": the
        stencil's offsets times 2**j, i.e. the level-j map at its own pixel spacing, the window
        the bottom-up pass saw.
    epochs : int or None
        Epochs per classifier; None = the original (15, and 6 for level 0 of stages >= 2).
    classifier_params : dict or None
        Overrides for every classifier (e.g. ``{"n_groups": 4, "n_nodes": 4}``), applied after ``network``.
    label_pooling : {"max", "mean"}
        Labels of the coarse levels. "max": the original's max-pooling (a coarse pixel is
        foreground if any labelled fine pixel in its block is); for K > 2 classes, the block's
        majority class. "mean": each coarse pixel regresses the foreground fraction (the class
        fractions) of its block's labelled pixels (soft targets), so the coarse maps say how much
        of a block is foreground rather than whether any of it is.
    max_samples : int, sequence of int or None, or None
        Cap on labelled training pixels per class and level (dense labels), shared evenly by the
        images; a sequence gives one cap per level 0..levels (None in it = no cap at that level).
        None = no cap.
    feature_cache : str, Path, chm.cache.FeatureCache or None
        Folder of a :class:`chm.cache.FeatureCache` (or one, e.g. with a size budget): filter-bank
        features of every (image, level) are computed once and reused by later fits and
        predictions (float16 on disk).
    n_jobs : int or None
        Parallel workers over images (joblib). None defers to an enclosing
        ``joblib.parallel_config`` (e.g. ``backend="dask"``), else runs sequentially.
    progress : bool or None
        None: progress bars when stderr is a terminal, else a few plain lines per stage (a log
        file stays readable); True: bars always; False: silent.
    random_state : int, Generator or None
        Seeds every random choice; the same seed gives the same model for any ``n_jobs``.
    """

    def __init__(self, levels=3, stages=2, classifier="ldnn", network="small", n_classes=None, semi_supervised=None,
                 alpha=None, tv_levels=None, spatial_rate=4.0, weight_decay=0.0, beta=None, rounds=None,
                 superpixel_scale=None, features=DEFAULT_FEATURES, context_radius=7,
                 context_channels=CONTEXT_CHANNELS,
                 fusion_context="original", epochs=None, classifier_params=None, label_pooling="max",
                 max_samples=None, feature_cache=None,
                 n_jobs=None, progress=None, random_state=None):
        self.levels = levels
        self.stages = stages
        self.classifier = classifier
        self.network = network
        self.n_classes = n_classes
        self.semi_supervised = semi_supervised
        self.alpha = alpha
        self.tv_levels = tv_levels
        self.spatial_rate = spatial_rate
        self.weight_decay = weight_decay
        self.beta = beta
        self.rounds = rounds
        self.superpixel_scale = superpixel_scale
        self.features = features
        self.context_radius = context_radius
        self.context_channels = context_channels
        self.fusion_context = fusion_context
        self.epochs = epochs
        self.classifier_params = classifier_params
        self.label_pooling = label_pooling
        self.max_samples = max_samples
        self.feature_cache = feature_cache
        self.n_jobs = n_jobs
        self.progress = progress
        self.random_state = random_state

    # ------------------------------------------------------------------------------------
    def _validate_params(self):
        for name, lo in (("levels", 0), ("stages", 1), ("context_radius", 1), ("context_channels", 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if self.n_classes is not None and (not isinstance(self.n_classes, (int, np.integer)) or self.n_classes < 2):
            raise ValueError(f"n_classes must be None or an integer >= 2, got {self.n_classes!r}")
        if self.classifier not in ("ldnn", "logistic"):
            raise ValueError(f"classifier must be 'ldnn' or 'logistic', got {self.classifier!r}")
        if self.fusion_context not in FUSION_CONTEXTS:
            raise ValueError(f"fusion_context must be one of {FUSION_CONTEXTS}, got {self.fusion_context!r}")
        if self.label_pooling not in LABEL_POOLINGS:
            raise ValueError(f"label_pooling must be one of {LABEL_POOLINGS}, got {self.label_pooling!r}")
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {sorted(NETWORKS)}, got {self.network!r}")
        for name in ("alpha", "weight_decay", "spatial_rate"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float, np.number)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        tv = (0,) if self.tv_levels is None else tuple(self.tv_levels)
        if any(not 0 <= l <= self.levels for l in tv):
            raise ValueError(f"tv_levels must lie in 0..levels={self.levels}, got {self.tv_levels!r}")
        self._level_caps(1)
        return tv

    def _recipe(self, n_classes=2):
        """What ``fit`` does with the unlabelled pixels of an ``n_classes`` problem: a dict with the
        spatial loss (or None), its ``alpha``, for self-training the Potts ``beta`` and the
        number of ``rounds`` (0 = none), and the superpixels' ``scale`` (None = no spreading)."""
        method = self.semi_supervised
        out = {"loss": None, "alpha": 0.0, "beta": None, "rounds": 0, "scale": None}
        if method is None:
            alpha = self.alpha or 0.0
            if alpha > 0:
                out.update(loss=get_spatial_loss("tv"), alpha=float(alpha))
            return out
        if isinstance(method, SpatialLoss):
            if self.alpha is None:
                raise ValueError("a custom SpatialLoss in semi_supervised needs an explicit alpha")
            out.update(loss=method, alpha=float(self.alpha))
            return out
        if not isinstance(method, str) or method not in SEMI_SUPERVISED:
            raise ValueError(f"semi_supervised must be None, one of {sorted(SEMI_SUPERVISED)} or a "
                             f"chm.losses.SpatialLoss, got {method!r}")
        table = SEMI_SUPERVISED if n_classes == 2 else SEMI_SUPERVISED_MULTICLASS
        if method not in table:
            raise ValueError(f"semi_supervised={method!r} works for two classes only; with {n_classes} classes "
                             f"use one of {sorted(table)}")
        rec = dict(table[method])
        loss = rec.get("loss")
        if loss is not None:
            alpha = rec["alpha"] if self.alpha is None else float(self.alpha)
            if alpha > 0:
                out.update(loss=get_spatial_loss(loss), alpha=alpha)
        elif self.alpha:
            raise ValueError(f"alpha weighs a spatial loss, and {method!r} has none; use beta and rounds")
        if "rounds" in rec:
            beta = rec["beta"] if self.beta is None else self.beta
            rounds = rec["rounds"] if self.rounds is None else self.rounds
            if not (isinstance(beta, (int, float, np.number)) and np.isfinite(beta) and beta >= 0):
                raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
            if not isinstance(rounds, (int, np.integer)) or rounds < 0:
                raise ValueError(f"rounds must be an integer >= 0, got {rounds!r}")
            out.update(beta=float(beta), rounds=int(rounds))
        if "scale" in rec:
            out.update(scale=rec["scale"] if self.superpixel_scale is None else check_scale(self.superpixel_scale))
        return out

    def _level_caps(self, n_images, default=None):
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

    def _schedule(self):
        """(stage, level) pairs in training order (stages and levels count from 1 and 0)."""
        return [(s, l) for s in range(1, self.stages + 1)
                for l in (range(self.levels + 1) if s < self.stages else [0])]

    def fit(self, images, labels):
        """Train the cascade.

        Parameters
        ----------
        images : list of arrays, (H, W) gray or (H, W, 3) colour
            uint8, uint16 or float in [0, 1]; any sizes. One colour image makes a colour model
            (gray images are then used as colour images with equal channels).
        labels : list of int arrays, (H, W)
            -1 = unlabelled, 0 .. K-1 = class (two classes: 0 = background, 1 = foreground).

        Returns
        -------
        self
        """
        tv_levels = self._validate_params()
        images = check_image_list(images)
        labels = list(labels) if not isinstance(labels, np.ndarray) or labels.ndim > 2 else labels
        try:
            top = max((int(np.max(lab)) for lab in labels if np.size(lab)), default=1)
        except (TypeError, ValueError):
            top = 1  # check_labels gives the message
        n_classes = self.n_classes or max(2, top + 1)
        labels = check_labels(labels, images, n_classes)
        recipe = self._recipe(n_classes)
        loss, alpha = recipe["loss"], recipe["alpha"]
        for i, im in enumerate(images):
            side = min(pyramid.level_shape(im.shape[:2], self.levels))
            if side < _MIN_COARSE_SIDE:
                raise ValueError(f"images[{i}] of shape {im.shape} is too small for levels={self.levels}: "
                                 f"its coarsest level would be {side} px wide (need >= {_MIN_COARSE_SIDE}); "
                                 "use fewer levels")
        check_pooled_classes(labels, self.levels, n_classes)
        rng = check_random_state(self.random_state)
        self.n_channels_ = 3 if any(im.ndim == 3 for im in images) else 1
        families = tuple(self.features)
        if self.n_channels_ == 3 and not any(f in COLOUR_FAMILIES for f in families):
            families += tuple(COLOUR_FAMILIES)
        elif self.n_channels_ == 1 and any(f in COLOUR_FAMILIES for f in families):
            raise ValueError(f"features {families} include colour families but every image is gray")
        self.bank_ = FilterBank(families)
        self.n_classes_ = n_classes
        self.classes_ = np.arange(n_classes)
        self.alpha_ = alpha  # the spatial-loss weight in effect
        self.timings_ = {}
        seeds = rng.integers(0, 2**63 - 1, size=len(images))
        caps = self._level_caps(len(images))
        par = Parallel(n_jobs=self.n_jobs, return_as="generator")
        if recipe["scale"] is not None:
            t0 = time.perf_counter()
            jobs = (delayed(expand_labels)(self._prepare(im), lab, recipe["scale"]) for im, lab in zip(images, labels))
            labels = list(bar(par(jobs), total=len(images), desc="superpixel labels", enabled=self.progress))
            self.timings_["superpixels"] = time.perf_counter() - t0
            caps = self._level_caps(len(images), PROPOSAL_SAMPLES)  # like proposals, too many to keep all

        self.rounds_ = []
        with tempfile.TemporaryDirectory(prefix="chm-features-") as tmp:
            # A binary spatial loss reads whole images' features at every epoch: keep them on disk for
            # the length of the fit. (Self-training alone recomputes them: a few seconds per pass.)
            cache = self._cache()
            if cache is None and loss is not None and n_classes == 2:
                cache = FeatureCache(tmp)
            fit_cascade(self, images, labels, seeds, caps, cache, loss, alpha, tv_levels, rng, par, self.label_pooling)
            if recipe["rounds"]:
                self_train(self, images, labels, recipe["beta"], recipe["rounds"], tv_levels, cache, rng, par,
                           PRIOR_TOLERANCE, PROPOSAL_SAMPLES)
        return self

    def _prepare(self, image):
        """A validated image as float64 with the model's channels."""
        return to_channels(as_float_image(image), self.n_channels_)

    def _cache(self):
        if self.feature_cache is None or isinstance(self.feature_cache, FeatureCache):
            return self.feature_cache
        return FeatureCache(self.feature_cache)

    def _stencil(self, s, l):
        """(radius, dilation per context map) of classifier (s, l)."""
        return stencil_spec(self.fusion_context, self.context_radius, s, l, self.levels)

    def _make_classifier(self, stage, level, seed, regularised=False):
        overrides = dict(self.classifier_params or {})
        overrides.setdefault("spatial_rate", self.spatial_rate)
        if regularised and self.weight_decay:
            overrides.setdefault("weight_decay", self.weight_decay)
        if self.epochs is not None:
            overrides.setdefault("epochs", self.epochs)
        elif level == 0:
            overrides.setdefault("epochs", 15 if stage == 1 else 6)
        return make_classifier(self.classifier, coarse=level > 0, network=self.network, random_state=seed,
                               n_classes=self.n_classes_, **overrides)

    # ------------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "classifiers_"):
            raise RuntimeError("this CHM is not fitted yet: call fit(images, labels) or chm.load(path)")

    def predict_proba(self, images, stage=None):
        """Class probabilities per pixel.

        Parameters
        ----------
        images : list of arrays, (H, W) or (H, W, 3)
            As in :meth:`fit`. A gray model reads colour images as their luminance; a colour
            model reads gray images as colour images with equal channels.
        stage : int, optional
            1 .. stages: that stage's full-resolution output instead of the final one (the last
            stage's), to see what each stage adds.

        Returns
        -------
        list of float32 arrays
            Two classes: (H, W) P(foreground) (class 1). K > 2 classes: (H, W, K) probabilities
            that sum to 1 over the last axis.
        """
        self._check_fitted()
        schedule = self._schedule()
        if stage is not None:
            if stage not in range(1, self.stages + 1):
                raise ValueError(f"stage must be None or in 1..{self.stages}, got {stage!r}")
            schedule = schedule[:schedule.index((stage, 0)) + 1]
        images = check_image_list(images)
        for i, im in enumerate(images):
            if min(pyramid.level_shape(im.shape[:2], self.levels)) < 1:
                raise ValueError(f"images[{i}] of shape {im.shape} is too small for levels={self.levels}")
        stencils = {sl: self._stencil(*sl) for sl in schedule}
        if len(images) == 1:
            # One image (an interactive prediction): the cores share its filter bank as threads
            # rather than wait on a single worker process.
            return [predict_image(self._prepare(images[0]), self.bank_, self.classifiers_, schedule, self.levels,
                                  stencils, self._cache(), self.projections_, effective_n_jobs(self.n_jobs))]
        par = Parallel(n_jobs=self.n_jobs, return_as="generator")
        jobs = (delayed(predict_image)(self._prepare(im), self.bank_, self.classifiers_, schedule, self.levels,
                                       stencils, self._cache(), self.projections_) for im in images)
        return list(bar(par(jobs), total=len(images), desc="predict", enabled=self.progress))

    def predict(self, images, threshold=None, stage=None):
        """Label maps: uint8 0/1 masks (two classes) or class indices 0 .. K-1 (uint8, int16 above 256).

        ``decide(predict_proba(images, stage), threshold)``.
        """
        return self.decide(self.predict_proba(images, stage), threshold)

    def decide(self, probas, threshold=None):
        """Label maps from :meth:`predict_proba`'s maps, by the model's decision rule.

        Two classes: ``proba > threshold``; ``threshold=None`` uses ``threshold_`` (learned in
        :meth:`fit`): 0.5 unless ``max_samples`` changed the class balance of the full-resolution
        training pixels, in which case it undoes that change (see
        :func:`chm.thresholds.decision_threshold`). K classes: the most probable class after the
        same correction (``class_weights_``, :func:`chm.thresholds.class_weights`); ``threshold``
        must be None.
        """
        self._check_fitted()
        if self.n_classes_ > 2:
            if threshold is not None:
                raise ValueError(f"threshold is for two-class models; this one has {self.n_classes_} classes")
            dtype = np.uint8 if self.n_classes_ <= 256 else np.int16
            w = self.class_weights_.astype(np.float32)
            return [(p * w).argmax(axis=2).astype(dtype) for p in probas]
        t = self.threshold_ if threshold is None else threshold
        return [(p > t).astype(np.uint8) for p in probas]

    def save(self, path):
        """Write the model to ``path`` (.npz + JSON header, no pickle; see :mod:`chm.persistence`).

        Returns the path written (``.npz`` is appended if missing).
        """
        self._check_fitted()
        return write_container(path, FORMAT, *self._to_state())

    # -- state in and out (chm.persistence holds the container) -------------------------------
    def _to_state(self):
        """(JSON-able header, {name: array}) of a fitted model."""
        params = self.get_params(deep=False)
        params["feature_cache"] = None  # a cache folder is local to the machine that trained
        header = {"params": jsonable(params), "bank": self.bank_.to_dict(), "n_classes": int(self.n_classes_),
                  "n_channels": int(self.n_channels_), "classifiers": []}
        arrays = {}
        if self.n_classes_ == 2:
            header["threshold"] = float(self.threshold_)
        else:
            arrays["class_weights"] = self.class_weights_
        for (s, l), clf in self.classifiers_.items():
            meta, arrs = clf.to_state()
            if (s, l) in self.projections_:
                arrs = {**arrs, **self.projections_[(s, l)].to_arrays()}
            header["classifiers"].append(jsonable({"stage": s, "level": l, **meta}))
            arrays.update((f"s{s}_l{l}_{name}", a) for name, a in arrs.items())
        return header, arrays

    @classmethod
    def _from_state(cls, header, arrays):
        """The model of a file's header and arrays (format versions 1 and 2)."""
        params = _upgrade_params(header["params"])
        for key in ("features", "tv_levels"):
            if params.get(key) is not None:
                params[key] = tuple(params[key])
        model = cls(**params)
        model.bank_ = FilterBank.from_dict(header["bank"])
        model.n_classes_ = int(header["n_classes"])
        model.classes_ = np.arange(model.n_classes_)
        model.n_channels_ = int(header.get("n_channels", 1))  # version 1: gray only
        model.alpha_ = model._recipe(model.n_classes_)["alpha"]
        if model.n_classes_ == 2:
            model.threshold_ = float(header.get("threshold", 0.5))  # files written before it was learned used 0.5
        else:
            model.class_weights_ = np.asarray(arrays["class_weights"], dtype=np.float64)
        model.classifiers_, model.projections_ = {}, {}
        for c in header["classifiers"]:
            s, l = c["stage"], c["level"]
            state = {k.split("_", 2)[2]: v for k, v in arrays.items() if k.startswith(f"s{s}_l{l}_")}
            model.classifiers_[(s, l)] = from_state(c, state)
            if "ctx_mean" in state:
                model.projections_[(s, l)] = ContextProjection.from_arrays(state)
        if sorted(model.classifiers_) != sorted(model._schedule()):
            raise ValueError("its classifiers do not match levels/stages")
        return model


def _upgrade_params(params):
    """A file's parameters as the constructor takes them (files of earlier versions in today's names)."""
    params = dict(params)
    if isinstance(params.get("semi_supervised"), dict):  # a custom SpatialLoss, saved by to_dict()
        params["semi_supervised"] = SpatialLoss.from_dict(params["semi_supervised"])
    params.pop("tv_centres", None)  # spatial-loss centres are drawn afresh every epoch now
    loss = params.pop("spatial_loss", None)
    if loss is not None and (params.get("alpha") or 0) > 0 and params.get("semi_supervised") is None:
        params["semi_supervised"] = SpatialLoss.from_dict(loss) if isinstance(loss, dict) else loss
    return params
