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
"""

import torch
from torch import nn
from torch.nn import functional as F

from ..semi.losses import TV

__all__ = ["PatchNet", "lrn", "objective", "tv_loss", "valid_patch_sizes"]

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
