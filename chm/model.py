"""The Contextual Hierarchical Model: a cascade of pixel classifiers over an image pyramid.

Training order (chm-reference 1.1): stage 1 levels 0..L (bottom-up), then every later stage
levels 0..L, the last stage level 0 only (the top-down fusion). Each classifier sees the
filter-bank features of its level's image plus 57 context features (a radius-7 stencil) per
context map (chm-reference 1.2):

* stage 1 or level > 0: the outputs of the same stage's lower levels, halved down to this level;
* stage >= 2, level 0: every level's output of the previous stage, pixel-replicated up to full size.

Contexts are the soft outputs of the trained classifiers on the training images themselves.

Two classes (gray or colour images): LDNNs, one P(foreground) map per classifier. K > 2 classes:
one softmax network per classifier (``chm.classifiers.softmax``) whose K-class map is compressed to
a few principal components before it serves as a context
(``chm.cascade.contexts.ContextProjection``), so cost grows gently with K. Colour images add the
colour filter family; the others see the luminance.

:class:`CHM` is the estimator: it validates its parameters and the data, turns them into a
:class:`chm.cascade.spec.CascadeSpec` and a :class:`chm.semi.recipes.Recipe`, and keeps the
:class:`chm.cascade.spec.FittedCascade` that :func:`chm.cascade.training.train` returns.

Memory: features are computed per image (joblib over images) and kept, as float16, only at the
labelled rows that SGD needs. A spatial loss draws fresh centres from every pixel for every
epoch; all of them are drawn before the fit and their neighbourhoods' features read in one pass
over the images into a temporary file (``chm.cascade.sampling.CentrePool``), so no image's whole
bank is kept. Inference streams image by image, and a large image tile by tile
(``chm.cascade.tiling``).
"""

import warnings

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from .base import Segmenter
from .cascade.cache import FeatureCache
from .cascade.pyramid import check_pooled_classes, level_shape
from .cascade.spec import CLASS_PRIORS, FUSION_CONTEXTS, LABEL_POOLINGS, CascadeSpec, FittedCascade
from .cascade.tiling import auto_tile_size, check_tile_size, predict_tiled
from .cascade.training import FewLabelsWarning, FlatOutputWarning, train
from .features import COLOUR_FAMILIES, FeatureChannels, FilterBank, check_channels
from .io.images import check_image_list, check_labels
from .io.persistence import FORMAT, jsonable
from .semi.losses import SpatialLoss
from .semi.recipes import SEMI_SUPERVISED, SEMI_SUPERVISED_MULTICLASS, Recipe, resolve
from .utils._progress import bar
from .utils._validation import check_random_state

__all__ = ["CHM", "CLASS_PRIORS", "CONTEXT_CHANNELS", "DEFAULT_FEATURES", "FUSION_CONTEXTS", "FewLabelsWarning", "FlatOutputWarning", "LABEL_POOLINGS",
           "SEMI_SUPERVISED", "SEMI_SUPERVISED_MULTICLASS"]

#: The default filter families: the original 476-feature bank without Gabor and intensity (215
#: features). Gabor bought the least accuracy per second in the benchmarks' ablation (+0.42 /
#: -0.06 pp when left out, 35-42 % less fit + predict); the 81 raw intensity stencils cost accuracy:
#: leaving them out lowered the held-out error on training horses by 0.84 +- 0.36 pp over five label
#: draws, left held-out Stanford equal, and saves ~14 % of the time (docs/results.md).
#: ``chm.features.FAMILIES`` is the full original bank.
DEFAULT_FEATURES = ("haar", "hog", "edge", "sift")

#: Context channels a K-class map is compressed to, at most (``CHM(context_channels=...)``).
CONTEXT_CHANNELS = 8

_MIN_COARSE_SIDE = 4  # the coarsest level must keep this many pixels per side


def _fitted(name, doc):
    """A learned attribute that lives in the model's :class:`FittedCascade`."""
    def get(self):
        if "cascade_" not in self.__dict__:
            raise AttributeError(f"{name}_ is set by fit")
        return getattr(self.cascade_, name)

    def set(self, value):
        setattr(self.cascade_, name, value)

    return property(get, set, doc=doc)


