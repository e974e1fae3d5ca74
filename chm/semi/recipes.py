"""The named ways of learning from the unlabelled pixels, and the :class:`Recipe` each resolves to.

``CHM(semi_supervised=...)`` takes a name from :data:`SEMI_SUPERVISED` (two classes) or
:data:`SEMI_SUPERVISED_MULTICLASS` (K > 2 classes), a :class:`chm.semi.losses.SpatialLoss`, or a
:class:`Recipe` for full control. :func:`resolve` turns the estimator's parameters into one frozen
:class:`Recipe`, the only thing the cascade's training loop reads about the unlabelled pixels.
"""

import dataclasses
import numbers

import numpy as np

from .losses import SpatialLoss, get_spatial_loss
from .superpixels import RECOMMENDED_SCALE, check_scale

__all__ = ["PRIOR_TOLERANCE", "PROPOSAL_SAMPLES", "Recipe", "SEMI_SUPERVISED", "SEMI_SUPERVISED_MULTICLASS",
           "resolve"]

#: Ways of learning from the unlabelled pixels of a two-class model and the weights each gets when
#: none is given (docs/results.md). "tv" and "contrast" add a spatial loss with weight ``alpha``;
#: "self-training" refits the cascade on graph-cut proposals (:mod:`chm.semi.selftraining`) with
#: Potts weight ``beta``, ``rounds`` times; "tv+self-training" and "contrast+self-training" start
#: the self-training from a model trained with that loss; "superpixels" spreads the sparse labels
#: over superpixels of size ``scale`` (:mod:`chm.semi.superpixels`) and fits on them;
#: "superpixels+self-training" then self-trains; "auto" is the recommended one of these.
#: Where each value was chosen, and whether honestly: docs/settings.md#auto-recipe, #auto-beta,
#: #auto-rounds, #auto-scale, #tv-alpha, #contrast-alpha.
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
#: alpha-expansion (:func:`chm.semi.selftraining.class_proposal`). "auto" is self-training: on
#: held-out Stanford training images it alone beat the supervised CHM (docs/results.md, "K-class
#: self-training on held-out training images"; docs/settings.md#kclass-auto, #kclass-tv-alpha).
SEMI_SUPERVISED_MULTICLASS = {
    "tv": {"loss": "tv", "alpha": 0.1},
    "contrast": {"loss": "contrast", "alpha": 0.3},
    "superpixels": {"scale": RECOMMENDED_SCALE},
    "self-training": {"beta": 16.0, "rounds": 1},
}
SEMI_SUPERVISED_MULTICLASS["auto"] = SEMI_SUPERVISED_MULTICLASS["self-training"]

#: Self-training keeps the proposals' foreground fraction within this relative distance of the
#: sparse labels' estimate (the guard against collapse of :mod:`chm.semi.selftraining`;
#: docs/settings.md#prior-tolerance).
PRIOR_TOLERANCE = 0.25

