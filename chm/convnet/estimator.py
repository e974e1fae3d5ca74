"""The ConvNet pixel classifier of the paper (section 5), trained from sparse labels with a spatial loss.

Same contract as :class:`chm.CHM` (fit / predict_proba / predict / save, ``chm.load``), for K
classes and gray or colour images. Needs PyTorch: ``pip install "chm[convnet]"``; ``import chm``
does not import torch, only ``chm.ConvNet`` does. The network is
:class:`chm.convnet.patchnet.PatchNet`; prediction always evaluates it densely (a-trous).

Training minimises, by Adam over steps (or SGD with momentum: ``optimizer``, ``lr_schedule``),

    E = mean E_S over the step's labelled pixels (cross-entropy, or eq. 1's squared error)
        + alpha * mean E_U per pixel (per 3 x 3 centre) of the step's output maps (all classes)

with E_U the TV of eq. 8 (``"tv"``) or the contrast-sensitive Potts loss (``"contrast"``), both as
:mod:`chm.semi.losses` defines them for the CHM. Each term is a mean over its own count, where the
paper (eq. 1, 2) sums both; :func:`chm.semi.losses.paper_alpha_factor`
(``supervised="cross_entropy"``) converts the paper's alpha to this one. ``training`` picks what a
step sees:

* ``"patches"`` (default): ``batch_size`` labelled pixels (their P x P patches, one output each)
  and ``tiles`` random tiles of ``tile_size`` x ``tile_size`` pixels anywhere in the training
  images, evaluated densely (the tiles' outputs are what E_U sees; labelled pixels in them count
  as unlabelled, as in the paper's eq. 2). A dense tile costs about 0.4 M multiply-adds per
  output against 21 M for a lone patch, which is why the spatial term works on tiles rather than
  on scattered 3 x 3 neighbourhoods. A fit sees the E_U of a small sample of the pixels.
* ``"images"`` (fully convolutional): the training images are cut into ``crop_size`` crops (None:
  whole images) and a step takes ``crops_per_step`` of them through the dense network: E_S at
  every labelled pixel inside, E_U over every pixel inside
  (:func:`chm.convnet.patchnet.dense_objective`). An epoch visits every crop once, so it sums
  the E_S of every labelled pixel and the E_U of every pixel, as eq. 2 does. It costs
  the dense network on every pixel: a whole 240 x 320 image, forward and backward, took 6.3 s of
  one (busy) core at P = 46, against 0.44 s for a patch-mode step (64 patches, two 32 x 32 tiles),
  so one epoch over a Stanford Background fold (572 images) is about an hour of one core.
"""

import os
import time

import numpy as np

try:
    import torch
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("chm.ConvNet needs PyTorch: pip install \"chm[convnet]\" "
                      "(or install a torch build for your machine first)") from e

from ..utils._progress import bar
from ..io.images import as_float_image, check_image_list, check_labels
from ..io.persistence import CONVNET_FORMAT
from ..utils._validation import check_random_state
from ..base import Segmenter
from .patchnet import (SUPERVISED_LOSSES, PatchNet, SpatialTerm, dense_objective, grid_regions, objective,
                       valid_patch_sizes)
from ..semi.superpixels import check_scale, expand_labels
from ..thresholds import class_weights

__all__ = ["ConvNet", "SEMI_SUPERVISED", "TRAINING", "RECOMMENDED_ALPHA", "CONTRAST_ALPHA", "EPOCHS", "MIN_STEPS",
           "IMAGE_EPOCHS", "OPTIMIZERS", "LR_SCHEDULES", "MOMENTUM", "SUPERVISED_LOSSES"]

