import math

import numpy as np
import pytest

from chm.cascade.pyramid import (
    BICUBIC_HALVING_WEIGHTS,
    downsample,
    downsample_n,
    level_shape,
    maxpool_labels,
    pool_label_fractions,
    pyramid,
    upsample,
)


# --- slow reference: MATLAB's MyDownSample written out loop by loop -------


def _cubic(x):
    # Keys' cubic with a = -0.5, the kernel of MATLAB's imresize 'bicubic'.
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x <= 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def _contributions(in_len, out_len, mode):
    """imresize's weights and 0-based indices for scale 0.5, antialiased."""
    scale = out_len / in_len
    width = 4 / scale
    rows = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = []
        for p in range(int(math.ceil(width)) + 2):
            j = left + p
            taps.append((j, scale * _cubic(scale * (u - j))))
        total = sum(wt for _, wt in taps)
        out = []
        for j, wt in taps:
            if mode == "replicate":
                j = min(max(j, 1), in_len)
            else:
                aux = list(range(1, in_len + 1)) + list(range(in_len, 0, -1))
                j = aux[(j - 1) % len(aux)]
            out.append((j - 1, wt / total))
        rows.append(out)
    return rows


def _reference_downsample(image, mode="replicate"):
    img = np.array(image, dtype=np.float64)
    # MyDownSample: append a copy of the last row / column when odd.
    if img.shape[0] % 2:
        img = np.concatenate([img, img[-1:]], axis=0)
    if img.shape[1] % 2:
        img = np.concatenate([img, img[:, -1:]], axis=1)
    h, w = img.shape
    tmp = np.zeros((h // 2, w))
    for r, taps in enumerate(_contributions(h, h // 2, mode)):
        for c in range(w):
            tmp[r, c] = sum(wt * img[j, c] for j, wt in taps)
    out = np.zeros((h // 2, w // 2))
    for c, taps in enumerate(_contributions(w, w // 2, mode)):
        for r in range(h // 2):
            out[r, c] = sum(wt * tmp[r, j] for j, wt in taps)
    return out


# --- downsample ------------------------------------------------------------


def test_weights_match_matlab_kernel():
    taps = _contributions(16, 8, "replicate")[4]  # an interior sample
    ws = [wt for _, wt in taps if wt != 0]
    np.testing.assert_array_equal(ws, BICUBIC_HALVING_WEIGHTS)
    assert BICUBIC_HALVING_WEIGHTS.sum() == 1.0


@pytest.mark.parametrize("pos", [16, 17])
def test_impulse_gives_kernel(pos):
    # Two identical columns make the column pass exact, so the output column
    # is the row kernel's response to the impulse.
    img = np.zeros((32, 2))
    img[pos] = 1.0
    out = downsample(img)[:, 0]
    # Output r reads input 2r - 3 + n, so the impulse lands on tap pos + 3 - 2r.
    expected = np.zeros(16)
    for r in range(16):
        n = pos + 3 - 2 * r
        if 0 <= n < 8:
            expected[r] = BICUBIC_HALVING_WEIGHTS[n]
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(np.sort(out[out != 0]), np.sort(BICUBIC_HALVING_WEIGHTS[(pos + 1) % 2 :: 2]))


@pytest.mark.parametrize("shape", [(8, 8), (7, 5), (1, 1), (1, 6), (3, 1)])
def test_constant_stays_constant(shape):
    out = downsample(np.full(shape, 0.3))
    np.testing.assert_allclose(out, 0.3, rtol=0, atol=1e-15)
    assert out.dtype == np.float64


@pytest.mark.parametrize(
    "shape, expected",
    [((8, 6), (4, 3)), ((7, 5), (4, 3)), ((1, 1), (1, 1)), ((2, 1), (1, 1)), ((9, 1), (5, 1))],
)
def test_output_sizes(shape, expected):
    assert downsample(np.zeros(shape)).shape == expected
    assert level_shape(shape, 1) == expected


@pytest.mark.parametrize("mode", ["replicate", "symmetric"])
@pytest.mark.parametrize("shape", [(7, 5), (9, 12), (1, 3), (2, 2), (11, 11), (6, 1)])
def test_matches_explicit_matlab_reference(shape, mode):
    rng = np.random.default_rng(sum(shape))
    img = rng.random(shape)
    np.testing.assert_allclose(
        downsample(img, mode=mode), _reference_downsample(img, mode), rtol=0, atol=1e-14
    )


def test_modes_differ_only_at_the_border():
    img = np.random.default_rng(0).random((20, 20))
    diff = downsample(img) != downsample(img, mode="symmetric")
    assert diff.any()
    assert not diff[2:-2, 2:-2].any()


def test_channels_are_independent():
    rng = np.random.default_rng(1)
    img = rng.random((9, 7, 3))
    out = downsample(img)
    assert out.shape == (5, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], downsample(img[..., c]))


def test_integer_input_is_not_requantised():
    img = np.array([[0, 255], [255, 0]] * 4, dtype=np.uint8)
    out = downsample(img)
    assert out.dtype == np.float64
    assert not np.allclose(out, np.round(out))


def test_downsample_n_and_pyramid():
    img = np.random.default_rng(2).random((23, 17))
    levels = pyramid(img, 3)
    assert [a.shape for a in levels] == [(23, 17), (12, 9), (6, 5), (3, 3)]
    np.testing.assert_array_equal(levels[0], img)
    np.testing.assert_array_equal(levels[3], downsample_n(img, 3))
    np.testing.assert_array_equal(downsample_n(img, 0), img)
    assert level_shape((23, 17, 4), 3) == (3, 3, 4)


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((0, 4)), np.zeros((2, 2, 2, 2))])
def test_bad_images(bad):
    with pytest.raises(ValueError):
        downsample(bad)


def test_bad_counts():
    with pytest.raises(ValueError):
        downsample_n(np.zeros((4, 4)), -1)
    with pytest.raises(TypeError):
        level_shape((4, 4), 1.5)
    with pytest.raises(ValueError):
        downsample(np.zeros((4, 4)), mode="reflect")


# --- upsample --------------------------------------------------------------


def test_upsample_replicates_and_crops():
    img = np.arange(6.0).reshape(2, 3)
    out = upsample(img, 1, (3, 5))
    np.testing.assert_array_equal(
        out, [[0, 0, 1, 1, 2], [0, 0, 1, 1, 2], [3, 3, 4, 4, 5]]
    )
    out2 = upsample(img, 2, (7, 9))
    assert out2.shape == (7, 9)
    np.testing.assert_array_equal(out2, upsample(upsample(img, 1, (4, 6)), 1, (7, 9)))
    np.testing.assert_array_equal(upsample(img, 0, (2, 3)), img)


def test_upsample_undoes_downsample_shape_and_constant():
    shape = (23, 17)
    img = np.full(shape, 0.7)
    coarse = downsample_n(img, 3)
    back = upsample(coarse, 3, shape)
    assert back.shape == shape
    np.testing.assert_allclose(back, 0.7, atol=1e-15)


def test_upsample_alignment():
    # A step edge on an even column stays between the same pixel pairs:
    # replication after halving introduces no shift.
    img = np.zeros((16, 16))
    img[:, 8:] = 1.0
    back = upsample(downsample(img), 1, img.shape)
    np.testing.assert_allclose(back[:, :8].mean(axis=0)[::-1], 1 - back[:, 8:].mean(axis=0))


def test_upsample_bad_shape():
    with pytest.raises(ValueError):
        upsample(np.zeros((2, 3)), 1, (5, 6))
    with pytest.raises(ValueError):
        upsample(np.zeros((2, 3, 2)), 1, (4, 6, 3))


# --- maxpool_labels --------------------------------------------------------


def test_maxpool_unlabelled_stays_unlabelled():
    lab = np.full((6, 6), -1, dtype=np.int8)
    out = maxpool_labels(lab, 2)
    assert out.shape == (2, 2)
    assert (out == -1).all()


def test_maxpool_single_labelled_pixel():
    lab = np.full((8, 8), -1, dtype=np.int16)
    lab[5, 2] = 0
    out = maxpool_labels(lab, 1)
    expected = np.full((4, 4), -1)
    expected[2, 1] = 0
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(maxpool_labels(lab, 3), [[0]])


def test_maxpool_any_positive_rule():
    lab = np.array([[0, 0, -1, -1], [0, 1, -1, 0]], dtype=np.int8)
    np.testing.assert_array_equal(maxpool_labels(lab, 1), [[1, 0]])
    multi = np.array([[2, 0], [-1, 1]])
    np.testing.assert_array_equal(maxpool_labels(multi, 1), [[2]])


def test_maxpool_odd_sizes_do_not_invent_labels():
    lab = np.full((5, 3), -1, dtype=np.int8)
    lab[4, 2] = 1
    lab[0, 0] = 0
    out = maxpool_labels(lab, 1)
    assert out.shape == (3, 2)
    np.testing.assert_array_equal(out, [[0, -1], [-1, -1], [-1, 1]])
    assert maxpool_labels(lab, 3).shape == level_shape(lab.shape, 3) == (1, 1)


def test_maxpool_fully_labelled_matches_matlab_zero_padding():
    rng = np.random.default_rng(3)
    lab = (rng.random((9, 7)) > 0.8).astype(np.uint8)
    # MATLAB: pad with zeros, then 2x2 max.
    padded = np.pad(lab, ((0, 1), (0, 1)))
    expected = padded.reshape(5, 2, 4, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(maxpool_labels(lab, 1), expected)
    np.testing.assert_array_equal(maxpool_labels(lab.astype(bool), 1), expected)


def test_maxpool_rejects_bad_labels():
    with pytest.raises(ValueError):
        maxpool_labels(np.array([[-2, 0]]), 1)
    with pytest.raises(TypeError):
        maxpool_labels(np.zeros((2, 2)), 1)


# --- pool_label_fractions --------------------------------------------------


def test_fractions_known_answers():
    lab = np.array([[0, 1, -1, -1],
                    [1, 1, -1, 0]], dtype=np.int8)
    fr = pool_label_fractions(lab, 1)
    assert fr.shape == (1, 2, 2) and fr.dtype == np.float32
    np.testing.assert_allclose(fr[0, 0], [0.25, 0.75])  # 3 of 4 labelled pixels are foreground
    np.testing.assert_allclose(fr[0, 1], [1.0, 0.0])  # unlabelled pixels do not count
    np.testing.assert_array_equal(pool_label_fractions(lab, 0)[:, :, 1][lab >= 0], lab[lab >= 0])


def test_fractions_odd_sizes_and_unlabelled_blocks():
    lab = np.full((5, 3), -1, dtype=np.int8)
    lab[4, 2] = 1
    lab[0, :] = [0, 1, 1]
    fr = pool_label_fractions(lab, 1)
    assert fr.shape[:2] == level_shape(lab.shape, 1) == (3, 2)
    np.testing.assert_allclose(fr[0, :, 1], [0.5, 1.0])
    assert np.isnan(fr[1]).all()  # no labelled pixel in these blocks
    np.testing.assert_allclose(fr[2, 1], [0.0, 1.0])  # padding adds no pixel: 1 of 1
    # Two poolings: a 4 x 4 block counts every labelled pixel of it once (2 of 3 here).
    np.testing.assert_allclose(pool_label_fractions(lab, 2)[0, 0], [1 / 3, 2 / 3])


def test_fractions_agree_with_maxpool_and_block_means():
    rng = np.random.default_rng(4)
    lab = np.where(rng.random((13, 11)) < 0.3, -1, rng.random((13, 11)) < 0.4).astype(np.int8)
    for n in range(4):
        fr = pool_label_fractions(lab, n)[:, :, 1]
        mp = maxpool_labels(lab, n)
        np.testing.assert_array_equal(np.isnan(fr), mp == -1)  # the same labelled blocks
        np.testing.assert_array_equal(fr[mp >= 0] > 0, mp[mp >= 0] == 1)  # max-pool = "fraction > 0"
    # Fully labelled and even-sized: the plain 2**n x 2**n block mean.
    full = (rng.random((8, 16)) < 0.5).astype(np.int8)
    np.testing.assert_allclose(pool_label_fractions(full, 2)[:, :, 1],
                               full.reshape(2, 4, 4, 4).mean(axis=(1, 3)), rtol=1e-6)


def test_fractions_reject_bad_labels():
    with pytest.raises(ValueError, match="class index"):
        pool_label_fractions(np.array([[0, 2]]), 1)
    with pytest.raises(ValueError):
        pool_label_fractions(np.array([[-2, 0]]), 1)
    with pytest.raises(TypeError):
        pool_label_fractions(np.zeros((2, 2)), 1)