#: Labelled pixels per class and level kept from the proposals of a self-training round (or from
#: superpixel-spread labels) when ``max_samples`` is None (they label nearly every pixel;
#: docs/settings.md#proposal-samples).
PROPOSAL_SAMPLES = 50_000


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What a fit does with the unlabelled pixels.

    Parameters
    ----------
    loss : SpatialLoss or None
        Spatial loss added at the ``tv_levels`` classifiers with weight ``alpha`` (None: none).
    alpha : float
        Its weight (paper: E_S + alpha E_U, here as the ratio of the mean spatial loss per pixel
        to the mean supervised loss per labelled pixel).
    beta : float or None
        Self-training: the Potts weight of the proposals' MRF.
    rounds : int
        Self-training: proposal-and-refit rounds (0 = no self-training).
    scale : float or None
        Superpixels: the Felzenszwalb scale the sparse labels spread over (None = no spreading).
    prior_tolerance : float
        Two classes: the proposals' foreground fraction is kept within this relative distance of
        the sparse labels' estimate (:data:`PRIOR_TOLERANCE`).
    proposal_samples : int
        Labelled pixels per class and level kept from dense proposals or spread labels when
        ``max_samples`` is None (:data:`PROPOSAL_SAMPLES`).
    proposal_confidence : float in (0, 1]
        Self-training: the fraction of each class's proposal pixels kept in each image, those
        where the model is surest of the class (:func:`chm.semi.selftraining.keep_confident`);
        1 keeps every pixel.
    """

    loss: SpatialLoss = None
    alpha: float = 0.0
    beta: float = None
    rounds: int = 0
    scale: float = None
    prior_tolerance: float = PRIOR_TOLERANCE
    proposal_samples: int = PROPOSAL_SAMPLES
    proposal_confidence: float = 1.0

    def __post_init__(self):
        if self.loss is not None and not isinstance(self.loss, SpatialLoss):
            raise TypeError(f"Recipe.loss must be None or a SpatialLoss, got {type(self.loss).__name__}")
        _check_number("alpha", self.alpha)
        if self.rounds:
            _check_number("beta", self.beta)
        if not isinstance(self.rounds, (int, np.integer)) or self.rounds < 0:
            raise ValueError(f"rounds must be an integer >= 0, got {self.rounds!r}")
        if self.scale is not None:
            check_scale(self.scale)
        _check_number("prior_tolerance", self.prior_tolerance)
        if not isinstance(self.proposal_samples, (int, np.integer)) or self.proposal_samples < 1:
            raise ValueError(f"proposal_samples must be an integer >= 1, got {self.proposal_samples!r}")
        c = self.proposal_confidence
        if not (isinstance(c, numbers.Real) and not isinstance(c, bool) and 0 < c <= 1):
            raise ValueError(f"proposal_confidence must lie in (0, 1], got {c!r}")

    @property
    def spatial(self):
        """Whether a spatial loss takes part."""
        return self.loss is not None and self.alpha > 0

    def to_dict(self):
        """JSON-able fields (model files store a Recipe passed as ``semi_supervised``)."""
        d = dataclasses.asdict(self)
        d["loss"] = None if self.loss is None else self.loss.to_dict()
        return {"recipe": d}

    @classmethod
    def from_dict(cls, d):
        d = dict(d["recipe"])
        if d.get("loss") is not None:
            d["loss"] = SpatialLoss.from_dict(d["loss"])
        return cls(**d)


def _check_number(name, v):
    if not (isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


def resolve(method, n_classes=2, alpha=None, beta=None, rounds=None, scale=None):
    """The :class:`Recipe` of ``CHM(semi_supervised=method, alpha=..., beta=..., rounds=...,
    superpixel_scale=scale)`` for an ``n_classes`` problem; None arguments take the method's
    recommended values. Raises ``ValueError`` with what to do for a method the problem does not take."""
    if isinstance(method, Recipe):
        if any(v is not None for v in (alpha, beta, rounds, scale)):
            raise ValueError("a Recipe in semi_supervised carries its own alpha, beta, rounds and scale; "
                             "leave those parameters None")
        return method
    if method is None:
        a = alpha or 0.0
        return Recipe(loss=get_spatial_loss("tv"), alpha=float(a)) if a > 0 else Recipe()
    if isinstance(method, SpatialLoss):
        if alpha is None:
            raise ValueError("a custom SpatialLoss in semi_supervised needs an explicit alpha")
        return Recipe(loss=method, alpha=float(alpha))
    if not isinstance(method, str) or method not in SEMI_SUPERVISED:
        raise ValueError(f"semi_supervised must be None, one of {sorted(SEMI_SUPERVISED)}, a "
                         f"chm.semi.losses.SpatialLoss or a chm.semi.recipes.Recipe, got {method!r}")
    table = SEMI_SUPERVISED if n_classes == 2 else SEMI_SUPERVISED_MULTICLASS
    if method not in table:
        raise ValueError(f"semi_supervised={method!r} works for two classes only; with {n_classes} classes "
                         f"use one of {sorted(table)}")
    rec = table[method]
    out = {}
    if "loss" in rec:
        a = rec["alpha"] if alpha is None else float(alpha)
        if a > 0:
            out.update(loss=get_spatial_loss(rec["loss"]), alpha=a)
    elif alpha:
        raise ValueError(f"alpha weighs a spatial loss, and {method!r} has none; use beta and rounds")
    if "rounds" in rec:
        b = rec["beta"] if beta is None else beta
        r = rec["rounds"] if rounds is None else rounds
        _check_number("beta", b)
        out.update(beta=float(b), rounds=r)
    if "scale" in rec:
        out.update(scale=rec["scale"] if scale is None else check_scale(scale))
    return Recipe(**out)