#: None, the paper's TV loss, the CHM's contrast-sensitive Potts loss
#: (:func:`chm.semi.losses.ContrastSensitive`), the sparse labels spread over superpixels
#: (:mod:`chm.superpixels`), or the spread labels with a spatial loss.
SEMI_SUPERVISED = (None, "tv", "contrast", "superpixels", "superpixels+tv", "superpixels+contrast")
# The spatial loss of each method that has one.
_SPATIAL = {"tv": "tv", "superpixels+tv": "tv", "contrast": "contrast", "superpixels+contrast": "contrast"}
#: Weight of the TV term when ``semi_supervised="tv"`` and ``alpha=None``: chosen on held-out
#: training images of Stanford Background fold 0 with their sparse labels only (N = 10; error on
#: the 1140 held-out labels: alpha 0 34.5 %, 0.3 31.8 %, 1 32.9 %; the screen of docs/results.md, now
#: ``python -m experiments.screen --estimator convnet``). Those held-out images are test images of
#: Stanford folds 1-4: docs/settings.md#convnet-alpha.
RECOMMENDED_ALPHA = 0.3
#: Weight of the contrast loss when ``alpha=None``: untuned (docs/settings.md#convnet-contrast-alpha).
#: On a flat image a step of the map costs the contrast loss 1 + sqrt 2 times its TV (per row: 2
#: centres x (1/2 + 2 / (2 sqrt 2)) against 2 x 1/2), so this weight prices it as
#: :data:`RECOMMENDED_ALPHA` prices it with TV; across an image edge it costs less.
CONTRAST_ALPHA = RECOMMENDED_ALPHA / (1 + 2 ** 0.5)
#: ``n_iter="auto"``: passes over the sparse labelled pixels, and the fewest steps. Held-out training
#: images (docs/convnet.md): SIFT Flow's 2000 steps (6 epochs) under-trained it (32.5 % against
#: 30.5 % at 19 epochs); Stanford's choices were made at 21-22 epochs, which 2000 steps keep.
EPOCHS = 20
MIN_STEPS = 2000
#: What a training step sees: labelled patches plus tiles for the spatial loss, or whole images /
#: crops (dense).
TRAINING = ("patches", "images")
#: ``n_iter="auto"`` with ``training="images"``: epochs over the training images, each visiting
#: every labelled pixel and every pixel's E_U once. Not tuned (no run has compared values): it is
#: the patch mode's :data:`EPOCHS` passes over the labels.
IMAGE_EPOCHS = 20
#: ``optimizer``: Adam (default), or SGD with momentum :data:`MOMENTUM` as the paper's Caffe solver.
OPTIMIZERS = ("adam", "sgd")
MOMENTUM = 0.9
#: ``lr_schedule``: cosine decay to 0 over the fit (default), constant (Caffe's "fixed"), or
#: Caffe's "step" policy: the rate times 0.1 after each third of the steps.
LR_SCHEDULES = ("cosine", "constant", "step")
_STRIP_PIXELS = 1 << 17  # dense prediction runs in strips of about this many outputs (memory)
# Dense training back-propagates strips of about this many outputs one at a time: ~1 GB at P = 46.
_TRAIN_STRIP_PIXELS = 1 << 15


def _net_images(images):
    """The one image contract (:func:`chm.io.images.check_image_list`: uint8, uint16, bool or
    float in [0, 1]) as the network reads it: float32 (H, W, C) in [0, 1], all gray or all colour."""
    out = []
    for i, im in enumerate(check_image_list(images)):
        a = as_float_image(im, f"images[{i}]", dtype=np.float32)
        out.append(a[:, :, None] if a.ndim == 2 else a)
    if len({a.shape[2] for a in out}) > 1:
        raise ValueError("images mixes gray and colour images; convert them to one kind")
    return out


