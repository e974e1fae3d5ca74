"""The paper's ConvNet patch classifier (section 5) and the TV loss, in PyTorch.

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

Two training objectives share :func:`tv_loss` (eq. 8): :func:`objective` (patch mode: labelled
patches plus small dense tiles for the TV term) and :func:`dense_objective` (fully convolutional
mode: whole images or crops of them, :func:`grid_regions`, evaluated densely; cross-entropy at the
labelled pixels inside them and TV over every pixel of them).
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..semi.losses import TV

__all__ = ["PatchNet", "dense_objective", "grid_regions", "lrn", "objective", "tv_loss",
           "valid_patch_sizes"]

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


def _tv_kernel(dtype, device):
    st = torch.as_tensor(TV().stencils, dtype=dtype, device=device)  # eq. 11 / 8, as chm.losses.TV
    return st[:, None]  # (2, 1, 3, 3)


def tv_loss(prob, reduction="mean"):
    """Total variation of probability maps (paper eq. 8): Sobel |d/dx| + |d/dy|, all classes.

    Parameters
    ----------
    prob : Tensor, shape (B, K, H, W)
        Class probabilities, H, W >= 3.
    reduction : {"mean", "sum"}
        "sum": over every valid centre (the 3 x 3 neighbourhood inside the map), class and both
        directions, exactly :meth:`chm.losses.TV.value` of each map. "mean": that sum divided by
        the number of centres B (H-2) (W-2), the TV per pixel.

    The stencils are eq. 11 divided by 8 (as :func:`chm.losses.TV`); autograd's subgradient of
    ``|r|`` is ``sign(r)`` (0 at 0), so the gradient reaching each of the 9 neighbourhood outputs is
    the eq. 15 coefficient.
    """
    b, k, h, w = prob.shape
    r = F.conv2d(prob.reshape(b * k, 1, h, w), _tv_kernel(prob.dtype, prob.device))
    total = r.abs().sum()
    return total if reduction == "sum" else total / (b * (h - 2) * (w - 2))


def objective(net, patches, targets, tiles=None, alpha=0.0):
    """The training loss E_S + alpha E_U of one mini-batch.

    Parameters
    ----------
    net : PatchNet
    patches : Tensor, shape (B, C, P, P)
        Patches centred on labelled pixels.
    targets : Tensor of int64, shape (B,)
        Their classes.
    tiles : Tensor, shape (T, C, t + P - 1, t + P - 1), or None
        Inputs of t x t output tiles, evaluated densely for the TV term.
    alpha : float
        TV weight.

    Returns
    -------
    loss, ce, tv : Tensor
        ``ce`` = mean cross-entropy of the softmax outputs at the labelled pixels (E_S per
        labelled pixel); ``tv`` = :func:`tv_loss` (mean per pixel) of the tiles' probability maps,
        0 without tiles; ``loss = ce + alpha * tv``.
    """
    ce = F.cross_entropy(net(patches).flatten(1), targets)
    if tiles is None or alpha == 0:
        return ce, ce, torch.zeros((), dtype=ce.dtype)
    tv = tv_loss(net(tiles, dense=True).softmax(1))
    return ce + alpha * tv, ce, tv


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
                    backward=True):
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
        TV weight; 0 skips the TV term and every piece without a labelled pixel.
    class_weight : array_like, shape (K,), or None
        Weight of a labelled pixel of class k in the cross-entropy (None: 1).
    max_outputs : int
        Memory bound: a region is evaluated (and back-propagated) in strips of rows of about this
        many outputs. The result does not depend on it beyond float rounding.
    backward : bool
        Add the loss's gradient to the parameters' ``.grad``, one strip's graph at a time; False
        only evaluates (e.g. under ``torch.no_grad()``).

    Returns
    -------
    loss, ce, tv : float
        ``ce`` = sum_j w_j CE_j / sum_j w_j over the labelled pixels j inside the regions
        (w_j = ``class_weight`` of j's class; 0 without labelled pixels): the mean cross-entropy
        per labelled pixel, as :func:`objective`. ``tv`` = :func:`tv_loss`'s sum over the valid
        centres inside the regions (pixels whose 3 x 3 neighbourhood lies in their image), divided
        by their number: the mean TV per centre, as the patch mode's tiles (0 when alpha = 0).
        ``loss = ce + alpha * tv``.

    Notes
    -----
    Each strip is evaluated with one more row and column on every side (inside the image): its
    valid centres are then exactly the centres it owns, with their whole neighbourhoods, and the
    rim's labels are masked out. Regions that partition the images therefore count every
    labelled pixel and every centre exactly once: the summed TV is that of the whole maps
    (eq. 2 / 8 over all of the images, :meth:`chm.losses.TV.value`). The dense outputs equal the
    per-patch ones, so the gradient of ``ce`` is that of :func:`objective` on the same pixels' patches.
    """
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
    ce_total = tv_total = 0.0
    for i, ya, yb, xa, xb, lab, has_labels, centres in pieces:
        with_tv = alpha > 0 and centres > 0
        if not (has_labels or with_tv):
            continue  # nothing to learn from this strip: skip its forward pass
        x = padded[i][None, :, ya:yb + p - 1, xa:xb + p - 1].to(ref.device, ref.dtype)
        logits = net(x, dense=True)
        term = 0
        if has_labels:
            target = torch.from_numpy(lab)[None].to(ref.device)
            ce = F.cross_entropy(logits, target, weight=cw, ignore_index=-1, reduction="sum") / n_lab
            ce_total += ce.item()
            term = ce
        if with_tv:
            tv = tv_loss(logits.softmax(1), reduction="sum") / n_centres
            tv_total += tv.item()
            term = term + alpha * tv
        if backward:
            term.backward()
    return ce_total + alpha * tv_total, ce_total, tv_total
