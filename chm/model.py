"""The Contextual Hierarchical Model: a cascade of pixel classifiers over an image pyramid.

Training order (chm-reference 1.1): stage 1 levels 0..L (bottom-up), then every later stage
levels 0..L, the last stage level 0 only (the top-down fusion). Each classifier sees the
filter-bank features of its level's image plus 57 context features (a radius-7 stencil) per
context map (chm-reference 1.2):

* stage 1 or level > 0: the outputs of the same stage's lower levels, halved down to this level;
* stage >= 2, level 0: every level's output of the previous stage, pixel-replicated up to full size.

Contexts are the soft outputs of the trained classifiers on the training images themselves.

Memory: features are computed per image (joblib over images) and kept, as float16, only at the
labelled rows that SGD needs. A spatial loss draws fresh centres from every pixel for every
epoch (``chm.sampling``), so its classifiers read the filter bank of whole images from a feature
cache on disk (a temporary one when ``feature_cache`` is None). Inference streams image by image.
"""

import tempfile

import time
import warnings

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from features import FilterBank, stencil, stencil_offsets

from . import pyramid
from ._progress import bar
from .base import Estimator
from .cache import FeatureCache, bank_features
from ._validation import check_image_list, check_labels, check_pooled_classes, check_random_state
from .classifiers import NETWORKS, make_classifier, shrink_to_labels
from .losses import SpatialLoss, get_spatial_loss
from .sampling import ImageCentres, stencil_rows
from .selftraining import foreground_prior, proposals

__all__ = ["CHM", "DEFAULT_FEATURES", "FUSION_CONTEXTS", "FewLabelsWarning", "LABEL_POOLINGS", "SEMI_SUPERVISED"]

#: The default filter families: the original 476-feature bank without Gabor (296 features). In
#: benchmarks/run.py's ablation (N = 10, 164 images) Gabor bought the least accuracy per second:
#: leaving it out changed the test error by +0.42 pp (original LDNN sizes) and -0.06 pp (6 x 6),
#: inside the draw-to-draw spread, and saved 35-42 % of fit + predict time. ``features.FAMILIES``
#: is the full original bank.
DEFAULT_FEATURES = ("haar", "hog", "edge", "sift", "intensity")

#: Rules for the labels of the coarse levels (``CHM(label_pooling=...)``).
LABEL_POOLINGS = ("max", "mean")

#: How the fusion classifiers sample the upsampled coarse maps (``CHM(fusion_context=...)``).
FUSION_CONTEXTS = ("original", "scaled")

#: Ways of learning from the unlabelled pixels (``CHM(semi_supervised=...)``) and the weights each
#: gets when none is given (chosen on held-out training images; docs/results.md). "tv" and
#: "contrast" add a spatial loss with weight ``alpha``; "self-training" refits the cascade on
#: graph-cut proposals (:mod:`chm.selftraining`) with Potts weight ``beta``, ``rounds`` times;
#: "tv+self-training" and "contrast+self-training" start the self-training from a model trained
#: with that loss; "auto" is the recommended one of these.
SEMI_SUPERVISED = {
    "tv": {"loss": "tv", "alpha": 0.3},
    "contrast": {"loss": "contrast", "alpha": 0.1},
    "self-training": {"beta": 16.0, "rounds": 1},
    "tv+self-training": {"loss": "tv", "alpha": 0.3, "beta": 16.0, "rounds": 1},
    "contrast+self-training": {"loss": "contrast", "alpha": 0.1, "beta": 16.0, "rounds": 1},
    "auto": {"beta": 16.0, "rounds": 1},
}

#: Labelled pixels per class and level kept from the proposals of a self-training round when
#: ``max_samples`` is None (the proposals label every pixel).
PROPOSAL_SAMPLES = 50_000

#: Self-training keeps the proposals' foreground fraction within this relative distance of the
#: sparse labels' estimate (the guard against collapse of :mod:`chm.selftraining`).
PRIOR_TOLERANCE = 0.25

_MIN_COARSE_SIDE = 4  # the coarsest level must keep this many pixels per side


class FewLabelsWarning(UserWarning):
    """:meth:`CHM.fit` made some classifiers smaller to fit the few labelled pixels it was given."""


