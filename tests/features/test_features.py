"""Tests of the ``chm.features`` package (the CHM filter bank)."""

import json
import pickle

import numpy as np
import pytest
from scipy import ndimage as ndi

from chm.features import (ALL_FAMILIES, COLOUR_FAMILIES, FAMILIES, FilterBank, StencilRows, edge, gabor, haar, hog,
                          intensity, sift, stencil, stencil_offsets, stencils)
from chm.features.bank import SUPPORT
from tests._reference.features import (contrasts_reference, gather_reference, hog_assemble_reference,
                                       sift_assemble_reference)

NAMES = list(FAMILIES)


def smooth_image(shape, seed=0):
    """Random smooth image scaled to [0, 1]."""
    im = ndi.gaussian_filter(np.random.default_rng(seed).random(shape), 1.5)
    return (im - im.min()) / max(np.ptp(im), 1e-12)


def step_image(shape=(20, 24), col=12):
    """Dark left, bright right: a vertical step between columns col-1 and col."""
    im = np.zeros(shape)
    im[:, col:] = 1.0
    return im


# ---------------------------------------------------------------- all families

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(17, 23), (16, 24), (1, 1), (1, 5), (3, 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shape_dtype_finite(name, shape, dtype):
    fn, k = FAMILIES[name]
    out = fn(smooth_image(shape).astype(dtype))
    assert out.shape == shape + (k,)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_input_untouched_and_precision_independent(name):
    fn = FAMILIES[name][0]
    im = smooth_image((13, 16), seed=2)
    ref = im.copy()
    im.flags.writeable = False                        # read-only input must work
    res64 = fn(im)
    np.testing.assert_array_equal(im, ref)
    res32 = fn(im.astype(np.float32))
    np.testing.assert_allclose(res32, res64, atol=2e-4)
    # non-contiguous (transposed / strided) input gives the same as a copy
    np.testing.assert_array_equal(fn(im.T), fn(np.ascontiguousarray(im.T)))


@pytest.mark.parametrize("name", NAMES)
def test_input_validation(name):
    fn = FAMILIES[name][0]
    with pytest.raises(ValueError, match="2-D"):
        fn(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="2-D"):
        fn(np.zeros(5))
    with pytest.raises(ValueError, match="at least 1x1"):
        fn(np.zeros((0, 4)))
    bad = np.zeros((4, 4))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(bad)
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        fn(bad)
    with pytest.raises(TypeError, match="floating"):
        fn(np.zeros((4, 4), dtype=np.uint8))


@pytest.mark.parametrize("name", NAMES)
def test_out_argument(name):
    fn, k = FAMILIES[name]
    im = smooth_image((9, 11))
    big = np.full((9, 11, k + 3), -7, dtype=np.float32)
    res = fn(im, out=big[:, :, 1:k + 1])              # a non-contiguous view
    np.testing.assert_array_equal(big[:, :, 1:k + 1], fn(im))
    assert np.shares_memory(res, big)
    assert (big[:, :, 0] == -7).all() and (big[:, :, k + 1:] == -7).all()
    with pytest.raises(ValueError, match="shape"):
        fn(im, out=np.empty((9, 11, k + 1), np.float32))
    with pytest.raises(TypeError, match="float32"):
        fn(im, out=np.empty((9, 11, k)))


# ---------------------------------------------------------------- constant images

@pytest.mark.parametrize("fn", [haar, edge, hog, sift])
@pytest.mark.parametrize("value", [0.0, 0.37, 1.0])
def test_constant_image_is_zero(fn, value):
    out = fn(np.full((13, 18), value))
    np.testing.assert_allclose(out, 0.0, atol=1e-6)


def _gabor_kernel(sigma, theta, lam, psi):
    """MATLAB gabor_fn with gamma = 1, written from the formula."""
    h = int(np.ceil(3 * sigma))
    x, y = np.meshgrid(np.arange(-h, h + 1), np.arange(-h, h + 1))
    xt = x * np.cos(theta) + y * np.sin(theta)
    yt = -x * np.sin(theta) + y * np.cos(theta)
    return np.exp(-(xt**2 + yt**2) / (2 * sigma**2)) * np.cos(2 * np.pi * xt / lam + psi)


def test_gabor_constant_image():
    from chm.features.gabor import FREQ_FACTORS, SIGMAS, THETAS
    c = 0.3
    g = gabor(np.full((12, 15), c))
    # symmetric image: the odd response vanishes, theta and theta + pi agree
    np.testing.assert_allclose(g[..., [36 * s + 3 * t + j for s in range(5) for t in range(6) for j in range(3)]],
                               g[..., [36 * s + 3 * (t + 6) + j for s in range(5) for t in range(6) for j in range(3)]],
                               atol=1e-5)
    # and the even response is c * sum(kernel), clipped to [0, 1]
    for s, sigma in enumerate(SIGMAS):
        for t, theta in enumerate(THETAS):
            for j, f in enumerate(FREQ_FACTORS):
                expected = np.clip(c * _gabor_kernel(sigma, theta, f * sigma, 0).sum(), 0, 1)
                np.testing.assert_allclose(g[..., 36 * s + 3 * t + j], expected, atol=1e-5)


# ---------------------------------------------------------------- reference implementations

def test_haar_matches_direct_window_sums():
    im = smooth_image((11, 14), seed=3)
    p = np.pad(im, 8, mode="symmetric")
    got = haar(im)
    for y in (0, 5, 10):
        for x in (0, 7, 13):
            win = p[y + 1:y + 17, x + 1:x + 17]           # rows y-7..y+8, cols x-7..x+8
            total = win.sum() + 1e-5
            hx = (win[:, 8:].sum() - win[:, :8].sum()) / total
            hy = (win[8:].sum() - win[:8].sum()) / total
            np.testing.assert_allclose(got[y, x], [hx, hy], rtol=1e-5, atol=1e-6)


def test_haar_black_windows_are_zero():
    im = np.zeros((40, 40))
    im[:, 30:] = 1.0
    assert (haar(im)[:, :20] == 0).all()


def test_edge_matches_2d_kernels_and_neighbourhood_order():
    im = smooth_image((15, 19), seed=4)
    t = np.arange(-3, 4)
    g = np.exp(-t**2 / 2.0)
    kx = np.outer(g, -t * g)
    kx /= np.linalg.norm(kx)
    mag = np.hypot(ndi.correlate(im, kx, mode="reflect"), ndi.correlate(im, kx.T, mode="reflect"))
    p = np.pad(mag, 3, mode="symmetric")
    got = edge(im)
    k = 0
    for dx in range(-3, 4):                    # dx slowest, dy fastest
        for dy in range(-3, 4):
            np.testing.assert_allclose(got[..., k], p[3 + dy:18 + dy, 3 + dx:22 + dx], atol=1e-5)
            k += 1


def test_gabor_matches_spatial_correlation():
    from chm.features.gabor import FREQ_FACTORS, SIGMAS, THETAS
    im = smooth_image((21, 26), seed=5)
    got = gabor(im)
    for s, sigma in enumerate(SIGMAS):
        for t in (0, 2, 5, 6, 9, 11):
            j = (s + t) % 3
            lam = FREQ_FACTORS[j] * sigma
            a = ndi.correlate(im, _gabor_kernel(sigma, THETAS[t], lam, 0), mode="reflect")
            b = ndi.correlate(im, _gabor_kernel(sigma, THETAS[t], lam, np.pi / 2), mode="reflect")
            ref = np.sqrt(np.clip(a, 0, 1)**2 + np.clip(b, 0, 1)**2)
            np.testing.assert_allclose(got[..., 36 * s + 3 * t + j], ref, atol=2e-5)


def test_gabor_clipping_separates_opposite_orientations():
    g = gabor(step_image((30, 40), 20))
    assert np.abs(g[..., :18] - g[..., 18:36]).max() > 0.1


def _sift_reference(im):
    """Dense SIFT following the MATLAB steps literally (with symmetric padding)."""
    from chm.features.sift import _G5, _PRESMOOTH
    sm = ndi.correlate(im, np.outer(_PRESMOOTH, _PRESMOOTH), mode="nearest")
    sm = sm / sm.max()
    P = 30
    p = np.pad(sm, P, mode="symmetric")
    gy, gx = np.gradient(np.outer(_G5, _G5))
    gx *= 2 / np.abs(gx).sum()
    gy *= 2 / np.abs(gy).sum()
    ix, iy = ndi.correlate(p, gx), ndi.correlate(p, gy)
    mag, theta = np.hypot(ix, iy), np.arctan2(iy, ix)
    w = np.zeros(16)                   # MATLAB weight_x, taps at 1-based 4..11
    w[3:11] = [.125, .375, .625, .875, .875, .625, .375, .125]

    def conv_same(c, axis):            # MATLAB conv2(..., 'same'), 16 taps
        o = np.zeros_like(c)
        for j in range(16):
            o += w[j] * np.roll(c, (j + 1) - 9, axis=axis)
        return o

    chans = [conv_same(conv_same(np.maximum(np.cos(theta - a), 0)**9 * mag, 0), 1)
             for a in np.arange(8) * np.pi / 4]
    H, W = im.shape
    ref = np.stack([chans[a][P + dy:P + dy + H, P + dx:P + dx + W]
                    for dx in (-7, -3, 1, 5) for dy in (-7, -3, 1, 5) for a in range(8)], axis=-1)
    v = ref.reshape(-1, 128)
    n = np.linalg.norm(v, axis=1)
    big = n > 1
    vb = np.minimum(v[big] / n[big, None], 0.2)
    v[big] = vb / np.linalg.norm(vb, axis=1)[:, None]
    return v.reshape(H, W, 128)


def test_sift_matches_literal_reference():
    im = smooth_image((19, 14), seed=6)
    got = sift(im)
    np.testing.assert_allclose(got, _sift_reference(im), atol=1e-5)
    # low-contrast image: every descriptor has norm <= 1 and stays unnormalised
    dim = 0.5 + 0.02 * im[::-1]
    np.testing.assert_allclose(sift(dim), _sift_reference(dim), atol=1e-5)


def test_sift_assembly_kernel_matches_numpy_reference():
    from chm.features.sift import _SAMPLES, _assemble

    rng = np.random.default_rng(5)
    H, W, pad = 13, 19, 11
    # channel values around the Lowe threshold: some descriptors are normalised, some not
    channels = (rng.random((H + 2 * pad + 1, W + 2 * pad + 1, 8)) * 0.2).astype(np.float32)
    channels[:, : W // 2] *= 0.2
    want = sift_assemble_reference(channels, pad, _SAMPLES, np.zeros((H, W, 128), np.float32))
    big = np.zeros((H, W, 140), np.float32)
    _assemble(channels, pad, np.array(_SAMPLES), big[:, :, 5:133])  # a strided view, as FilterBank passes
    np.testing.assert_allclose(big[:, :, 5:133], want, rtol=1e-5, atol=1e-7)
    assert not big[:, :, :5].any() and not big[:, :, 133:].any()
    norms = np.linalg.norm(want.reshape(-1, 128), axis=1)
    assert (norms < 0.99).any() and np.allclose(norms[norms > 0.99], 1, atol=1e-5)  # both branches taken


def test_haar_contrast_kernel_equals_numpy_reference():
    from chm.features.haar import _contrasts

    rng = np.random.default_rng(7)
    H, W = 13, 19
    ii = np.cumsum(np.cumsum(rng.random((H + 17, W + 17)), axis=0), axis=1)
    ii[:, :20] = ii[:, :1]  # no intensity in the first columns: zero-sum windows give 0
    want = contrasts_reference(ii, 1, np.zeros((H, W, 2), np.float32))
    big = np.full((H, W, 5), 7, np.float32)
    _contrasts(ii, 1, big[:, :, 1:3])  # a strided view, as FilterBank passes
    np.testing.assert_array_equal(big[:, :, 1:3], want)
    assert (big[:, :, [0, 3, 4]] == 7).all() and (want == 0).any() and (want != 0).any()


def test_hog_assembly_kernel_matches_numpy_reference():
    from chm.features.hog import _assemble

    rng = np.random.default_rng(6)
    H, W, first = 13, 19, 6
    votes = (rng.random((H + 2 * first + 10, W + 2 * first + 10, 9)) * 5).astype(np.float32)
    votes[:4] = 0  # flat rows: all-zero histograms stay zero
    want = hog_assemble_reference(votes, first, np.zeros((H, W, 36), np.float32))
    big = np.zeros((H, W, 40), np.float32)
    _assemble(votes, first, big[:, :, 2:38])  # a strided view, as FilterBank passes
    np.testing.assert_allclose(big[:, :, 2:38], want, rtol=1e-5, atol=1e-7)
    assert not big[:, :, :2].any() and not big[:, :, 38:].any() and want.max() <= 1


def test_sift_lowe_normalisation():
    s = sift(smooth_image((24, 24), seed=7)).reshape(-1, 128)
    n = np.linalg.norm(s, axis=1)
    assert (s >= 0).all()
    assert np.all((n <= 1 + 1e-5))
    np.testing.assert_allclose(n[n > 0.999], 1.0, atol=1e-5)


# ---------------------------------------------------------------- step edge

def test_step_edge():
    im = step_image()
    h = haar(im)
    assert (h[:, 5:19, 0] > 0.05).all()          # bright on the right -> Hx > 0
    assert (haar(1.0 - im)[:, 5:19, 0] < -0.05).all()
    np.testing.assert_allclose(h[..., 1], 0, atol=1e-6)
    np.testing.assert_allclose(haar(np.ascontiguousarray(im.T))[..., 1], h[..., 0].T, atol=1e-6)

    e = edge(im)[..., 24]                        # channel 24: the pixel itself
    assert set(np.argmax(e, axis=1)) <= {11, 12}
    np.testing.assert_allclose(e[:, 11], e[:, 12], rtol=1e-5)
    np.testing.assert_allclose(e[:, :5], 0, atol=1e-6)

    g = hog(im).reshape(20, 24, 4, 9)
    near = g[:, 10:14]
    # horizontal gradient (0 deg) splits evenly between bins 0 (10 deg) and 8 (170 deg)
    assert near[..., [0, 8]].sum() > 0
    np.testing.assert_allclose(near[..., 1:8], 0, atol=1e-6)
    gh = hog(np.ascontiguousarray(im.T)).reshape(24, 20, 4, 9)
    np.testing.assert_allclose(np.delete(gh, 4, axis=-1), 0, atol=1e-6)   # 90 deg: bin 4 only


def test_hog_matches_per_pixel_histograms():
    im = smooth_image((9, 12), seed=10)
    H, W = im.shape
    p = np.pad(im, 10, mode="symmetric")             # image pixel y at row y + 10
    gx = p[1:-1, 2:] - p[1:-1, :-2]                  # grid pixel y at row y + 9
    gy = p[:-2, 1:-1] - p[2:, 1:-1]
    mag = np.hypot(gx, gy)
    pos = np.mod(np.arctan2(gy, gx), np.pi) / (np.pi / 9) - 0.5
    lo = np.floor(pos)
    got = hog(im)
    for y in range(H):
        for x in range(W):
            v = np.zeros(36)
            for a in range(2):
                for b in range(2):
                    for yy in range(y - 7 + 8 * a, y + 1 + 8 * a):     # cell rows y-7+8a..y+8a
                        for xx in range(x - 7 + 8 * b, x + 1 + 8 * b):
                            m, f, l = mag[yy + 9, xx + 9], pos[yy + 9, xx + 9], lo[yy + 9, xx + 9]
                            k = 9 * (2 * a + b)
                            v[k + int(l) % 9] += m * (1 - (f - l))
                            v[k + int(l + 1) % 9] += m * (f - l)
            v /= np.sqrt(v @ v + 1e-10)
            v = np.minimum(v, 0.2)
            v /= np.sqrt(v @ v + 1e-10)
            np.testing.assert_allclose(got[y, x], v, atol=1e-5)


def test_hog_l2hys_properties():
    g = hog(smooth_image((30, 30), seed=8)).reshape(-1, 36)
    assert g.min() >= 0 and g.max() <= 1
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), 1.0, atol=1e-4)


