"""The paper's ConvNet patch classifier (section 5) and its training losses, in PyTorch.

One set of weights, two ways to run it:

* :meth:`PatchNet.forward` with ``dense=False`` classifies a batch of P x P patches, one output each
  (4 x [3 x 3 valid conv, ReLU, 2 x 2 max-pool stride 2, LRN], a fully connected layer of 512, and
  the K-class output layer). Training on labelled pixels uses this.
* ``dense=True`` is the same network made fully convolutional the a-trous way: every pool runs at
  stride 1 and every later layer is dilated by the product of the strides before it, so an input of
  (H + P - 1) x (W + P - 1) gives the H x W outputs of the patches centred on every pixel, exactly
  (up to float rounding) and without repeating shared work the way a loop over patches would.

Patch size P = 16 m + 30 (m >= 1): the four valid conv/pool stages take 46 -> 1, 62 -> 2, ... and
the fully connected layer sees the final m x m x 64 block. Needs torch; only :mod:`chm.convnet`
imports this module.

Two training objectives share :func:`supervised_loss` (E_S: cross-entropy, or the squared error
of eq. 1) and :class:`SpatialTerm` (E_U: the TV of eq. 8 or the contrast-sensitive Potts loss, as
:mod:`chm.semi.losses` defines them for the CHM, computed by :func:`spatial_loss`):
:func:`objective` (patch mode: labelled patches plus small dense tiles for the spatial term) and
:func:`dense_objective` (fully convolutional mode: whole images or crops of them,
:func:`grid_regions`, evaluated densely; E_S at the labelled pixels inside them and E_U over every
pixel of them).
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..mrf import default_sigma
from ..semi.losses import TV, get_spatial_loss

__all__ = ["PatchNet", "SUPERVISED_LOSSES", "SpatialTerm", "dense_objective", "grid_regions", "lrn", "objective",
           "spatial_loss", "supervised_loss", "tv_loss", "valid_patch_sizes"]

#: E_S per labelled pixel: softmax cross-entropy, or the squared error of eq. 1 (:func:`supervised_loss`).
SUPERVISED_LOSSES = ("cross_entropy", "squared_error")
N_MAPS = 64
N_HIDDEN = 512
# Caffe's LRN defaults (across channels): local_size 5, alpha 1e-4, beta 0.75, k 1.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 1.0


def valid_patch_sizes(up_to=200):
    """Patch sides the four valid conv/pool stages divide exactly: 46, 62, 78, ..."""
    return list(range(46, up_to + 1, 16))


def lrn(x):
    """Local response normalisation across channels (as ``torch.nn.LocalResponseNorm(5)``).

    The window sum of squares over channels is a product with a banded C x C matrix: one GEMM on
    channels-last tensors, several-fold faster on the CPU than torch's module (a 3-D average pool);
    without autograd it works in place. A test checks that the two agree.
    """
    c = x.shape[1]
    i = torch.arange(c, device=x.device)
    band = ((i[:, None] - i[None, :]).abs() <= LRN_SIZE // 2).to(x.dtype)
    assert LRN_BETA == 0.75  # y ** -0.75 = rsqrt(y) * sqrt(rsqrt(y)): 3x faster than pow on the CPU
    s = ((x * x).permute(0, 2, 3, 1) @ band).permute(0, 3, 1, 2)  # channels-last: a plain GEMM
    if torch.is_grad_enabled():
        r = (LRN_K + (LRN_ALPHA / LRN_SIZE) * s).rsqrt()
        return x * r * r.sqrt()
    r = s.mul_(LRN_ALPHA / LRN_SIZE).add_(LRN_K).rsqrt_()
    return x.mul_(r).mul_(r.sqrt_())


class PatchNet(nn.Module):
    """4 x [conv 3 x 3 (64), ReLU, max-pool 2 x 2, LRN] -> FC 512 (ReLU) -> K logits.

    Parameters
    ----------
    n_channels : int
        Image channels (1 gray, 3 colour).
    n_classes : int
        Outputs K (softmax over them).
    patch_size : int
        P, one of :func:`valid_patch_sizes`.
    """

    def __init__(self, n_channels, n_classes, patch_size=46):
        super().__init__()
        if patch_size not in valid_patch_sizes(max(patch_size, 46)):
            raise ValueError(f"patch_size must be 16 m + 30 for an integer m >= 1 (46, 62, 78, ...), "
                             f"got {patch_size!r}")
        self.patch_size = patch_size
        side = (patch_size - 30) // 16
        self.convs = nn.ModuleList([nn.Conv2d(n_channels if i == 0 else N_MAPS, N_MAPS, 3) for i in range(4)])
        self.fc = nn.Conv2d(N_MAPS, N_HIDDEN, side)  # the fully connected layer, as a convolution
        self.out = nn.Conv2d(N_HIDDEN, n_classes, 1)

    def forward(self, x, dense=False):
        """Logits: (B, K, 1, 1) for P x P patches, or (B, K, H, W) for dense (H+P-1, W+P-1) input."""
        x = x.contiguous(memory_format=torch.channels_last)  # 1.5-2x faster convolutions on the CPU
        inplace = not torch.is_grad_enabled()
        d = 1
        for conv in self.convs:
            x = F.relu(F.conv2d(x, conv.weight, conv.bias, dilation=d), inplace=inplace)
            x = _dilated_max_pool(x, d) if dense else F.max_pool2d(x, 2)
            x = lrn(x)
            if dense:
                d *= 2
        x = F.relu(F.conv2d(x, self.fc.weight, self.fc.bias, dilation=d), inplace=inplace)
        return self.out(x)


def _dilated_max_pool(x, d):
    """``F.max_pool2d(x, 2, stride=1, dilation=d)`` as the maximum of four shifted views (2x faster)."""
    return torch.maximum(torch.maximum(x[..., :-d, :-d], x[..., :-d, d:]),
                         torch.maximum(x[..., d:, :-d], x[..., d:, d:]))


def spatial_loss(prob, loss, weights=None, reduction="mean"):
    """A spatial loss of probability maps (paper eq. 2) in torch: :meth:`chm.semi.losses.SpatialLoss.value`.

    Parameters
    ----------
    prob : Tensor, shape (B, K, H, W)
        Class probabilities, H, W >= 3.
    loss : chm.semi.losses.SpatialLoss
        Its stencils and penalty (``|r|`` or ``r**2 / 2``).
    weights : Tensor, shape (B, n_filters, H - 2, W - 2), or None
        Per-centre stencil weights of each map (:meth:`chm.semi.losses.SpatialLoss.weight_maps` of
        its image), the same for every class; None: 1 (unweighted losses such as the TV).
    reduction : {"mean", "sum"}
        "sum": over every valid centre (the 3 x 3 neighbourhood inside the map), class and stencil,
        exactly :meth:`~chm.semi.losses.SpatialLoss.value` of each map (with its image and
        contrast scale). "mean": that sum divided by the number of centres B (H-2) (W-2), the
        loss per pixel.

    Autograd's subgradient of ``|r|`` is ``sign(r)`` (0 at 0), so the gradient reaching each of the
    9 neighbourhood outputs is the loss's eq. 15 coefficient.
    """
    b, k, h, w = prob.shape
    stencils = torch.as_tensor(loss.stencils, dtype=prob.dtype, device=prob.device)[:, None]  # (F, 1, 3, 3)
    r = F.conv2d(prob.reshape(b * k, 1, h, w), stencils)
    r = r.abs() if loss.penalty == "l1" else 0.5 * r * r
    if weights is not None:
        r = r.reshape(b, k, *r.shape[1:]) * weights[:, None]
    total = r.sum()
    return total if reduction == "sum" else total / (b * (h - 2) * (w - 2))


def tv_loss(prob, reduction="mean"):
    """Total variation of probability maps (paper eq. 8): Sobel |d/dx| + |d/dy|, all classes.

    :func:`spatial_loss` with :func:`chm.semi.losses.TV` (eq. 11's stencils divided by 8), so
    ``reduction="sum"`` is :meth:`chm.semi.losses.TV().value <chm.semi.losses.SpatialLoss.value>`
    of each map and "mean" the TV per pixel; the gradient reaching each of the 9 neighbourhood
    outputs is the eq. 15 coefficient.
    """
    return spatial_loss(prob, TV(), reduction=reduction)


class SpatialTerm:
    """The spatial loss E_U of training, on output maps of regions of the training images.

    Parameters
    ----------
    loss : {"tv", "contrast"} or chm.semi.losses.SpatialLoss
        The loss, as :func:`chm.semi.losses.get_spatial_loss` resolves it: the CHM's definitions.
    images : sequence of ndarray, shape (H, W) or (H, W, C), or None
        The training images in [0, 1] (not the network's normalised input), from which a
        contrast-sensitive loss weighs each centre; each image's contrast scale is
        :func:`chm.mrf.default_sigma` of the whole image, as the CHM's. Unweighted losses ignore it.
    """

    def __init__(self, loss="tv", images=None):
        self.loss = get_spatial_loss(loss)
        self.images = images
        self.sigmas = None
        if self.loss.contrast is not None:
            if images is None:
                raise ValueError(f"the {self.loss.name!r} loss is contrast-sensitive: pass the images")
            self.sigmas = [default_sigma(im) for im in images]

    def __call__(self, prob, places=None, reduction="mean"):
        """:func:`spatial_loss` of maps ``prob`` (B, K, h, w), map b the outputs at rows y..y+h-1
        and columns x..x+w-1 of image i for ``places[b] = (i, y, x)`` (contrast-sensitive losses
        take their weights there; others need no places)."""
        weights = None
        if self.sigmas is not None:
            h, w = prob.shape[2:]
            maps = [self.loss.weight_maps(self.images[i][y:y + h, x:x + w], self.sigmas[i]) for i, y, x in places]
            weights = torch.from_numpy(np.stack(maps)).to(prob.device, prob.dtype)
        return spatial_loss(prob, self.loss, weights, reduction)


def supervised_loss(logits, targets, kind="cross_entropy", weight=None, reduction="mean"):
    """E_S of the network's outputs at labelled pixels.

    Parameters
    ----------
    logits : Tensor, shape (B, K) or (B, K, H, W)
    targets : Tensor of int64, shape (B,) or (B, H, W)
        Classes; -1 = unlabelled (left out).
    kind : {"cross_entropy", "squared_error"}
        "cross_entropy" of the softmax; "squared_error": ``(1/2) sum_k (p_k - t_k)^2`` of the
        softmax outputs p and the one-hot target t (Caffe's Euclidean loss), which for K = 2 is
        eq. 1's ``(f - L)^2`` with f = p_1.
    weight : Tensor, shape (K,), or None
        Weight of a pixel of class k (None: 1).
    reduction : {"mean", "sum"}
        "sum": sum_j w_j l_j over the labelled pixels j; "mean": that over sum_j w_j (torch's
        weighted mean).

    Returns
    -------
    Tensor
    """
    if kind == "cross_entropy":
        return F.cross_entropy(logits, targets, weight=weight, ignore_index=-1, reduction=reduction)
    if kind != "squared_error":
        raise ValueError(f"supervised loss must be one of {SUPERVISED_LOSSES}, got {kind!r}")
    labelled = targets >= 0
    t = targets.clamp(min=0)
    onehot = F.one_hot(t, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
    per_pixel = 0.5 * ((logits.softmax(1) - onehot) ** 2).sum(1)
    w = labelled.to(logits.dtype) if weight is None else weight[t] * labelled
    total = (per_pixel * w).sum()
    return total if reduction == "sum" else total / w.sum()


def objective(net, patches, targets, tiles=None, alpha=0.0, spatial=None, places=None, supervised="cross_entropy"):
    """The training loss E_S + alpha E_U of one mini-batch.

    Parameters
    ----------
    net : PatchNet
    patches : Tensor, shape (B, C, P, P)
        Patches centred on labelled pixels.
    targets : Tensor of int64, shape (B,)
        Their classes.
    tiles : Tensor, shape (T, C, t + P - 1, t + P - 1), or None
        Inputs of t x t output tiles, evaluated densely for the spatial term.
    alpha : float
        Weight of the spatial term.
    spatial : SpatialTerm or None
        E_U (None: the TV).
    places : sequence of (i, y, x), or None
        Where each tile's outputs start in which training image (:meth:`SpatialTerm.__call__`);
        contrast-sensitive terms need them.
    supervised : {"cross_entropy", "squared_error"}
        E_S (:func:`supervised_loss`).

    Returns
    -------
    loss, sup, sp : Tensor
        ``sup`` = mean E_S per labelled pixel; ``sp`` = the spatial term's mean per pixel of the
        tiles' probability maps (:func:`spatial_loss`), 0 without tiles; ``loss = sup + alpha * sp``.
    """
    sup = supervised_loss(net(patches).flatten(1), targets, supervised)
    if tiles is None or alpha == 0:
        return sup, sup, torch.zeros((), dtype=sup.dtype)
    sp = (spatial or SpatialTerm())(net(tiles, dense=True).softmax(1), places)
    return sup + alpha * sp, sup, sp


def grid_regions(h, w, side=None):
    """Near-equal blocks of at most ``side`` x ``side`` pixels that partition an h x w map.

    Parameters
    ----------
    h, w : int
        Map size.
    side : int or None
        Largest block side; None: one block, the whole map.

    Returns
    -------
    list of (y0, y1, x0, x1)
        Half-open row and column ranges, row-major. Rows are cut into ``ceil(h / side)`` parts of
        ``floor`` or ``ceil`` of h over that count (and columns alike), so no sliver is left over.
    """
    if side is None:
        return [(0, h, 0, w)]

    def cuts(n):
        m = -(-n // side)
        b = [i * n // m for i in range(m + 1)]
        return list(zip(b[:-1], b[1:]))

    return [(y0, y1, x0, x1) for y0, y1 in cuts(h) for x0, x1 in cuts(w)]


def dense_objective(net, padded, labels, regions, alpha=0.0, class_weight=None, max_outputs=1 << 15,
                    backward=True, spatial=None, supervised="cross_entropy"):
    """The loss E_S + alpha E_U of one step of fully convolutional training, and its gradient.

    Parameters
    ----------
    net : PatchNet
    padded : sequence of Tensor, shape (C, H + P - 1, W + P - 1)
        The training images padded so that output (y, x) is the patch whose corner is input
        (y, x) (:meth:`chm.ConvNet._pad`); cast to the network's dtype and device piece by piece,
        so they may be stored in half precision.
    labels : sequence of int ndarray, shape (H, W)
        -1 unlabelled, else the class.
    regions : sequence of (i, y0, y1, x0, x1)
        The step's output regions (half-open ranges) of image ``i``; disjoint, e.g. cells of
        :func:`grid_regions`.
    alpha : float
        Weight of the spatial term; 0 skips it and every piece without a labelled pixel.
    class_weight : array_like, shape (K,), or None
        Weight of a labelled pixel of class k in E_S (None: 1).
    max_outputs : int
        Memory bound: a region is evaluated (and back-propagated) in strips of rows of about this
        many outputs. The result does not depend on it beyond float rounding.
    backward : bool
        Add the loss's gradient to the parameters' ``.grad``, one strip's graph at a time; False
        only evaluates (e.g. under ``torch.no_grad()``).
    spatial : SpatialTerm or None
        E_U (None: the TV).
    supervised : {"cross_entropy", "squared_error"}
        E_S (:func:`supervised_loss`).

    Returns
    -------
    loss, sup, sp : float
        ``sup`` = sum_j w_j l_j / sum_j w_j over the labelled pixels j inside the regions
        (l_j their E_S, w_j = ``class_weight`` of j's class; 0 without labelled pixels): the mean
        E_S per labelled pixel, as :func:`objective`. ``sp`` = the spatial term's sum over the
        valid centres inside the regions (pixels whose 3 x 3 neighbourhood lies in their image),
        divided by their number: its mean per centre, as the patch mode's tiles (0 when alpha = 0).
        ``loss = sup + alpha * sp``.

    Notes
    -----
    Each strip is evaluated with one more row and column on every side (inside the image): its
    valid centres are then exactly the centres it owns, with their whole neighbourhoods, and the
    rim's labels are masked out. Regions that partition the images therefore count every
    labelled pixel and every centre exactly once: the summed spatial loss is that of the whole
    maps (eq. 2 over all of the images, :meth:`chm.semi.losses.SpatialLoss.value`; a contrast-
    sensitive loss weighs each centre from its own image, at that image's contrast scale). The
    dense outputs equal the per-patch ones, so the gradient of ``sup`` is that of :func:`objective`
    on the same pixels' patches.
    """
    spatial = spatial or SpatialTerm()
    p = net.patch_size
    ref = next(net.parameters())
    cw = None if class_weight is None else torch.as_tensor(np.asarray(class_weight), dtype=ref.dtype,
                                                            device=ref.device)
    pieces, n_lab, n_centres = [], 0.0, 0
    for i, y0, y1, x0, x1 in regions:
        h, w = labels[i].shape
        xa, xb = max(x0 - 1, 0), min(x1 + 1, w)
        rows = max(1, max_outputs // (xb - xa) - 2)
        for r0 in range(y0, y1, rows):
            r1 = min(r0 + rows, y1)
            ya, yb = max(r0 - 1, 0), min(r1 + 1, h)
            own = np.asarray(labels[i][r0:r1, x0:x1], dtype=np.int64)
            lab = np.full((yb - ya, xb - xa), -1, dtype=np.int64)  # the rim's labels are not this strip's
            lab[r0 - ya:r1 - ya, x0 - xa:x1 - xa] = own
            seen = own[own >= 0]
            n_lab += len(seen) if class_weight is None else float(np.asarray(class_weight)[seen].sum())
            centres = max(0, min(r1, h - 1) - max(r0, 1)) * max(0, min(x1, w - 1) - max(x0, 1))
            n_centres += centres
            pieces.append((i, ya, yb, xa, xb, lab, len(seen) > 0, centres))
    sup_total = sp_total = 0.0
    for i, ya, yb, xa, xb, lab, has_labels, centres in pieces:
        with_sp = alpha > 0 and centres > 0
        if not (has_labels or with_sp):
            continue  # nothing to learn from this strip: skip its forward pass
        x = padded[i][None, :, ya:yb + p - 1, xa:xb + p - 1].to(ref.device, ref.dtype)
        logits = net(x, dense=True)
        term = 0
        if has_labels:
            target = torch.from_numpy(lab)[None].to(ref.device)
            sup = supervised_loss(logits, target, supervised, cw, reduction="sum") / n_lab
            sup_total += sup.item()
            term = sup
        if with_sp:
            sp = spatial(logits.softmax(1), [(i, ya, xa)], reduction="sum") / n_centres
            sp_total += sp.item()
            term = term + alpha * sp
        if backward:
            term.backward()
    return sup_total + alpha * sp_total, sup_total, sp_total