class ConvNet(Segmenter):
    """The paper's ConvNet patch classifier, evaluated densely; optionally with a spatial loss.

    Trained on labelled patches and small tiles for the spatial loss (``training="patches"``,
    default) or fully convolutionally on whole images or crops (``"images"``); the module
    docstring gives the objective, the same in both modes.

    Parameters
    ----------
    semi_supervised : {None, "tv", "contrast", "superpixels", "superpixels+tv", "superpixels+contrast"}
        None: supervised (unless ``alpha > 0``, which selects "tv" as in :class:`chm.CHM`).
        "tv": add ``alpha`` x the total variation of the output probability maps (paper eq. 8).
        "contrast": add ``alpha`` x the contrast-sensitive Potts loss of :class:`chm.CHM`'s
        "contrast" (:func:`chm.semi.losses.ContrastSensitive`: each pixel against its 8
        neighbours, L1, weighed by how alike the image is there; each image's contrast scale its
        own RMS neighbour difference). "superpixels": train on the labels spread over superpixels
        (as :class:`chm.CHM`, :mod:`chm.superpixels`); "superpixels+tv", "superpixels+contrast":
        the spread labels and the spatial loss.
    alpha : float or None
        Weight of the spatial term: the step's mean loss per pixel (per 3 x 3 centre, summed over
        classes) against its mean E_S per labelled pixel, in both training modes. The paper's
        alpha weighs sums (eq. 1, 2); ``alpha = paper_alpha_factor(labels, "cross_entropy") *
        alpha_paper`` (:func:`chm.semi.losses.paper_alpha_factor`: centres / labelled pixels of the
        training set) gives the same objective up to a constant factor, in expectation over the
        steps when every step holds as many labels and centres as the next (patches; whole
        images of one size with N labels each), approximately when they vary (crops, images of
        several sizes). ``supervised_loss="squared_error"`` takes the same factor: its E_S per
        pixel is eq. 1's at K = 2. None: :data:`RECOMMENDED_ALPHA` with "tv" (chosen in patch mode),
        :data:`CONTRAST_ALPHA` (untuned) with "contrast", else 0.
    n_classes : int or None
        K; None = the largest label + 1 (at least 2). Set it when a sparse draw may miss a class.
    patch_size : int
        P (46, 62, 78, ...): each pixel is classified from the P x P patch centred on it. 46, the
        smallest, keeps dense prediction of 240 x 320 under half a second on 2 cores (benchmarks/
        convnet.py); larger patches see more context at a cost that grows with the FC layer.
    n_iter : int or "auto"
        Optimiser steps. "auto" (default), patches: enough for
        :data:`EPOCHS` passes over the sparse labelled pixels, and at least :data:`MIN_STEPS`
        (2000 on a Stanford Background fold at N = 10, 7775 on SIFT Flow, whose 2000 steps were 6
        epochs and under-trained it: ``docs/convnet.md``). Images: :data:`IMAGE_EPOCHS` epochs
        over the training images, ``IMAGE_EPOCHS * ceil(n_crops / crops_per_step)`` steps: every
        labelled pixel seen as often as in the patch mode, and every pixel's E_U as often (with
        whole images, one per step: 11,440 steps on a Stanford fold of 572 images, some 20 hours
        of one core against the patch mode's 15 minutes). ``n_iter_`` holds the number used.
    batch_size : int
        Patches: labelled pixels per step (unused with "images").
    tiles, tile_size : int
        Patches: unlabelled tiles per step and their side in output pixels (spatial term only;
        unused with "images").
    training : {"patches", "images"}
        What a step sees. "patches" (default): ``batch_size`` labelled patches and ``tiles``
        tiles for the spatial term. "images": fully convolutional, ``crops_per_step`` crops of the
        training images through the dense network, E_S at their labelled pixels and E_U over all
        their pixels; every epoch covers every training pixel's E_U (module docstring). Spread
        (superpixel) labels are weighed in E_S by the sparse labels' class balance,
        as the patch mode draws them. "patches" stays the default: at the same cost "images"
        did not learn (Stanford bin 0, TV alpha 3, one epoch: 64.8 % held-out error against 31.5 %,
        docs/convnet.md), since a whole-image step costs ~11x a patch step and carries 1/6 of its
        labels.
    crop_size : int or None
        Images: the training images are cut into a grid of near-equal crops of at most
        ``crop_size`` x ``crop_size`` outputs (the same crops every epoch, in a fresh random
        order); None (default): whole images, e.g. one 240 x 320 scene or 210 x 260 horse per step.
        A crop holds labelled pixels in proportion to its area (1.7 at N = 10 in the 120 x 107
        cells that ``crop_size=128`` cuts a 240 x 320 image into) and, in scenes, few classes:
        small crops make noisy steps (on a toy set whose 2 x 2 cells hold one class each, its
        15 x 18 cells three a step did not learn it in 30 steps where whole images did). Memory
        does not depend on it: crops are back-propagated in strips of about 32 k outputs (under
        1 GB at P = 46).
    crops_per_step : int
        Images: crops (whole images when ``crop_size`` is None) per step; the step's loss is the
        objective above over all of them.
    learning_rate, weight_decay : float
        The optimiser's (initial) rate and L2 weight decay. 1e-3 suits Adam; SGD needs its own.
    optimizer : {"adam", "sgd"}
        "adam" (default); "sgd": plain SGD with momentum :data:`MOMENTUM` (0.9), as the paper's
        Caffe solver (torch's form, which keeps the rate out of the momentum buffer: the same
        steps as Caffe's at a constant rate).
    lr_schedule : {"cosine", "constant", "step"}
        "cosine" (default): decay to 0 over ``n_iter_`` steps; "constant": Caffe's "fixed";
        "step": Caffe's "step" policy with gamma 0.1 and a step size of a third of the fit
        (``ceil(n_iter_ / 3)``): the rate, a tenth of it, a hundredth.
    supervised_loss : {"cross_entropy", "squared_error"}
        E_S: "cross_entropy" (default) of the softmax, or "squared_error", the loss the paper
        writes (eq. 1): ``(1/2) sum_k (p_k - t_k)^2`` of the softmax outputs and the one-hot
        label (Caffe's Euclidean loss), eq. 1's ``(f - L)^2`` at K = 2
        (:func:`chm.convnet.patchnet.supervised_loss`). The paper-like baseline:
        ``optimizer="sgd", lr_schedule="constant"`` or ``"step"``, ``n_iter`` given
        (docs/convnet.md).
    superpixel_scale : float or None
        Superpixels: Felzenszwalb scale of the segments (None:
        :data:`chm.superpixels.RECOMMENDED_SCALE`).
    device : str
        "cpu", or "cuda" (when available).
    n_jobs : int or None
        Torch threads during fit and predict; None leaves torch's setting, -1 = all cores.
    progress : bool, None or callable
        None (default): a bar on a terminal, a few plain lines in a log file; True: a bar;
        False: nothing; a callable ``fn(desc, done, total)`` hears the progress (as
        :class:`chm.CHM`; not saved with the model).
    random_state : int, Generator or None
        Seeds weights and sampling; on the CPU the same seed and ``n_jobs`` give the same model.
    """

    _FORMAT = CONVNET_FORMAT
    _FITTED = "net_"

    def __init__(self, semi_supervised=None, alpha=None, n_classes=None, patch_size=46, n_iter="auto",
                 batch_size=64, tiles=2, tile_size=32, training="patches", crop_size=None, crops_per_step=1,
                 learning_rate=1e-3, weight_decay=0.0, optimizer="adam", lr_schedule="cosine",
                 supervised_loss="cross_entropy", superpixel_scale=None, device="cpu", n_jobs=None, progress=None,
                 random_state=None):
        self.semi_supervised = semi_supervised
        self.alpha = alpha
        self.superpixel_scale = superpixel_scale
        self.n_classes = n_classes
        self.patch_size = patch_size
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.tiles = tiles
        self.tile_size = tile_size
        self.training = training
        self.crop_size = crop_size
        self.crops_per_step = crops_per_step
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.supervised_loss = supervised_loss
        self.device = device
        self.n_jobs = n_jobs
        self.progress = progress
        self.random_state = random_state

    # ------------------------------------------------------------------------------------
    def _spatial(self):
        """(the spatial loss's name or None, its weight in effect)."""
        if self.semi_supervised not in SEMI_SUPERVISED:
            raise ValueError(f"semi_supervised must be one of {SEMI_SUPERVISED}, got {self.semi_supervised!r}")
        a = self.alpha
        if a is not None and (isinstance(a, bool) or not np.isfinite(a) or a < 0):
            raise ValueError(f"alpha must be None or a finite number >= 0, got {a!r}")
        loss = _SPATIAL.get(self.semi_supervised)
        if loss is not None:
            default = RECOMMENDED_ALPHA if loss == "tv" else CONTRAST_ALPHA
            return loss, default if a is None else float(a)
        if self.semi_supervised == "superpixels" and a:
            raise ValueError("alpha weighs a spatial loss, and 'superpixels' has none; use 'superpixels+tv' "
                             "or 'superpixels+contrast'")
        a = 0.0 if a is None else float(a)
        return ("tv" if a > 0 else None), a

    def _scale(self):
        """The superpixel scale in effect, or None when the labels are not spread."""
        if not str(self.semi_supervised).startswith("superpixels"):
            return None
        return check_scale(self.superpixel_scale)

    def _validate_params(self):
        for name, allowed in (("training", TRAINING), ("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES),
                              ("supervised_loss", SUPERVISED_LOSSES)):
            v = getattr(self, name)
            if not isinstance(v, str) or v not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {v!r}")
        for name, lo in (("n_iter", 1), ("batch_size", 1), ("tiles", 0), ("tile_size", 3), ("crop_size", 1),
                         ("crops_per_step", 1)):
            v = getattr(self, name)
            if (name == "n_iter" and isinstance(v, str) and v == "auto") or (name == "crop_size" and v is None):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                also = {"n_iter": ' or "auto"', "crop_size": " or None"}.get(name, "")
                raise ValueError(f"{name} must be an integer >= {lo}{also}, got {v!r}")
        if self.patch_size not in valid_patch_sizes(max(46, int(self.patch_size or 0))):
            raise ValueError(f"patch_size must be 16 m + 30 for an integer m >= 1 (46, 62, 78, ...), "
                             f"got {self.patch_size!r}")
        if self.n_classes is not None and (isinstance(self.n_classes, bool) or
                                           not isinstance(self.n_classes, (int, np.integer)) or
                                           not 2 <= self.n_classes <= 127):
            raise ValueError(f"n_classes must be None or an integer in 2..127, got {self.n_classes!r}")
        for name in ("learning_rate", "weight_decay"):
            v = getattr(self, name)
            if not np.isfinite(v) or v < 0 or (name == "learning_rate" and v == 0):
                raise ValueError(f"{name} must be a finite number {'> 0' if name == 'learning_rate' else '>= 0'}, "
                                 f"got {v!r}")
        self._scale()
        return self._spatial(), self._device()

    def _device(self):
        dev = str(self.device)
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch sees no CUDA device; use device='cpu'")
        if not (dev == "cpu" or dev.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:n]', got {self.device!r}")
        return torch.device(dev)

    def _threads(self):
        return _Threads(os.cpu_count() if self.n_jobs == -1 else self.n_jobs)

    def _pad(self, im):
        """Normalised image, padded so that pixel (y, x)'s patch starts at (y, x): (C, H+P-1, W+P-1)."""
        p = self.patch_size
        a = (p - 1) // 2
        z = (im - self.mean_) / self.std_
        z = np.pad(z, ((a, p - 1 - a), (a, p - 1 - a), (0, 0)), mode="symmetric")
        return np.ascontiguousarray(z.transpose(2, 0, 1))

    def fit(self, images, labels):
        """Train on sparse labels.

        Parameters
        ----------
        images : list of (H, W) or (H, W, 3) arrays
            uint8, or float in [0, 1]; any sizes; all gray or all colour.
        labels : list of int arrays, shape (H, W)
            -1 = unlabelled, 0..K-1 = class.

        Returns
        -------
        self
        """
        (loss_name, alpha), device = self._validate_params()
        images = _net_images(images)
        shapes = [im[:, :, 0] for im in images]
        try:
            top = max(int(np.max(lab)) for lab in labels)
        except (TypeError, ValueError):
            top = 1  # check_labels gives the message
        k = self.n_classes if self.n_classes is not None else max(2, top + 1)
        labels = check_labels(labels, shapes, n_classes=k)
        sparse, scale = labels, self._scale()
        if scale is not None:
            labels = [expand_labels(im if im.shape[2] == 3 else im[:, :, 0], lab, scale)
                      for im, lab in zip(images, labels)]
        rng = check_random_state(self.random_state)
        self.n_classes_ = int(k)
        self.alpha_ = alpha  # the spatial loss's weight in effect
        self.n_channels_ = images[0].shape[2]
        n = sum(im.shape[0] * im.shape[1] for im in images)
        s1 = sum(im.sum((0, 1), dtype=np.float64) for im in images) / n
        s2 = sum(np.square(im, dtype=np.float64).sum((0, 1)) for im in images) / n
        self.mean_ = s1.astype(np.float32)
        self.std_ = np.sqrt(np.maximum(s2 - s1 * s1, 1e-6)).astype(np.float32)
        # Half precision halves the memory of a big training set; batches are cast back to float32.
        padded = [torch.from_numpy(self._pad(im)).to(torch.float16) for im in images]
        where = [np.flatnonzero(lab.ravel() >= 0) for lab in labels]
        img_of = np.concatenate([np.full(len(w), i) for i, w in enumerate(where)])
        pix = np.concatenate(where)
        ys, xs = np.divmod(pix, np.array([labels[i].shape[1] for i in img_of]))
        target = np.concatenate([lab.ravel()[w] for lab, w in zip(labels, where)]).astype(np.int64)
        # Spread labels: draw the pixels with the sparse labels' class balance (with replacement).
        weights = _class_balanced_weights(target, sparse, k) if scale is not None else None
        dense = self.training == "images"
        if dense:
            # Whole images or crops; without E_U a region with no label has nothing to teach.
            regions = [(i, *r) for i, lab in enumerate(labels) for r in grid_regions(*lab.shape, self.crop_size)
                       if alpha > 0 or (lab[r[0]:r[1], r[2]:r[3]] >= 0).any()]
            per_epoch = -(-len(regions) // self.crops_per_step)
            # Spread labels: weigh each pixel's cross-entropy as the patch mode's draw would.
            dense_weights = class_weights(sparse, labels, k) if scale is not None else None
        else:
            per_epoch = None
        self.n_iter_ = self._steps(sum(int((lab >= 0).sum()) for lab in sparse), per_epoch)
        tile = min(self.tile_size, *(min(im.shape[:2]) for im in images))
        n_tiles = self.tiles if alpha > 0 else 0
        spatial = SpatialTerm(loss_name, images) if alpha > 0 else None

        with self._threads(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(0, 2**63 - 1)))
            net = PatchNet(self.n_channels_, self.n_classes_, self.patch_size).to(device)
            opt, sched = self._optimiser(net)
            self.loss_curve_ = []
            if dense:
                steps = _epochs(regions, per_epoch, rng)
            else:
                order, pos = self._order(target, weights, rng), 0
            p = self.patch_size
            t0 = time.perf_counter()
            with bar(total=self.n_iter_, desc="ConvNet SGD", enabled=self.progress) as pbar:
                for it in range(self.n_iter_):
                    if dense:
                        opt.zero_grad()
                        # dense_objective accumulates the gradient itself, strip by strip
                        loss, sup, sp = dense_objective(net, padded, labels, next(steps), alpha, dense_weights,
                                                        _TRAIN_STRIP_PIXELS, spatial=spatial,
                                                        supervised=self.supervised_loss)
                    else:
                        if pos + self.batch_size > len(order):
                            order, pos = self._order(target, weights, rng), 0
                        b = order[pos:pos + self.batch_size]
                        pos += self.batch_size
                        x = torch.stack([padded[img_of[j]][:, ys[j]:ys[j] + p, xs[j]:xs[j] + p] for j in b])
                        t, places = self._random_tiles(padded, tile, n_tiles, rng) if n_tiles else (None, None)
                        loss, sup, sp = objective(net, x.to(device, torch.float32),
                                                  torch.from_numpy(target[b]).to(device),
                                                  None if t is None else t.to(device, torch.float32), alpha,
                                                  spatial, places, self.supervised_loss)
                        opt.zero_grad()
                        loss.backward()
                        sup, sp = sup.item(), sp.item()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    self.loss_curve_.append((sup, sp))
                    pbar.update(1)
                    if it % 20 == 0:
                        pbar.set_postfix(sup=f"{sup:.3f}", spatial=f"{sp:.3f}")
            self.fit_seconds_ = time.perf_counter() - t0
        self.net_ = net.cpu().eval()
        return self

    def _optimiser(self, net):
        """The optimiser of ``net``'s weights and the learning-rate scheduler (None: constant)."""
        params, lr, wd = net.parameters(), self.learning_rate, self.weight_decay
        if self.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=MOMENTUM, weight_decay=wd)
        else:
            opt = torch.optim.Adam(params, lr=lr, weight_decay=wd)
        if self.lr_schedule == "cosine":
            return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.n_iter_)
        if self.lr_schedule == "step":
            return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=-(-self.n_iter_ // 3), gamma=0.1)
        return opt, None

    def _steps(self, n_labelled, per_epoch=None):
        """The number of SGD steps: ``n_iter``; or "auto"'s epochs: of ``n_labelled`` sparse labels
        (patches), or of ``per_epoch`` steps over the images' regions (images)."""
        if self.n_iter != "auto":
            return int(self.n_iter)
        if self.training == "images":
            return IMAGE_EPOCHS * per_epoch
        return max(MIN_STEPS, -(-EPOCHS * n_labelled // self.batch_size))

    @staticmethod
    def _order(target, weights, rng):
        """One pass over the training pixels: a permutation, or a weighted draw of as many."""
        if weights is None:
            return rng.permutation(len(target))
        return rng.choice(len(target), size=len(target), p=weights)

    def _random_tiles(self, padded, tile, n, rng):
        """n random (C, tile+P-1, tile+P-1) inputs, and where their outputs start: (image, y, x) each;
        a tile's outputs may be anywhere in its image."""
        side = tile + self.patch_size - 1
        out, places = [], []
        for i in rng.integers(0, len(padded), size=n):
            h, w = padded[i].shape[1] - side + 1, padded[i].shape[2] - side + 1
            y, x = rng.integers(0, h), rng.integers(0, w)
            out.append(padded[i][:, y:y + side, x:x + side])
            places.append((int(i), int(y), int(x)))
        return torch.stack(out), places

    # ------------------------------------------------------------------------------------
    def _dense(self, im, device):
        """(K, H, W) class probabilities of one image, in strips of rows (exact: rows are independent)."""
        h, w = im.shape[:2]
        z = torch.from_numpy(self._pad(im)).to(device)[None]
        rows = max(1, _STRIP_PIXELS // w)
        out = []
        for r in range(0, h, rows):
            n = min(rows, h - r)
            out.append(self.net_(z[:, :, r:r + n + self.patch_size - 1], dense=True).softmax(1)[0])
        return torch.cat(out, 1).cpu().numpy()

    def predict_proba(self, images):
        """Class probabilities per pixel, float32: (H, W) maps of class 1 if K = 2, else (H, W, K)."""
        self.check_is_fitted()
        device = self._device()
        images = _net_images(images)
        if images[0].shape[2] != self.n_channels_:
            kind = {1: "gray", 3: "colour"}
            raise ValueError(f"this ConvNet was trained on {kind[self.n_channels_]} images, "
                             f"got {kind[images[0].shape[2]]} ones")
        net = self.net_.to(device)
        out = []
        with self._threads(), torch.no_grad():
            for im in bar(images, desc="ConvNet predict", enabled=self.progress):
                p = self._dense(im, device)
                out.append(p[1] if self.n_classes_ == 2 else np.ascontiguousarray(p.transpose(1, 2, 0)))
        self.net_ = net.cpu()
        return out

    def decide(self, probas, threshold=None):
        """Label maps (uint8) from :meth:`predict_proba`'s maps: ``p > threshold`` (two classes;
        None = 0.5), else the most probable class (``threshold`` must then be None)."""
        if self.n_classes_ == 2:
            return [(p > (0.5 if threshold is None else threshold)).astype(np.uint8) for p in probas]
        if threshold is not None:
            raise ValueError(f"threshold is for two-class models; this one has {self.n_classes_} classes")
        return [p.argmax(2).astype(np.uint8) for p in probas]

    # ------------------------------------------------------------------------------------
    def _to_state(self):
        """(JSON-able header, arrays) for :mod:`chm.persistence`."""
        params = self.get_params(deep=False)
        if not isinstance(params["random_state"], (int, type(None))):
            params["random_state"] = None  # a Generator has no JSON form; the weights are what matter
        if callable(params["progress"]):
            params["progress"] = None  # a callback belongs to the program that trained
        header = {"params": params, "n_classes": self.n_classes_, "n_channels": self.n_channels_,
                  "n_iter": self.n_iter_}
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        arrays.update(mean=self.mean_, std=self.std_)
        return header, arrays

    @classmethod
    def _from_state(cls, header, arrays):
        model = cls(**header["params"])
        model.n_classes_ = int(header["n_classes"])
        model.alpha_ = model._spatial()[1]
        model.n_channels_ = int(header["n_channels"])
        model.n_iter_ = int(header.get("n_iter", model.n_iter))  # files before "auto" had an integer n_iter
        model.mean_ = arrays["mean"].astype(np.float32)
        model.std_ = arrays["std"].astype(np.float32)
        net = PatchNet(model.n_channels_, model.n_classes_, model.patch_size)
        state = {k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")}
        net.load_state_dict(state)  # raises on missing or misshapen weights
        model.net_ = net.eval()
        return model


def _epochs(regions, per_epoch, rng):
    """Steps (lists of regions) for ever: each epoch a fresh permutation of ``regions`` cut into
    ``per_epoch`` near-equal groups, so an epoch visits every region, hence every pixel, once."""
    while True:
        for group in np.array_split(rng.permutation(len(regions)), per_epoch):
            yield [regions[j] for j in group]


class _Threads:
    """Set torch's thread count for a block and restore it afterwards (None: leave it)."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(max(1, int(self.n)))

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


def _class_balanced_weights(target, sparse, n_classes):
    """Sampling probabilities of the training pixels that give them the sparse labels' class balance.

    Superpixel-spread labels over-represent the classes of large uniform regions (on Stanford
    Background sky is 30 % of them and 14 % of the pixels); the user's sparse labels are the
    unbiased sample. A pixel of class k gets probability proportional to pi_k / n_k (pi: the
    sparse labels' class shares, n: the spread labels' counts), so every class's total is pi_k and
    the network learns the posterior under the right prior.
    """
    p = class_weights(sparse, [target], n_classes)[target]  # pi_k / (spread share of k), per pixel
    return p / p.sum()