# ---------------------------------------------------------------- stencil

def test_stencil_offsets():
    assert stencil_offsets(0).tolist() == [[0, 0]]
    assert stencil_offsets(1).tolist() == [[dy, dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    assert stencil_offsets(2).tolist() == [[-2, -2], [-2, 0], [-2, 2], [-1, -1], [-1, 0], [-1, 1],
                                           [0, -2], [0, -1], [0, 0], [0, 1], [0, 2],
                                           [1, -1], [1, 0], [1, 1], [2, -2], [2, 0], [2, 2]]
    for r in (3, 7, 10):
        offs = stencil_offsets(r)
        assert offs.shape == (8 * r + 1, 2)
        assert len({tuple(o) for o in offs}) == len(offs)
        assert (np.diff(offs[:, 0]) >= 0).all()
    with pytest.raises(ValueError):
        stencil_offsets(-1)
    with pytest.raises(TypeError):
        stencil_offsets(2.5)


@pytest.mark.parametrize("radius", [0, 2, 7])
@pytest.mark.parametrize("shape", [(9, 13), (1, 1), (2, 6)])
def test_stencil_values(radius, shape):
    im = np.random.default_rng(1).random(shape) * 1.1 - 0.05      # overshoot is kept
    got = stencil(im, radius)
    p = np.pad(im, radius, mode="symmetric")
    H, W = shape
    assert got.shape == (H, W, 8 * radius + 1)
    for k, (dy, dx) in enumerate(stencil_offsets(radius)):
        np.testing.assert_array_equal(got[..., k], p[radius + dy:radius + dy + H,
                                                     radius + dx:radius + dx + W].astype(np.float32))


def test_gather_kernel_matches_numpy_reference():
    from chm.features.stencil import gather

    rng = np.random.default_rng(3)
    pad, H, W = 6, 11, 17
    padded = rng.random((3, H + 2 * pad, W + 2 * pad)).astype(np.float32)
    offsets = rng.integers(-pad, pad + 1, size=(3, 5, 2))
    big = np.zeros((H, W, 20), np.float32)
    want = np.zeros((H, W, 15), np.float32)
    gather(padded, pad, offsets, big[:, :, 2:17])  # a strided view, as FilterBank passes
    np.testing.assert_array_equal(big[:, :, 2:17], gather_reference(padded, pad, offsets, want))
    assert not big[:, :, :2].any() and not big[:, :, 17:].any()
    one = np.empty((H, W, 5), np.float32)  # a single 2-D map
    np.testing.assert_array_equal(gather(padded[1], pad, offsets[1], one), want[:, :, 5:10])


@pytest.mark.parametrize("shape", [(9, 13), (2, 3), (1, 1)])
def test_stencils_equal_each_maps_stencil(shape):
    # One wide padding for all dilations gives what each map's own padding gives, also where
    # the padding is wider than the map (the reflection repeats).
    rng = np.random.default_rng(4)
    maps = [rng.random(shape) for _ in range(3)]
    dilations = [1, 4, 2]
    got = stencils(maps, 3, dilations)
    want = np.concatenate([stencil(m, 3, dilation=d) for m, d in zip(maps, dilations)], axis=2)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="dilations"):
        stencils(maps, 3, [1, 2])
    with pytest.raises(ValueError, match="equal shape"):
        stencils([maps[0], rng.random((4, 4))], 3, [1, 1])


def test_stencil_rows_slices_equal_the_full_matrix():
    rng = np.random.default_rng(5)
    maps = [rng.random((7, 5)) for _ in range(2)]
    rows = StencilRows(maps, 2, [1, 2])
    full = stencils(maps, 2, [1, 2]).reshape(35, -1)
    assert rows.shape == full.shape and len(rows) == 35
    for a, b in [(0, 35), (3, 4), (4, 13), (10, 15), (34, 99), (20, 20)]:
        np.testing.assert_array_equal(rows[a:b], full[a:b])
    np.testing.assert_array_equal(rows[:], full)
    with pytest.raises(TypeError, match="slices"):
        rows[::2]


@pytest.mark.parametrize("shape", [(9, 13), (3, 2)])
def test_stencil_dilation_spreads_the_offsets(shape):
    im = np.random.default_rng(2).random(shape)
    r, d = 2, 3
    got = stencil(im, r, dilation=d)
    p = np.pad(im, r * d, mode="symmetric")     # pads wider than the image repeat the reflection
    H, W = shape
    for k, (dy, dx) in enumerate(stencil_offsets(r)):
        np.testing.assert_array_equal(got[..., k], p[r * d + d * dy:r * d + d * dy + H,
                                                     r * d + d * dx:r * d + d * dx + W].astype(np.float32))
    np.testing.assert_array_equal(stencil(im, r, dilation=1), stencil(im, r))
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="dilation"):
            stencil(im, r, dilation=bad)