class CHM(Estimator):
    """Contextual Hierarchical Model trained from sparse pixel labels, optionally with a TV loss.

    Parameters
    ----------
    levels : int
        Levels above full resolution (level l works on the image halved l times).
    stages : int
        Cascade stages; the last one trains the full-resolution fusion classifier only.
    classifier : {"ldnn", "logistic"}
    network : {"small", "original"}
        LDNN sizes (``chm.classifiers.NETWORKS``): "small" = 6 x 6 at every level (sparse labels:
        as accurate, 2.5-3x faster); "original" = the original CHM's 10 x 20 at full resolution and
        24 x 24 at coarse levels (better with dense labels).
    semi_supervised : None, "tv", "contrast", "self-training", "auto" or chm.losses.SpatialLoss
        How the unlabelled pixels take part. None: not at all (supervised), unless ``alpha > 0``,
        which selects "tv" as in earlier versions. "tv": the paper's total-variation loss
        (eq. 8-15). "contrast": a contrast-sensitive pairwise loss (chm.losses.ContrastSensitive):
        like TV, but a boundary costs little where the image has an edge. "self-training": fit,
        decode every training image with a contrast-sensitive Potts MRF (its labelled pixels
        fixed), refit on these proposals
        (:mod:`chm.selftraining`). "auto": the recommended method for sparse labels
        (:data:`SEMI_SUPERVISED`). A SpatialLoss: that loss, with an explicit ``alpha``.
    alpha : float or None
        Weight of the unsupervised spatial loss (paper: E_S + alpha E_U), as the ratio of the mean
        spatial loss per pixel to the mean supervised loss per labelled pixel. None: the
        method's recommended weight (:data:`SEMI_SUPERVISED`), 0 without a method.
    beta : float or None
        Self-training: Potts weight of the MRF that makes the proposals (None: recommended).
    rounds : int or None
        Self-training: proposal-and-refit rounds (None: recommended).
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
        original bank without Gabor, chosen on speed/accuracy evidence; ``tuple(features.FAMILIES)``
        is the original CHM bank.
    context_radius : int
        Stencil radius of the context features (7 -> 57 values per map).
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
        foreground if any labelled fine pixel in its block is). "mean": each coarse pixel
        regresses the foreground fraction of its block's labelled pixels (soft targets), so the
        coarse maps say how much of a block is foreground rather than whether any of it is.
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

    def __init__(self, levels=3, stages=2, classifier="ldnn", network="small", semi_supervised=None, alpha=None,
                 tv_levels=None, spatial_rate=4.0, weight_decay=0.0, beta=None, rounds=None,
                 features=DEFAULT_FEATURES,
                 context_radius=7, fusion_context="original", epochs=None, classifier_params=None,
                 label_pooling="max", max_samples=None, feature_cache=None,
                 n_jobs=None, progress=None, random_state=None):
        self.levels = levels
        self.stages = stages
        self.classifier = classifier
        self.network = network
        self.semi_supervised = semi_supervised
        self.alpha = alpha
        self.tv_levels = tv_levels
        self.spatial_rate = spatial_rate
        self.weight_decay = weight_decay
        self.beta = beta
        self.rounds = rounds
        self.features = features
        self.context_radius = context_radius
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
        for name, lo in (("levels", 0), ("stages", 1), ("context_radius", 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
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

    def _recipe(self):
        """What ``fit`` does with the unlabelled pixels: a dict with the spatial loss (or None), its
        ``alpha``, and for self-training the Potts ``beta`` and the number of ``rounds`` (0 = none)."""
        method = self.semi_supervised
        out = {"loss": None, "alpha": 0.0, "beta": None, "rounds": 0}
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
        rec = dict(SEMI_SUPERVISED[method])
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
        return out

    def _level_caps(self, n_images):
        """Per level: labelled pixels kept per class and image, or None (no cap)."""
        caps = self.max_samples
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
        images : list of 2-D arrays
            Gray images, uint8 or float in [0, 1]; any sizes.
        labels : list of int arrays
            Same shapes; -1 = unlabelled, 0 = background, 1 = foreground.

        Returns
        -------
        self
        """
        tv_levels = self._validate_params()
        recipe = self._recipe()
        loss, alpha = recipe["loss"], recipe["alpha"]
        images = check_image_list(images)
        labels = check_labels(labels, images)
        for i, im in enumerate(images):
            side = min(pyramid.level_shape(im.shape, self.levels))
            if side < _MIN_COARSE_SIDE:
                raise ValueError(f"images[{i}] of shape {im.shape} is too small for levels={self.levels}: "
                                 f"its coarsest level would be {side} px wide (need >= {_MIN_COARSE_SIDE}); "
                                 "use fewer levels")
        check_pooled_classes(labels, self.levels)
        rng = check_random_state(self.random_state)
        self.bank_ = FilterBank(tuple(self.features))
        self.n_classes_ = 2
        self.timings_ = {}
        seeds = rng.integers(0, 2**63 - 1, size=len(images))
        caps = self._level_caps(len(images))
        par = Parallel(n_jobs=self.n_jobs, return_as="generator")

        self.rounds_ = []
        with tempfile.TemporaryDirectory(prefix="chm-features-") as tmp:
            # A spatial loss reads whole images' features at every epoch: keep them on disk for the
            # length of the fit. (Self-training alone recomputes them: a few seconds per pass.)
            cache = self._cache()
            if cache is None and loss is not None:
                cache = FeatureCache(tmp)
            self._fit_cascade(images, labels, seeds, caps, cache, loss, alpha, tv_levels, rng, par, self.label_pooling)
            if recipe["rounds"]:
                pi = foreground_prior(labels)
                bounds = (pi * (1 - PRIOR_TOLERANCE), min(0.999, pi * (1 + PRIOR_TOLERANCE)))
                caps = self._level_caps(len(images)) if self.max_samples is not None else \
                    [max(1, -(-PROPOSAL_SAMPLES // len(images)))] * (self.levels + 1)
                for r in range(recipe["rounds"]):
                    t0 = time.perf_counter()
                    jobs = (delayed(_predict_image)(im, self.bank_, self.classifiers_, self._schedule(), self.levels,
                                                    {sl: self._stencil(*sl) for sl in self._schedule()}, cache)
                            for im in images)
                    maps = list(bar(par(jobs), total=len(images), desc=f"round {r + 1} training maps",
                                    enabled=self.progress))
                    props, bias = proposals(maps, images, labels, recipe["beta"], self.threshold_, bounds)
                    fg = sum(int(p.sum()) for p in props) / sum(p.size for p in props)
                    seeds = rng.integers(0, 2**63 - 1, size=len(images))
                    # Proposals are dense labels: coarse levels regress their blocks' fractions, and a
                    # spatial loss has nothing left to fill in.
                    self._fit_cascade(images, props, seeds, caps, cache, None, 0.0, tv_levels, rng, par, "mean")
                    self.rounds_.append({"bias": bias, "foreground": fg, "seconds": time.perf_counter() - t0})
        return self

    def _fit_cascade(self, images, labels, seeds, caps, cache, loss, alpha, tv_levels, rng, par, pooling):
        # Pass A: filter-bank rows at every level, only where SGD will look.
        t0 = time.perf_counter()
        jobs = (delayed(_training_rows)(im, lab, self.levels, caps, self.bank_, sd, cache, pooling)
                for im, lab, sd in zip(images, labels, seeds))
        rows = list(bar(par(jobs), total=len(images), desc="features", enabled=self.progress))
        self.timings_["features"] = time.perf_counter() - t0

        maps = [dict() for _ in images]
        self.classifiers_ = {}
        few_labels = []  # classifiers made smaller to fit a handful of labelled pixels
        schedule = self._schedule()
        for s, l in schedule:
            t0 = time.perf_counter()
            X, y, soft = _assemble(rows, maps, s, l, self.levels, self._stencil(s, l))
            offset, scale = _normaliser(X, self.bank_)
            off32, scale32 = offset.astype(np.float32), scale.astype(np.float32)
            for a in range(0, len(X), 65536):  # in place and in chunks: X can be gigabytes
                X[a:a + 65536] = (X[a:a + 65536] - off32) / scale32
            clf, shrunk = shrink_to_labels(self._make_classifier(s, l, int(rng.integers(0, 2**63 - 1)),
                                                                 l in tv_levels), y)
            if shrunk:
                few_labels.append(f"stage {s} level {l}: {shrunk}")
            spatial = None
            if loss is not None and l in tv_levels:
                level_images = [pyramid.downsample_n(im, l) for im in images]
                spatial = ImageCentres([bank_features(im, self.bank_, cache) for im in level_images],
                                       [_contexts(m, s, l, self.levels, im.shape) for m, im in zip(maps, level_images)],
                                       self._stencil(s, l), offset, scale, level_images, loss)
            with bar(total=clf.epochs, desc=f"stage {s} level {l} SGD", enabled=self.progress) as pbar:
                clf.fit(X, y, spatial=spatial, spatial_loss=loss, soft_targets=soft,
                        alpha=alpha if spatial is not None else 0.0,
                        progress=lambda e, rms, sp: (pbar.update(1), pbar.set_postfix(rms=f"{rms:.3f}")))
            del X, y, soft, spatial  # before the next level's matrix is built
            clf.fold_affine(offset, scale)
            self.classifiers_[(s, l)] = clf
            t1 = time.perf_counter()
            if (s, l) != schedule[-1]:  # the final output is not a context for anything
                jobs = (delayed(_level_map)(im, l, self.bank_, _contexts(m, s, l, self.levels,
                                                                          pyramid.level_shape(im.shape, l)),
                                            clf, self._stencil(s, l), cache)
                        for im, m in zip(images, maps))
                for m, p in zip(maps, bar(par(jobs), total=len(images), desc=f"stage {s} level {l} contexts",
                                          enabled=self.progress)):
                    m[(s, l)] = p
            self.timings_[(s, l)] = {"sgd": t1 - t0, "contexts": time.perf_counter() - t1}
        self.threshold_ = _decision_threshold(labels, [r[0]["y"] for r in rows], clf.targets)
        if few_labels:
            warnings.warn("few labelled pixels: an LDNN has at most one group per labelled foreground pixel "
                          "and one node per background pixel of its level, so these were made smaller: "
                          + "; ".join(few_labels), FewLabelsWarning, stacklevel=3)

    def _cache(self):
        if self.feature_cache is None or isinstance(self.feature_cache, FeatureCache):
            return self.feature_cache
        return FeatureCache(self.feature_cache)

    def _stencil(self, s, l):
        """(radius, dilation per context map) of classifier (s, l)."""
        return _stencil_spec(self.fusion_context, self.context_radius, s, l, self.levels)

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
                               **overrides)

    # ------------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "classifiers_"):
            raise RuntimeError("this CHM is not fitted yet: call fit(images, labels) or chm.load(path)")

    def predict_proba(self, images, stage=None):
        """P(foreground) per pixel: a list of float32 (H, W) arrays.

        ``stage`` (1 .. stages) returns that stage's full-resolution output instead of the final
        one (the last stage's), to see what each stage adds.
        """
        self._check_fitted()
        schedule = self._schedule()
        if stage is not None:
            if stage not in range(1, self.stages + 1):
                raise ValueError(f"stage must be None or in 1..{self.stages}, got {stage!r}")
            schedule = schedule[:schedule.index((stage, 0)) + 1]
        images = check_image_list(images)
        for i, im in enumerate(images):
            if min(pyramid.level_shape(im.shape, self.levels)) < 1:
                raise ValueError(f"images[{i}] of shape {im.shape} is too small for levels={self.levels}")
        par = Parallel(n_jobs=self.n_jobs, return_as="generator")
        stencils = {sl: self._stencil(*sl) for sl in schedule}
        jobs = (delayed(_predict_image)(im, self.bank_, self.classifiers_, schedule, self.levels,
                                        stencils, self._cache()) for im in images)
        return list(bar(par(jobs), total=len(images), desc="predict", enabled=self.progress))

    def predict(self, images, threshold=None, stage=None):
        """Binary masks (uint8 0/1): ``predict_proba(images, stage) > threshold``.

        ``threshold=None`` uses ``threshold_`` (learned in :meth:`fit`): 0.5 unless ``max_samples``
        changed the class balance of the full-resolution training pixels, in which case it undoes
        that change (see :func:`_decision_threshold`).
        """
        self._check_fitted()
        t = self.threshold_ if threshold is None else threshold
        return [(p > t).astype(np.uint8) for p in self.predict_proba(images, stage)]

    def save(self, path):
        """Write the model to ``path`` (.npz + JSON; see :mod:`chm.persistence`)."""
        from .persistence import save_model

        self._check_fitted()
        save_model(self, path)


# ---------------------------------------------------------------------------------------------
# Per-image work (top-level functions so joblib can ship them to any backend).

def _decision_threshold(labels, sampled, targets):
    """Output threshold that undoes the class rebalancing of per-class sample caps.

    The full-resolution classifiers regress targets t0/t1 on the sampled rows, so their output
    estimates t0 + (t1 - t0) P_s(foreground | x) under the sampled class balance q. Bayes' rule
    with the labelled pixels' own balance pi scales the odds by (pi1 / pi0) / (q1 / q0); the
    decision P(foreground | x) > 1/2 is then output > t0 + (t1 - t0) r / (1 + r) with
    r = (q1 / q0) / (pi1 / pi0). Without caps q = pi, so the threshold is (t0 + t1) / 2 = 0.5.
    """
    pi = sum(np.bincount(lab[lab >= 0], minlength=2) for lab in labels).astype(np.float64)
    q = sum(np.bincount(y[y >= 0], minlength=2) for y in sampled).astype(np.float64)
    r = (q[1] * pi[0]) / (q[0] * pi[1])  # exactly 1.0 when q == pi
    t0, t1 = targets
    return float(t0 + (t1 - t0) * r / (1 + r))


def _n_contexts(s, l, levels):
    """How many context maps classifier (s, l) sees: every level of the previous stage for the
    top-down fusion (stage >= 2, level 0), else the same stage's lower levels."""
    return levels + 1 if s >= 2 and l == 0 else l


def _stencil_spec(fusion_context, radius, s, l, levels):
    """(radius, dilation per context map) of classifier (s, l): 2**j for the level-j map of a
    fusion classifier under ``fusion_context="scaled"``, else 1."""
    scaled = fusion_context == "scaled" and s >= 2 and l == 0
    return radius, [2 ** j if scaled else 1 for j in range(_n_contexts(s, l, levels))]


def _contexts(maps, s, l, levels, shape):
    """Context maps of classifier (s, l) at level-l size (chm-reference 1.2)."""
    if s >= 2 and l == 0:
        return [pyramid.upsample(maps[(s - 1, j)], j, shape) for j in range(_n_contexts(s, l, levels))]
    return [pyramid.downsample_n(maps[(s, j)], l - j) for j in range(_n_contexts(s, l, levels))]


def _training_rows(image, labels, levels, caps, bank, seed, cache=None, pooling="max"):
    """Per level: the labelled pixels SGD will use (after the per-class ``caps``), their
    filter-bank features (float16) and, for ``pooling="mean"`` above level 0, their foreground
    fractions (else None)."""
    rng = np.random.default_rng(seed)
    out = []
    img_l = image
    for l in range(levels + 1):
        if l:
            img_l = pyramid.downsample(img_l)
        lab = pyramid.maxpool_labels(labels, l).ravel()
        h, w = img_l.shape
        flat = np.flatnonzero(lab >= 0)
        if caps[l] is not None:
            keep = [rng.permutation(flat[lab[flat] == c])[:caps[l]] for c in np.unique(lab[flat])]
            flat = np.sort(np.concatenate(keep))
        feats = bank_features(img_l, bank, cache).reshape(h * w, -1)[flat].astype(np.float16)
        soft = None
        if pooling == "mean" and l > 0:
            soft = pyramid.pool_label_fractions(labels, l)[:, :, 1].ravel()[flat]
        out.append({"flat": flat, "y": lab[flat].astype(np.int8), "X": feats, "shape": (h, w), "soft": soft})
    return out


def _assemble(rows, maps, s, l, levels, stencil_spec):
    """Training matrix (float16) of classifier (s, l) over all images: X, y and soft targets
    (None when unused). ``stencil_spec`` is (radius, dilation per context)."""
    radius, dilations = stencil_spec
    n_rows = sum(len(r[l]["y"]) for r in rows)
    n_bank = rows[0][l]["X"].shape[1]
    n_ctx = len(stencil_offsets(radius)) * _n_contexts(s, l, levels)
    X = np.empty((n_rows, n_bank + n_ctx), dtype=np.float16)  # filled in place: no second copy
    ys, softs, n = [], [], 0
    for r, m in zip(rows, maps):
        r = r[l]
        k = len(r["y"])
        X[n:n + k, :n_bank] = r["X"]
        col = n_bank
        for c, d in zip(_contexts(m, s, l, levels, r["shape"]), dilations):
            block = stencil_rows(c, r["flat"], radius, d)
            X[n:n + k, col:col + block.shape[1]] = block
            col += block.shape[1]
        ys.append(r["y"])
        softs.append(r["soft"])
        n += k
    soft = None if softs[0] is None else np.concatenate(softs)
    return X, np.concatenate(ys), soft


def _normaliser(X, bank):
    """Robust per-feature scaling of the filter columns: x -> (x - offset) / scale.

    PyCHM's median-MAD rule maps the median to 0.5 and +-2.5 robust SD to 0 and 1. Features that
    are 0 on most pixels (clipped Gabor responses) have a near-zero MAD, so the scale is floored
    at 4 standard deviations; otherwise rare responses would be blown up 10^4-fold and dominate.
    Intensity and context columns are already in [0, 1] and stay as they are (chm-reference 2.8).
    """
    offset = np.zeros(X.shape[1])
    scale = np.ones(X.shape[1])
    cols = np.ones(X.shape[1], dtype=bool)
    cols[bank.n_features:] = False
    if "intensity" in bank.slices:
        cols[bank.slices["intensity"]] = False
    if cols.any():
        Xc = X[:: -(-len(X) // 200_000), cols].astype(np.float64)  # <= 200k rows estimate it well
        med = np.median(Xc, axis=0)
        s = np.maximum(np.median(np.abs(Xc - med), axis=0) * 1.4826 * 5, Xc.std(axis=0) * 4)
        s[s < 1e-8] = 1.0
        scale[cols] = s
        offset[cols] = med - 0.5 * s
    return offset, scale


def _evaluate(bank_feats, ctx, clf, stencil_spec):
    """Classifier output over one level image, from its filter-bank features and context maps;
    ``stencil_spec`` is (radius, dilation per context map)."""
    radius, dilations = stencil_spec
    h, w, f = bank_feats.shape
    n_ctx = len(stencil_offsets(radius))
    blocks = [bank_feats.reshape(h * w, f)]  # a view: the bank block is never copied
    if ctx:
        C = np.empty((h, w, n_ctx * len(ctx)), dtype=np.float32)
        for k, (c, d) in enumerate(zip(ctx, dilations)):
            stencil(c, radius, dilation=d, out=C[:, :, k * n_ctx:(k + 1) * n_ctx])
        blocks.append(C.reshape(h * w, -1))
    return clf.predict_proba(blocks).reshape(h, w)


def _level_map(image, l, bank, ctx, clf, stencil_spec, cache=None):
    """A training context map. Threaded BLAS rounds the classifier's GEMM differently from one
    thread (1 ulp in about a third of the pixels), and SGD amplifies that: one BLAS thread keeps
    the model the same for any ``n_jobs`` (joblib workers run one thread already)."""
    with threadpool_limits(1, user_api="blas"):
        return _evaluate(bank_features(pyramid.downsample_n(image, l), bank, cache), ctx, clf, stencil_spec)


def _cascade(image, bank, classifiers, schedule, levels, stencils, cache=None):
    """Run the classifiers of ``schedule`` on one image; the filter bank runs once per level.
    ``stencils`` maps each (stage, level) to its (radius, dilation per context map). Returns the
    map of every (stage, level) and the filter-bank features of every level used."""
    imgs = pyramid.pyramid(image, levels)
    bank_feats = {}
    maps = {}
    for s, l in schedule:
        if l not in bank_feats:
            bank_feats[l] = bank_features(imgs[l], bank, cache)
        ctx = _contexts(maps, s, l, levels, imgs[l].shape)
        maps[(s, l)] = _evaluate(bank_feats[l], ctx, classifiers[(s, l)], stencils[(s, l)])
    return maps, bank_feats


def _predict_image(image, bank, classifiers, schedule, levels, stencils, cache=None):
    """The last classifier's map of one image (see :func:`_cascade`)."""
    return _cascade(image, bank, classifiers, schedule, levels, stencils, cache)[0][schedule[-1]]