class CHM(Segmenter):
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
        LDNN sizes (:data:`chm.classifiers.NETWORKS`): "small" = 6 x 6 at every level (sparse labels:
        as accurate, 2.5-3x faster); "original" = the original CHM's 10 x 20 at full resolution and
        24 x 24 at coarse levels (better with dense labels).
    n_classes : int or None
        Number of classes K; None = the largest label + 1 (at least 2). Give it when a class may
        be missing from the labels (e.g. a rare class in a sparse draw).
    semi_supervised : None, "tv", "contrast", "self-training", "superpixels", "auto", ... or SpatialLoss
        How the unlabelled pixels take part. None: not at all (supervised), unless ``alpha > 0``,
        which selects "tv" as in earlier versions. "tv": the paper's total-variation loss
        (eq. 8-15). "contrast": a contrast-sensitive pairwise loss (chm.semi.losses.ContrastSensitive):
        like TV, but a boundary costs little where the image has an edge. "self-training": fit,
        decode every training image with a contrast-sensitive Potts MRF (its labelled pixels
        fixed), refit on these proposals
        (:mod:`chm.semi.selftraining`); "tv+self-training" / "contrast+self-training": the same,
        starting from a model trained with that loss. "superpixels": every superpixel whose
        labelled pixels share one class gives it to all its pixels (:mod:`chm.semi.superpixels`), and
        the cascade is fitted on these labels; "superpixels+self-training": then self-trained.
        "auto": the recommended method for sparse labels (:data:`SEMI_SUPERVISED`). K > 2 classes
        take "tv", "contrast", "superpixels", "self-training" (alpha-expansion proposals) and
        "auto" (= "self-training"; :data:`SEMI_SUPERVISED_MULTICLASS`), fit raises for the others. A SpatialLoss: that loss,
        with an explicit ``alpha``. A :class:`chm.semi.recipes.Recipe`: exactly that recipe (``alpha``, ``beta``,
        ``rounds`` and ``superpixel_scale`` must then be None).
    alpha : float or None
        Weight of the unsupervised spatial loss (paper: E_S + alpha E_U), as the ratio of the mean
        spatial loss per pixel to the mean supervised loss per labelled pixel. None: the
        method's recommended weight (:data:`SEMI_SUPERVISED`, :data:`SEMI_SUPERVISED_MULTICLASS`
        for K > 2), 0 without a method. K classes: the loss of the K-channel probability image
        (the sum over the class channels, paper eq. 8). The paper weighs sums instead of means:
        ``alpha = chm.semi.losses.paper_alpha_factor(labels) * alpha_paper`` (about 3,050
        alpha_paper for Weizmann horses at N = 10).
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
        Filter families (see ``chm.features.FAMILIES``); the default, :data:`DEFAULT_FEATURES`, is the
        original bank without Gabor and intensity, chosen on speed/accuracy evidence; ``tuple(chm.features.FAMILIES)``
        is the original CHM bank. These see gray images, or the luminance of colour ones; colour
        images add the ``colour`` family (``chm.features.COLOUR_FAMILIES``) unless it is listed.
        ``DEFAULT_FEATURES + ("position",)`` adds each pixel's place in its image, which scene
        photographs reward (sky at the top: 0.8 and 1.7 points on held-out Stanford Background and
        SIFT Flow training images) and horses do not (docs/results.md).
    context_radius : int
        Stencil radius of the context features (7 -> 57 values per map and channel).
    context_channels : int
        K-class models: each context map is compressed to min(K - 1, context_channels) principal
        components of the classifier's outputs (:class:`chm.cascade.contexts.ContextProjection`).
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
    label_pooling : {None, "max", "mean"}
        Labels of the coarse levels. "max": the original's max-pooling (a coarse pixel is
        foreground if any labelled fine pixel in its block is); for K > 2 classes, the block's
        majority class. "mean": each coarse pixel regresses the foreground fraction (the class
        fractions) of its block's labelled pixels (soft targets), so the coarse maps say how much
        of a block is foreground rather than whether any of it is. None: "max" for the fit on the
        given labels, "mean" for the self-training refits on dense proposals; a value given is
        used for every fit.
    max_samples : int, sequence of int or None, or None
        Cap on labelled training pixels per class and level (dense labels), shared evenly by the
        images; a sequence gives one cap per level 0..levels (None in it = no cap at that level).
        None = no cap.
    class_prior : {"labels", "em"}
        The class balance the decision rule (and self-training's guard) decides for. "labels":
        the labelled pixels' own, right when they were drawn uniformly over the pixels (the
        paper's protocol). "em": estimated from the fitted model's outputs on the training
        images by EM (:func:`chm.thresholds.em_prior`, Saerens et al. 2002), for clicks placed
        by a user, whose balance follows the clicks (e.g. as many per class) rather than the
        images. The prior in effect is ``cascade_.prior``.
    feature_cache : str, Path, chm.cascade.cache.FeatureCache or None
        Folder of a :class:`chm.cascade.cache.FeatureCache` (or one, e.g. with a size budget): filter-bank
        features of every (image, level) are computed once and reused by later fits and
        predictions (float16 on disk).
    tile_size : int or None
        Prediction: images are predicted in tiles of this side (a multiple of ``2**levels``), each
        padded with the cascade's receptive field (:func:`chm.cascade.tiling.receptive_radius`),
        so that memory grows with the tile, not the image, and the maps equal the whole image's
        up to float rounding. None: tiles only for images whose filter bank would exceed
        :data:`chm.cascade.tiling.TILE_BYTES` (1 GiB), sized to it. Tiles do not go through
        ``feature_cache``.
    n_jobs : int or None
        Parallel workers over images (joblib). None defers to an enclosing
        ``joblib.parallel_config`` (e.g. ``backend="dask"``), else runs sequentially.
    progress : bool, None or callable
        None: progress bars when stderr is a terminal, else a few plain lines per stage (a log
        file stays readable); True: bars always; False: silent; a callable ``fn(desc, done,
        total)``: called as each stage starts and advances (a GUI's progress bar); an exception
        it raises stops the fit, leaving the model as it was (a Cancel button). Not saved.
    random_state : int, Generator or None
        Seeds every random choice; the same seed gives the same model for any ``n_jobs``.

    Attributes
    ----------
    cascade_ : chm.cascade.spec.FittedCascade
        The trained cascade (its spec, bank, classifiers and decision rule).
    n_classes_ : int
    classes_ : ndarray
        0 .. K-1.
    n_channels_ : int
        1 (gray model) or 3 (colour model).
    feature_channels_ : tuple of str
        The names of the user's feature channels the model reads (``fit(..., channels=...)``),
        in order; empty without. :meth:`predict_proba` then needs the same channels.
    alpha_ : float
        The spatial-loss weight in effect.
    bank_, classifiers_, projections_, threshold_, class_weights_, timings_, rounds_
        The cascade's filter bank, (stage, level) -> classifier, K-class context projections,
        decision rule (``threshold_`` for two classes, ``class_weights_`` for K), seconds per
        stage, and the self-training rounds (see :class:`chm.cascade.spec.FittedCascade`).
    spatial_share_ : dict or None
        (stage, level) -> the spatial loss's share of the gradient norm in the last epoch of each
        classifier trained with one (:attr:`chm.classifiers.LDNN.spatial_share_`): 0 when the
        loss does not move the weights, near 1 when it alone does; None without a spatial loss
        (and for a loaded model: not kept in model files).
    """

    _FORMAT = FORMAT
    _FITTED = "cascade_"

    def __init__(self, levels=3, stages=2, classifier="ldnn", network="small", n_classes=None, semi_supervised=None,
                 alpha=None, tv_levels=None, spatial_rate=4.0, weight_decay=0.0, beta=None, rounds=None,
                 superpixel_scale=None, features=DEFAULT_FEATURES, context_radius=7,
                 context_channels=CONTEXT_CHANNELS,
                 fusion_context="original", epochs=None, classifier_params=None, label_pooling=None,
                 max_samples=None, class_prior="labels", feature_cache=None, tile_size=None,
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
        self.class_prior = class_prior
        self.feature_cache = feature_cache
        self.tile_size = tile_size
        self.n_jobs = n_jobs
        self.progress = progress
        self.random_state = random_state

    bank_ = _fitted("bank", "chm.features.FilterBank: the filter bank the model reads.")
    classifiers_ = _fitted("classifiers", "dict: (stage, level) -> trained classifier.")
    projections_ = _fitted("projections", "dict: (stage, level) -> ContextProjection (K classes).")
    threshold_ = _fitted("threshold", "float: the decision threshold (two classes).")
    class_weights_ = _fitted("class_weights", "ndarray: the decision rule's class weights (K classes).")
    timings_ = _fitted("timings", "dict: seconds per stage of the fit.")
    rounds_ = _fitted("rounds", "list of dict: the self-training rounds.")
    spatial_share_ = _fitted("spatial_share", "dict or None: (stage, level) -> the spatial loss's share of the "
                                              "gradient in the classifier's last epoch.")

    # ------------------------------------------------------------------------------------
    def _spec(self, n_classes=2, n_channels=1):
        """The :class:`CascadeSpec` of these parameters for such data (raises on a bad parameter)."""
        a = self.alpha  # the spec checks the other numbers
        if a is not None and not (isinstance(a, (int, float, np.number)) and np.isfinite(a) and a >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {a!r}")
        if self.n_classes is not None and (not isinstance(self.n_classes, (int, np.integer)) or self.n_classes < 2):
            raise ValueError(f"n_classes must be None or an integer >= 2, got {self.n_classes!r}")
        return CascadeSpec(levels=self.levels, stages=self.stages, n_classes=n_classes, n_channels=n_channels,
                           classifier=self.classifier, network=self.network,
                           classifier_params=self.classifier_params, epochs=self.epochs,
                           spatial_rate=self.spatial_rate, weight_decay=self.weight_decay,
                           tv_levels=(0,) if self.tv_levels is None else tuple(self.tv_levels),
                           context_radius=self.context_radius, context_channels=self.context_channels,
                           fusion_context=self.fusion_context, label_pooling=self.label_pooling,
                           max_samples=self.max_samples, class_prior=self.class_prior)

    def _recipe(self, n_classes=2):
        """The :class:`Recipe` of ``semi_supervised`` and its weights for an ``n_classes`` problem."""
        return resolve(self.semi_supervised, n_classes, self.alpha, self.beta, self.rounds, self.superpixel_scale)

    def _cache(self):
        if self.feature_cache is None or isinstance(self.feature_cache, FeatureCache):
            return self.feature_cache
        return FeatureCache(self.feature_cache)

    def fit(self, images, labels, channels=None, channel_names=None):
        """Train the cascade.

        Parameters
        ----------
        images : list of arrays, (H, W) gray or (H, W, 3) colour
            uint8, uint16 or float in [0, 1]; any sizes. One colour image makes a colour model
            (gray images are then used as colour images with equal channels). A stack (Z, H, W[, 3])
            is the list of its slices, ``list(stack)`` (:mod:`chm.io.stacks`: files, and the
            slices that hold labels).
        labels : list of int arrays, (H, W)
            -1 = unlabelled, 0 .. K-1 = class (two classes: 0 = background, 1 = foreground).
        channels : list of arrays, (H, W) or (H, W, E), optional
            Your own per-pixel feature images (other microscope channels, another model's
            output), one array per image, of its size, with the same E channels for every
            image; real numbers of any scale, no NaN. They join the filter bank as E extra
            columns at every level (halved with the image, standardised by their training mean
            and standard deviation, then normalised as the other features), and the model asks
            for them in :meth:`predict_proba` (:mod:`chm.features.channels`).
        channel_names : sequence of str, optional
            One distinct name per channel, kept with the model (``feature_channels_``) and used
            in its messages; default ``"channel 0"``, ``"channel 1"``, ...

        Returns
        -------
        self
        """
        self._spec()  # the parameters' errors before any about the data
        images = check_image_list(images)
        labels = list(labels) if not isinstance(labels, np.ndarray) or labels.ndim > 2 else labels
        try:
            top = max((int(np.max(lab)) for lab in labels if np.size(lab)), default=1)
        except (TypeError, ValueError):
            top = 1  # check_labels gives the message
        n_classes = self.n_classes or max(2, top + 1)
        labels = check_labels(labels, images, n_classes)
        if self.n_classes is None:
            seen = np.unique(np.concatenate([np.unique(lab[lab >= 0]) for lab in labels]))
            if len(seen) < n_classes:
                warnings.warn(f"n_classes is None, so the model has {n_classes} classes (the largest label + 1), "
                              f"but the labels hold only classes {seen.tolist()}: classes "
                              f"{sorted(set(range(n_classes)) - set(seen.tolist()))} get no labelled pixel, and a "
                              "class above the largest label is not modelled at all. Pass n_classes=K for a "
                              "K-class task.", UserWarning, stacklevel=2)
        recipe = self._recipe(n_classes)
        for i, im in enumerate(images):
            side = min(level_shape(im.shape[:2], self.levels))
            if side < _MIN_COARSE_SIDE:
                raise ValueError(f"images[{i}] of shape {im.shape} is too small for levels={self.levels}: "
                                 f"its coarsest level would be {side} px wide (need >= {_MIN_COARSE_SIDE}); "
                                 "use fewer levels")
        check_pooled_classes(labels, self.levels, n_classes)
        channels = check_channels(channels, images)
        if channels is None and channel_names is not None:
            raise ValueError("channel_names names feature channels, but channels is None: pass the channels too")
        extra = None if channels is None else FeatureChannels.fit(channels, channel_names)
        rng = check_random_state(self.random_state)
        n_channels = 3 if any(im.ndim == 3 for im in images) else 1
        families = tuple(self.features)
        if n_channels == 3 and not any(f in COLOUR_FAMILIES for f in families):
            families += tuple(COLOUR_FAMILIES)
        elif n_channels == 1 and any(f in COLOUR_FAMILIES for f in families):
            raise ValueError(f"features {families} include colour families but every image is gray")
        spec = self._spec(n_classes, n_channels)
        par = Parallel(n_jobs=self.n_jobs, return_as="generator")
        cascade = train(spec, recipe, FilterBank(families, channels=extra), images, labels, rng, par, self._cache(),
                        self.progress, channels)
        self._set_fitted(cascade, recipe)
        return self

    def _set_fitted(self, cascade, recipe):
        self.cascade_ = cascade
        self.n_classes_ = cascade.spec.n_classes
        self.classes_ = np.arange(self.n_classes_)
        self.n_channels_ = cascade.spec.n_channels
        self.alpha_ = recipe.alpha  # the spatial-loss weight in effect

    @property
    def feature_channels_(self):
        """tuple of str: the names of the feature channels the model reads, in order (empty: none)."""
        channels = self.bank_.channels
        return () if channels is None else channels.names

    # ------------------------------------------------------------------------------------
    def predict_proba(self, images, stage=None, channels=None):
        """Class probabilities per pixel.

        Parameters
        ----------
        images : list of arrays, (H, W) or (H, W, 3)
            As in :meth:`fit`. A gray model reads colour images as their luminance; a colour
            model reads gray images as colour images with equal channels. A stack's slices,
            ``list(stack)``, are predicted in parallel (``n_jobs``) like any images.
        stage : int, optional
            1 .. stages: that stage's full-resolution output instead of the final one (the last
            stage's), to see what each stage adds.
        channels : list of arrays, (H, W) or (H, W, E), optional
            Required when the model was fitted with feature channels (``feature_channels_``):
            each image's, the same E channels in the same order as in :meth:`fit`. A model
            fitted without takes None.

        Returns
        -------
        list of float32 arrays
            Two classes: (H, W) P(foreground) (class 1). K > 2 classes: (H, W, K) probabilities
            that sum to 1 over the last axis. Large images are predicted in tiles
            (``tile_size``), with the same maps up to float rounding.
        """
        self.check_is_fitted()
        self.cascade_.schedule(stage)  # checks stage
        check_tile_size(self.tile_size, self.cascade_.spec.levels)
        images = check_image_list(images)
        for i, im in enumerate(images):
            if min(level_shape(im.shape[:2], self.levels)) < 1:
                raise ValueError(f"images[{i}] of shape {im.shape} is too small for levels={self.levels}")
        expected = self.bank_.channels
        channels = check_channels(channels, images, expected=0 if expected is None else expected)
        channels = [None] * len(images) if channels is None else channels
        cache = self._cache()
        if len(images) == 1:
            # One image (an interactive prediction): the cores share its filter bank as threads
            # rather than wait on a single worker process.
            return [_predict_one(self.cascade_, images[0], stage, cache, self.tile_size,
                                 effective_n_jobs(self.n_jobs), channels[0])]
        par = Parallel(n_jobs=self.n_jobs, return_as="generator")
        jobs = (delayed(_predict_one)(self.cascade_, im, stage, cache, self.tile_size, 1, ch)
                for im, ch in zip(images, channels))
        return list(bar(par(jobs), total=len(images), desc="predict", enabled=self.progress))

    def predict(self, images, threshold=None, stage=None, channels=None):
        """Label maps: uint8 0/1 masks (two classes) or class indices 0 .. K-1 (uint8, int16 above 256).

        ``decide(predict_proba(images, stage, channels), threshold)``.
        """
        return super().predict(images, threshold, stage=stage, channels=channels)

    def decide(self, probas, threshold=None):
        """Label maps from :meth:`predict_proba`'s maps, by the model's decision rule.

        Two classes: ``proba > threshold``; ``threshold=None`` uses ``threshold_`` (learned in
        :meth:`fit`): 0.5 unless ``max_samples`` changed the class balance of the full-resolution
        training pixels, in which case it undoes that change (see
        :func:`chm.thresholds.decision_threshold`). K classes: the most probable class after the
        same correction (``class_weights_``, :func:`chm.thresholds.class_weights`); ``threshold``
        must be None.
        """
        self.check_is_fitted()
        return self.cascade_.decide(probas, threshold)

    # -- state in and out (chm.io.persistence holds the container) ----------------------------
    def _to_state(self):
        """(JSON-able header, {name: array}) of a fitted model."""
        params = self.get_params(deep=False)
        params["feature_cache"] = None  # a cache folder is local to the machine that trained
        if callable(params["progress"]):
            params["progress"] = None  # a callback belongs to the program that trained
        header, arrays = self.cascade_.to_state()
        return jsonable({"params": params, **header}), arrays

    @classmethod
    def _from_state(cls, header, arrays):
        """The model of a file's header and arrays (format versions 1 and 2)."""
        params = _upgrade_params(header["params"])
        for key in ("features", "tv_levels"):
            if params.get(key) is not None:
                params[key] = tuple(params[key])
        model = cls(**params)
        n_classes = int(header["n_classes"])
        spec = model._spec(n_classes, int(header.get("n_channels", 1)))  # version 1: gray only
        model._set_fitted(FittedCascade.from_state(spec, header, arrays), model._recipe(n_classes))
        return model


def _predict_one(cascade, image, stage, cache, tile_size=None, n_threads=1, channels=None):
    """The map of one image (a top-level function, so joblib can ship it to any backend): whole,
    or in tiles of ``tile_size`` (None: :func:`chm.cascade.tiling.auto_tile_size`'s, if any).
    ``channels``: its feature channels, validated, or None."""
    tile = auto_tile_size(cascade, image.shape, stage) if tile_size is None else tile_size
    if tile is None:
        return cascade.predict_image(cascade.spec.prepare(image, channels), stage, cache, n_threads)
    return predict_tiled(cascade, image, tile, stage, n_threads, channels)


def _upgrade_params(params):
    """A file's parameters as the constructor takes them (files of earlier versions in today's names)."""
    params = dict(params)
    semi = params.get("semi_supervised")
    if isinstance(semi, dict):  # a custom SpatialLoss or Recipe, saved by to_dict()
        params["semi_supervised"] = Recipe.from_dict(semi) if "recipe" in semi else SpatialLoss.from_dict(semi)
    params.pop("tv_centres", None)  # spatial-loss centres are drawn afresh every epoch now
    loss = params.pop("spatial_loss", None)
    if loss is not None and (params.get("alpha") or 0) > 0 and params.get("semi_supervised") is None:
        params["semi_supervised"] = SpatialLoss.from_dict(loss) if isinstance(loss, dict) else loss
    return params