def test_dilated_stencil_of_upsampled_map_is_coarse_stencil():
    """A level-j map replicated up to full size, sampled with dilation 2**j at the top-left pixel
    of each block, gives the coarse map's own stencil there (away from the border)."""
    from chm.cascade.pyramid import upsample
    coarse = np.random.default_rng(3).random((12, 14))
    j, r = 2, 3
    fine = upsample(coarse, j, (48, 56))
    got = stencil(fine, r, dilation=2 ** j)[:: 2 ** j, :: 2 ** j]
    want = stencil(coarse, r)
    np.testing.assert_array_equal(got[r:-r, r:-r], want[r:-r, r:-r])


def test_intensity_is_radius10_stencil():
    im = smooth_image((8, 12))
    np.testing.assert_array_equal(intensity(im), stencil(im, 10))
    np.testing.assert_array_equal(intensity(im)[..., 40], im.astype(np.float32))   # centre


# ---------------------------------------------------------------- FilterBank

def test_filterbank_layout():
    bank = FilterBank()
    assert bank.n_features == 476
    assert bank.families == tuple(NAMES)
    stops = [(sl.start, sl.stop) for sl in bank.slices.values()]
    assert stops == [(0, 2), (2, 38), (38, 87), (87, 267), (267, 395), (395, 476)]
    names = bank.names
    assert len(names) == 476 and len(set(names)) == 476
    assert names[0] == "haar[0]" and names[87] == "gabor[0]" and names[104] == "gabor[17]"
    assert names[-1] == "intensity[80]"


