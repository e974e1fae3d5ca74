"""Tiled prediction (chm.cascade.tiling): the whole image's maps, from tiles padded with the
cascade's receptive field, with memory set by the tile."""

import copy

import imageio.v3 as iio
import numpy as np
import pytest

import chm.model
from chm import CHM, load
from chm.cascade import tiling
from chm.cascade.cache import FeatureCache
from chm.cascade.pyramid import pyramid
from chm.cascade.tiling import auto_tile_size, halo, predict_tiled, receptive_radius, tiles
from chm.cli import main
from chm.datasets import make_scenes, make_shapes
from chm.features import FRAME_SUPPORT, FilterBank, Frame
from chm.model import DEFAULT_FEATURES

# Small and fast, but with the default bank's widest filters (SIFT) and the position family.
TINY = dict(context_radius=2, classifier_params={"n_groups": 2, "n_nodes": 2}, epochs=1, progress=False,
            random_state=0, n_jobs=1)
ATOL = 1e-6  # float32 rounding (Haar's integral image starts at the tile's corner)


def _sparse(masks, rng, rate=0.05):
    return [np.where(rng.random(m.shape) < rate, m, -1).astype(np.int8) for m in masks]


@pytest.fixture(scope="module")
def gray():
    """A two-class gray model, levels 2 (tiles align on 4 px), and a 203 x 217 test image."""
    rng = np.random.default_rng(0)
    images, masks = make_shapes(4, shape=(64, 72), rng=rng)
    model = CHM(levels=2, features=DEFAULT_FEATURES + ("position",), **TINY).fit(images, _sparse(masks, rng))
    return model, make_shapes(1, shape=(203, 217), rng=rng)[0][0]


def test_tiled_equals_whole_gray(gray):
    model, image = gray
    whole = model.predict_proba([image])[0]
    # The fusion (2, 0) reads stage 1's level-2 map: its stencil (2 px), the 4-px block of a
    # level-2 pixel (3 more) and that map's own reach, SIFT's 15 level-2 px (60) and two
    # halvings (3 + 6); rounded up to the level-2 grid.
    assert receptive_radius(model.cascade_) == 2 + 3 + 60 + 9 and halo(model.cascade_) == 76
    # Tiles smaller than the halo, sides that are not multiples of the tile: 6 x 6 tiles, the
    # middle ones padded on all four sides.
    for tile in (40, 1024):
        np.testing.assert_allclose(predict_tiled(model.cascade_, image, tile), whole, rtol=0, atol=ATOL)
    # A stage's own output: a smaller cascade, a smaller halo (level 0 only).
    first = model.predict_proba([image], stage=1)[0]
    assert receptive_radius(model.cascade_, stage=1) == FRAME_SUPPORT["sift"]
    np.testing.assert_allclose(predict_tiled(model.cascade_, image, 24, stage=1), first, rtol=0, atol=ATOL)


def test_tiled_equals_whole_on_a_1024_px_image(gray, monkeypatch):
    """Issue 36's size, through the model's ``tile_size``: 1024 x 1024 in 300 px tiles (4 x 4
    tiles, halos on every side) against the whole image."""
    model, _ = gray
    image = make_shapes(1, shape=(1024, 1024), rng=np.random.default_rng(5))[0][0]
    whole = model.cascade_.predict_image(model.cascade_.spec.prepare(image))
    cut = []
    monkeypatch.setattr(tiling, "tiles", lambda *a, **k: cut.extend(tiles(*a, **k)) or tiles(*a, **k))
    tiled = copy.deepcopy(model)
    tiled.tile_size = 300
    np.testing.assert_allclose(tiled.predict_proba([image])[0], whole, rtol=0, atol=ATOL)
    assert len(cut) == 16


def test_tiled_equals_whole_colour_k_classes():
    """A colour K-class model (the colour family's 64 px filters, compressed context maps, scaled
    fusion stencils) on a tall image: tiles padded on both sides along its rows."""
    rng = np.random.default_rng(1)
    images, masks = make_scenes(4, shape=(48, 64), n_classes=3, rng=rng)
    model = CHM(levels=1, features=DEFAULT_FEATURES + ("position",), fusion_context="scaled", **TINY)
    model.fit(images, _sparse(masks, rng, 0.1))
    image = make_scenes(1, shape=(330, 70), n_classes=3, rng=rng)[0][0]
    whole = model.predict_proba([image])[0]
    assert whole.shape == (330, 70, 3) and halo(model.cascade_) > 48
    np.testing.assert_allclose(predict_tiled(model.cascade_, image, 48), whole, rtol=0, atol=ATOL)