def test_filterbank_matches_families():
    im = smooth_image((14, 17), seed=9)
    bank = FilterBank()
    X = bank(im)
    assert X.shape == (14, 17, 476) and X.dtype == np.float32
    for name, sl in bank.slices.items():
        np.testing.assert_array_equal(X[..., sl], FAMILIES[name][0](im))


def test_filterbank_subset_and_order():
    im = smooth_image((10, 9))
    bank = FilterBank(("intensity", "haar"))
    assert bank.n_features == 83
    assert bank.slices == {"intensity": slice(0, 81), "haar": slice(81, 83)}
    X = bank(im)
    np.testing.assert_array_equal(X[..., :81], intensity(im))
    np.testing.assert_array_equal(X[..., 81:], haar(im))
    assert FilterBank("edge").n_features == 49


def test_filterbank_bad_names():
    with pytest.raises(ValueError, match="valid names"):
        FilterBank(("haar", "frangi"))
    with pytest.raises(ValueError, match="at least one"):
        FilterBank(())
    with pytest.raises(ValueError, match="duplicate"):
        FilterBank(("haar", "haar"))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        FilterBank(("haar",))(np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        FilterBank(("haar",))(np.zeros((3, 3, 3, 1)))


def test_filterbank_serialisation():
    bank = FilterBank(("hog", "sift", "intensity"))
    d = json.loads(json.dumps(bank.to_dict()))
    again = FilterBank.from_dict(d)
    assert again == bank and again.n_features == bank.n_features
    with pytest.raises(ValueError, match="mismatch"):
        FilterBank.from_dict({**d, "n_features": 5})
    clone = pickle.loads(pickle.dumps(bank))
    assert clone == bank
    im = smooth_image((6, 7))
    np.testing.assert_array_equal(clone(im), bank(im))


def test_filterbank_out_argument():
    bank = FilterBank(("haar", "edge"))
    im = smooth_image((5, 6))
    out = np.zeros((5, 6, 51), np.float32)
    assert bank(im, out=out) is out
    np.testing.assert_array_equal(out, bank(im))
    with pytest.raises(ValueError, match="shape"):
        bank(im, out=np.zeros((5, 6, 50), np.float32))


@pytest.mark.parametrize("families", [("haar", "hog", "edge", "sift", "intensity"), ("colour", "haar", "hog")])
def test_filterbank_many_threads_match_one_by_one(families):
    """Threads over (image, family) pairs give the bank bit for bit, for a pyramid's levels."""
    bank = FilterBank(families)
    rng = np.random.default_rng(3)
    images = [rng.random((23, 31, 3)), rng.random((12, 16, 3)), rng.random((6, 8, 3))]
    if not bank.needs_colour:
        images = [im.mean(axis=2) for im in images]
    threaded = bank.many(images, n_threads=3)
    assert [x.shape for x in threaded] == [im.shape[:2] + (bank.n_features,) for im in images]
    for x, im in zip(threaded, images):
        np.testing.assert_array_equal(x, bank(im))
    with pytest.raises(ValueError, match="2-D|colour"):
        bank.many([images[0], np.zeros((3, 3, 3, 1))], n_threads=2)


def test_colour_known_values_and_bank():
    from skimage.color import rgb2gray, rgb2lab

    from chm.features import COLOUR_FAMILIES
    from chm.features import colour

    rgb = np.array([0.8, 0.3, 0.1])
    img = np.broadcast_to(rgb, (9, 11, 3)).copy()
    f = colour(img)
    lab = rgb2lab(rgb[None, None])[0, 0]
    expected = np.repeat([lab[0] / 100, lab[1] / 200 + 0.5, lab[2] / 200 + 0.5], 6)
    np.testing.assert_allclose(f, np.broadcast_to(expected, f.shape), atol=1e-5)  # constant at every scale
    gray = colour(np.repeat(np.random.default_rng(0).random((9, 11))[..., None], 3, axis=2))
    np.testing.assert_allclose(gray[..., 6:], 0.5, atol=1e-3)  # no chroma in a gray image
    # The bank: gray families see the luminance, colour families the colour image.
    bank = FilterBank(("haar", "colour"))
    assert "colour" in COLOUR_FAMILIES and bank.needs_colour and bank.n_features == 20
    rng = np.random.default_rng(1)
    im = rng.random((12, 13, 3))
    X = bank(im)
    np.testing.assert_allclose(X[..., :2], haar(np.clip(rgb2gray(im), 0, 1)), atol=1e-6)
    np.testing.assert_allclose(X[..., 2:], colour(im), atol=1e-6)
    with pytest.raises(ValueError, match="colour"):
        bank(rng.random((12, 13)))
    with pytest.raises(ValueError, match="RGB"):
        colour(rng.random((12, 13, 2)))


def test_position_known_values_and_pyramid_consistency():
    from chm.features import POSITION_FAMILIES
    from chm.features import position

    f = position(np.zeros((4, 2)))
    np.testing.assert_array_equal(f[:, 0, 0], [0.125, 0.375, 0.625, 0.875])  # (y + 0.5) / H
    np.testing.assert_array_equal(f[0, :, 1], [0.25, 0.75])                   # (x + 0.5) / W
    # A 2x2 block of the full image averages to the value of its pixel in the halved image.
    full, half = position(np.zeros((8, 6))), position(np.zeros((4, 3)))
    np.testing.assert_allclose(full.reshape(4, 2, 3, 2, 2).mean(axis=(1, 3)), half, atol=1e-7)
    bank = FilterBank(("haar", "position"))
    assert "position" in POSITION_FAMILIES and bank.n_features == 4 and not bank.needs_colour
    X = bank(np.random.default_rng(0).random((5, 7, 3)))  # a colour image: position sees its shape
    np.testing.assert_array_equal(X[..., 2:], position(np.zeros((5, 7))))
    with pytest.raises(ValueError, match="2-D"):
        position(np.zeros((3, 3, 3)))


@pytest.mark.parametrize("name", list(ALL_FAMILIES))
def test_filterbank_at_equals_the_whole_image_and_support_is_tight(name, monkeypatch):
    """Crops by each family's SUPPORT give the whole image's features at those pixels (corners
    included), and one pixel less of support does not: the constants are right and no larger."""
    r = SUPPORT[name]
    side = 80 if r is None else 3 * (2 * r + 1) + 10  # room for crops to be chosen over the whole image
    rng = np.random.default_rng(1)
    im = rng.random((side, side + 3, 3)) if name in COLOUR_FAMILIES else rng.random((side, side + 3))
    bank = FilterBank((name,))
    n = 6 if r is None else max(1, im.shape[0] * im.shape[1] // (2 * (2 * r + 1) ** 2) - 2)
    rows = np.r_[0, side - 1, rng.integers(0, side, n)]
    cols = np.r_[side + 2, 0, rng.integers(0, side + 3, n)]
    if r is not None:
        assert 2 * rows.size * (2 * r + 1) ** 2 <= im.shape[0] * im.shape[1]  # the crop path is tested
    want = bank(im)[rows, cols]
    got = bank.at(im, rows, cols)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)  # FFTs (gabor) round differently on a crop
    if r is not None:
        monkeypatch.setitem(SUPPORT, name, r - 1)
        assert np.abs(bank.at(im, rows, cols) - want).max() > max(10 * np.abs(got - want).max(), 1e-7)


def test_filterbank_at_switches_to_the_whole_image_and_checks_its_input():
    im = smooth_image((40, 50))
    bank = FilterBank(("haar", "sift", "edge"))
    rows, cols = np.divmod(np.arange(0, 2000, 7), 50)  # too many pixels for crops
    assert not bank.crops_pay(im.shape, rows.size) and bank.crops_pay((400, 400), rows.size)
    np.testing.assert_allclose(bank.at(im, rows, cols), bank(im)[rows, cols], rtol=0, atol=1e-6)
    assert bank.at(im, [], []).shape == (0, bank.n_features)
    with pytest.raises(ValueError, match="outside"):
        bank.at(im, [40], [0])
    with pytest.raises(ValueError, match="same length"):
        bank.at(im, [1, 2], [0])


def test_filterbank_at_reuses_the_banks_compiled_kernels():
    """Crops run the numba kernels compiled for the bank's outputs, not new versions of them (a
    second version costs a fresh process ~1.5 s of compilation). Own process: a fresh JIT state."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from chm.features import FilterBank\n"
        "b = FilterBank(('haar', 'hog', 'edge', 'sift', 'intensity'))\n"
        "im = np.random.default_rng(0).random((120, 130))\n"
        "b(im)\n"
        "mods = [sys.modules[m] for m in ('chm.features.hog', 'chm.features.sift', 'chm.features.haar', 'chm.features.stencil')]\n"
        "count = lambda: sum(len(v.signatures) for m in mods for v in vars(m).values() if hasattr(v, 'signatures'))\n"
        "before = count()\n"
        "b.at(im, [60, 0], [60, 129]); b.at(im, np.arange(100), np.arange(100))\n"
        "print(before, count())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) >= 4 and out[0] == out[1]