def test_tiled_equals_whole_with_the_fft_families(gray):
    """Gabor filters by FFT, whose rounding depends on the transform's size: equal to float32
    rounding of the features, not bit for bit."""
    rng = np.random.default_rng(2)
    images, masks = make_shapes(4, shape=(64, 72), rng=rng)
    model = CHM(levels=1, features=("haar", "gabor", "intensity"), **TINY).fit(images, _sparse(masks, rng))
    image = make_shapes(1, shape=(150, 40), rng=rng)[0][0]
    np.testing.assert_allclose(predict_tiled(model.cascade_, image, 16), model.predict_proba([image])[0],
                               rtol=0, atol=1e-5)


def test_receptive_radius_is_enough(gray):
    """Every pixel farther than the radius from a block changed: the block's output is the same;
    the pixels between two thirds of the radius and the radius changed: it is not. (The radius is
    conservative: what reaches its edge passes through the smallest taps of the bicubic kernels
    and filters, below float32 rounding; here changes show from about 10 px inside it.) A bright
    square near the block on a darker image keeps SIFT's image-wide peak, which a frame carries,
    not a neighbourhood, the same."""
    model, _ = gray
    r = receptive_radius(model.cascade_)
    rng = np.random.default_rng(3)
    side = 2 * r + 40
    a = 0.5 * make_shapes(1, shape=(side, side), rng=rng)[0][0]
    a[r + 30:r + 50, r + 12:r + 32] = 1.0
    block = (slice(r + 16, r + 20), slice(r + 20, r + 24))  # 4 x 4: every alignment on the level-2 grid
    other = 0.5 * make_shapes(1, shape=(side, side), rng=rng)[0][0]
    yy, xx = np.mgrid[:side, :side]
    dist = np.maximum(np.maximum(block[0].start - yy, yy - (block[0].stop - 1)),
                      np.maximum(block[1].start - xx, xx - (block[1].stop - 1)))
    b, c = np.where(dist > r, other, a), np.where((dist > 2 * r // 3) & (dist <= r), other, a)
    for im in (b, c):  # the premise: the same SIFT peak at every level
        assert [model.bank_.sift_peak(x) for x in pyramid(im, 2)] == [model.bank_.sift_peak(x) for x in pyramid(a, 2)]
    pa, pb, pc = (model.predict_proba([im])[0][block] for im in (a, b, c))
    assert 0.05 < pa.min() and pa.max() < 0.95  # not saturated
    np.testing.assert_allclose(pb, pa, rtol=0, atol=ATOL)
    assert np.abs(pc - pa).max() > 10 * ATOL  # 1e-4 here


def test_tiles_cover_the_image_once_on_the_pyramid_grid():
    shape, tile, margin = (203, 217), 40, 76
    seen = np.zeros(shape, int)
    for core, padded in tiles(shape, tile, margin):
        seen[core] += 1
        for c, p, n in zip(core, padded, shape):
            assert p.start % 4 == 0 and c.start % tile == 0  # aligned for levels = 2
            assert p.start == max(c.start - margin, 0) and p.stop == min(c.stop + margin, n)
    assert (seen == 1).all()


def test_a_framed_tile_has_the_whole_images_bank():
    rng = np.random.default_rng(4)
    image = rng.random((90, 100))
    bank = FilterBank(DEFAULT_FEATURES + ("position",))
    whole = bank(image)
    r = max(FRAME_SUPPORT[f] for f in bank.families)
    y0, x0, h, w = 20, 10, 60, 70
    frame = Frame((y0, x0), image.shape, bank.sift_peak(image))
    tile = bank(image[y0:y0 + h, x0:x0 + w], frame=frame)
    np.testing.assert_array_equal(tile[r:h - r, r:w - r], whole[y0 + r:y0 + h - r, x0 + r:x0 + w - r])
    unframed = bank(image[y0:y0 + h, x0:x0 + w])[r:h - r, r:w - r]
    assert not np.allclose(unframed, whole[y0 + r:y0 + h - r, x0 + r:x0 + w - r])  # position and SIFT differ
    with pytest.raises(ValueError, match="sift_peak"):
        bank(image[:30, :30], frame=Frame((0, 0), image.shape))
    with pytest.raises(ValueError, match="does not lie"):
        FilterBank(("position",))(image, frame=Frame((5, 0), image.shape))


def test_tiles_do_not_go_through_a_feature_cache(gray, tmp_path):
    model, image = gray
    frames = [Frame((0, 0), image.shape, model.bank_.sift_peak(image))] * 3
    with pytest.raises(ValueError, match="whole images, not of framed tiles"):
        model.cascade_.predict_image(image, cache=FeatureCache(tmp_path), frames=frames)
    cached = copy.copy(model).set_params(feature_cache=tmp_path, tile_size=40)
    np.testing.assert_allclose(cached.predict_proba([image])[0], predict_tiled(model.cascade_, image, 40), rtol=0,
                               atol=ATOL)
    assert not list(tmp_path.iterdir())


def test_predict_proba_tiles_large_images_automatically(gray, monkeypatch):
    model, image = gray
    tall = np.concatenate([image, image[::-1]])  # 406 x 217
    whole, whole_tall, crop = model.predict_proba([image, tall, tall[:300]])  # under the threshold: whole
    assert auto_tile_size(model.cascade_, image.shape) is None
    per_pixel = 4 * model.bank_.n_features * (1 + 1 / 4 + 1 / 16)  # float32, levels 0..2
    # A budget for padded tiles of 2 * 76 + 80 px: the largest tile that fits is 80 px.
    monkeypatch.setattr(tiling, "TILE_BYTES", per_pixel * (2 * 76 + 80) ** 2)
    assert auto_tile_size(model.cascade_, image.shape) is None  # the whole image fits it
    assert auto_tile_size(model.cascade_, (1000, 1000)) == 80
    # A budget that no padded tile meets: tiles as wide as the halo, unless a padded tile would
    # hold the whole image.
    monkeypatch.setattr(tiling, "TILE_BYTES", per_pixel * 100 ** 2)
    assert auto_tile_size(model.cascade_, image.shape) is None  # 76 + 2 * 76 > 217
    assert auto_tile_size(model.cascade_, tall.shape) == 76
    calls = []
    monkeypatch.setattr(chm.model, "predict_tiled", lambda *a, **k: calls.append(a[2]) or predict_tiled(*a, **k))
    got = model.predict_proba([tall, image, tall[:300]])
    for a, b in zip(got, (whole_tall, whole, crop)):
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)
    assert calls == [76, 76]


def test_memory_is_set_by_the_tile(gray, monkeypatch):
    """The filter bank never sees a level image larger than a padded tile."""
    model, image = gray
    sizes = []
    many = FilterBank.many
    monkeypatch.setattr(FilterBank, "many", lambda self, images, *a, **k: sizes.extend(im.shape for im in images)
                        or many(self, images, *a, **k))
    copy.copy(model).set_params(tile_size=40).predict_proba([image])
    side = 40 + 2 * halo(model.cascade_)  # the tile at (80, 80) is padded on all four sides
    assert max(h for h, _ in sizes) == side and max(w for _, w in sizes) == side


@pytest.mark.parametrize("bad", [0, -4, 6, 8.0, True, "64", np.float64(16)])
def test_bad_tile_sizes_are_refused(gray, bad):
    model, image = gray
    assert CHM(tile_size=bad).get_params()["tile_size"] is bad  # stored verbatim, checked when used
    with pytest.raises(ValueError, match=r"tile_size must be None .* multiple of 2\*\*levels = 4\b.*, got"):
        copy.copy(model).set_params(tile_size=bad).predict_proba([image])
    with pytest.raises(ValueError, match="multiple of 2"):
        predict_tiled(model.cascade_, image, bad)


def test_cli_predict_tile_size(gray, tmp_path, capsys):
    model, image = gray
    path = model.save(tmp_path / "model.npz")
    (tmp_path / "in").mkdir()
    iio.imwrite(tmp_path / "in" / "a.png", np.round(image * 255).astype(np.uint8))
    pixels = iio.imread(tmp_path / "in" / "a.png")
    for args in ([], ["--tile-size", "40"]):
        out = tmp_path / ("tiled" if args else "whole")
        assert main(["predict", str(path), str(tmp_path / "in"), "-o", str(out), "--format", "npy", "-q", *args]) == 0
        np.testing.assert_allclose(np.load(out / "a.npy"), load(path).predict_proba([pixels])[0], rtol=0, atol=ATOL)
    assert main(["predict", str(path), str(tmp_path / "in"), "-o", str(tmp_path / "bad"), "--tile-size", "6"]) == 2
    assert "multiple of 2**levels = 4" in capsys.readouterr().err and not (tmp_path / "bad").exists()
