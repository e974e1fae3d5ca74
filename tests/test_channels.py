"""Your own feature channels (chm.features.channels): per-pixel feature images that join the filter
bank at every level, saved with the model, keyed in the feature cache, cut with the tiles, and read
by the command line from a folder."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from joblib import parallel_config

from chm import CHM, load
from chm.cascade import pyramid, training
from chm.cascade.cache import FeatureCache, FeatureSource
from chm.cascade.sampling import training_rows
from chm.cascade.tiling import predict_tiled
from chm.cli import main
from chm.datasets import make_scenes, make_shapes
from chm.features import FeatureChannels, FilterBank, check_channels
from chm.io.persistence import read_container
from chm.metrics import pixel_error
from chm.model import DEFAULT_FEATURES

# One logistic regression on the Haar pair (and the channels): a fit takes a few hundredths of a second.
FAST = dict(levels=1, stages=1, classifier="logistic", features=("haar",), epochs=15, progress=False,
            random_state=0, n_jobs=1)
# The tiling tests' model: small, with the default bank's widest filters and the position family.
TINY = dict(context_radius=2, classifier_params={"n_groups": 2, "n_nodes": 2}, epochs=1, progress=False,
            random_state=0, n_jobs=1)
ATOL = 1e-6  # as tests/test_tiling.py: float32 rounding


def _hint(masks, rng, noise=0.3):
    """A channel that carries the answer: the mask plus Gaussian noise (thresholding it alone at
    0.5 errs on about 5 % of the pixels)."""
    return [m + noise * rng.standard_normal(m.shape) for m in masks]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images, masks = make_shapes(6, shape=(64, 72), rng=rng)
    labels = [np.where(rng.random(m.shape) < 0.02, m, -1).astype(np.int8) for m in masks]
    test_images, test_masks = make_shapes(4, shape=(64, 72), rng=rng)
    return dict(images=images, masks=masks, labels=labels, channels=_hint(masks, rng),
                test_images=test_images, test_masks=test_masks, test_channels=_hint(test_masks, rng))


@pytest.fixture(scope="module")
def two(data):
    """A model with two named channels: the hint and pure noise, as (H, W, 2) arrays."""
    rng = np.random.default_rng(1)
    channels = [np.dstack([c, rng.standard_normal(c.shape)]) for c in data["channels"]]
    model = CHM(**FAST).fit(data["images"], data["labels"], channels=channels, channel_names=["mask", "noise"])
    return model, channels


# -- the API -------------------------------------------------------------------------------------

def test_an_informative_channel_lowers_the_error(data):
    plain = CHM(**FAST).fit(data["images"], data["labels"])
    helped = CHM(**FAST).fit(data["images"], data["labels"], channels=data["channels"])
    assert plain.feature_channels_ == () and helped.feature_channels_ == ("channel 0",)
    assert helped.bank_.n_features == plain.bank_.n_features + 1
    without = pixel_error(plain.predict(data["test_images"]), data["test_masks"])
    given = pixel_error(helped.predict(data["test_images"], channels=data["test_channels"]), data["test_masks"])
    assert without > 0.2 and given < 0.12 and given < without / 2  # measured: 0.28 and 0.10
    # predict reads the channels it is given: another image's make it worse again.
    swapped = pixel_error(helped.predict(data["test_images"], channels=data["test_channels"][::-1]),
                          data["test_masks"])
    assert swapped > given + 0.1


def test_fit_with_channels_is_repeatable_for_any_n_jobs(data):
    """Two stages and a coarse level: the context maps of the training images are computed with
    the channels too."""
    params = dict(FAST, stages=2, epochs=3)
    a = CHM(**params).fit(data["images"], data["labels"], channels=data["channels"])
    b = CHM(**params).fit(data["images"], data["labels"], channels=data["channels"])
    with parallel_config(backend="threading"):
        c = CHM(**dict(params, n_jobs=2)).fit(data["images"], data["labels"], channels=data["channels"])
    for other in (b, c):
        for key, clf in a.classifiers_.items():
            np.testing.assert_array_equal(other.classifiers_[key].W_, clf.W_)
    np.testing.assert_array_equal(a.predict_proba(data["test_images"], channels=data["test_channels"])[0],
                                  c.predict_proba(data["test_images"], channels=data["test_channels"])[0])


def test_channels_are_halved_with_the_image_and_standardised():
    """Level l's channel column is the channel halved l times as the image is, then (x - mean) / std
    of the training images' full-resolution pixels."""
    rng = np.random.default_rng(2)
    image, channel = rng.random((40, 50)), 100.0 + 20.0 * rng.random((40, 50, 2))  # uint16-like values
    fc = FeatureChannels.fit([channel], names=["a", "b"])
    np.testing.assert_allclose(fc.offset, channel.reshape(-1, 2).mean(axis=0))
    np.testing.assert_allclose(fc.scale, channel.reshape(-1, 2).std(axis=0))
    bank = FilterBank(("haar",), channels=fc)
    labels = np.where(rng.random((40, 50)) < 0.2, 1, -1).astype(np.int8)
    stacked = np.dstack([image, channel])
    rows = training_rows(stacked, labels, 2, [None] * 3, FeatureSource(bank), seed=0)
    for l in range(3):
        expected = (pyramid.downsample_n(channel, l).reshape(-1, 2)[rows[l]["flat"]] - fc.offset) / fc.scale
        np.testing.assert_allclose(rows[l]["X"][:, -2:], expected, rtol=2e-3, atol=2e-3)  # float16 rows
        assert np.abs(expected).max() < 5  # standardised: no float16 overflow, full precision


def test_the_bank_appends_the_channels():
    rng = np.random.default_rng(3)
    fc = FeatureChannels(["dapi", "unet"], offset=[1.0, 0.0], scale=[2.0, 4.0])
    bank = FilterBank(("haar", "edge"), channels=fc)
    assert bank.n_features == 53 and bank.n_extra == 2 and bank.slices["channels"] == slice(51, 53)
    assert bank.names[-2:] == ["channels[dapi]", "channels[unet]"] and len(bank.names) == 53
    image, channel = rng.random((30, 35)), rng.random((30, 35, 2))
    feats = bank(np.dstack([image, channel]))
    np.testing.assert_array_equal(feats[:, :, :51], FilterBank(("haar", "edge"))(image))
    np.testing.assert_allclose(feats[:, :, 51:], (channel - [1.0, 0.0]) / [2.0, 4.0], rtol=1e-6)
    rows, cols = [0, 7, 29], [3, 34, 0]
    np.testing.assert_allclose(bank.at(np.dstack([image, channel]), rows, cols), feats[rows, cols], atol=1e-6)
    # A colour image: (H, W, 3 + E); threads give the same features.
    colour = FilterBank(("haar", "colour"), channels=fc)
    inputs = [np.dstack([rng.random((20, 25, 3)), rng.random((20, 25, 2))]) for _ in range(2)]
    for a, b in zip(colour.many(inputs, n_threads=3), [colour(x) for x in inputs]):
        np.testing.assert_array_equal(a, b)
    # Saved and rebuilt; a bank of other channels is another bank.
    assert FilterBank.from_dict(json.loads(json.dumps(bank.to_dict()))) == bank
    assert bank != FilterBank(("haar", "edge")) and "channels" not in FilterBank(("haar",)).to_dict()
    assert bank != FilterBank(("haar", "edge"), channels=FeatureChannels(["dapi", "unet"], [1.0, 0.0], [2.0, 5.0]))
    with pytest.raises(ValueError, match=r"2 feature channel\(s\): it takes the image's planes followed by the "
                                         r"channels', \(H, W, 1 \+ 2\) or \(H, W, 3 \+ 2\), got shape \(30, 35\)"):
        bank(image)
    with pytest.raises(ValueError, match="distinct"):
        FeatureChannels(["a", "a"], [0, 0], [1, 1])


def test_save_and_load_keep_the_channels(two, data, tmp_path):
    model, channels = two
    path = model.save(tmp_path / "m.npz")
    header, _ = read_container(path)
    assert header["bank"]["channels"]["names"] == ["mask", "noise"]
    loaded = load(path)
    assert loaded.feature_channels_ == ("mask", "noise") and loaded.bank_ == model.bank_
    np.testing.assert_array_equal(loaded.predict_proba(data["images"][:2], channels=channels[:2])[1],
                                  model.predict_proba(data["images"][:2], channels=channels[:2])[1])
    with pytest.raises(ValueError, match=r"fitted with 2 feature channel\(s\) \('mask', 'noise'\): pass "
                                         r"channels=\[one \(H, W, 2\) array per image\]"):
        loaded.predict(data["images"][:1])
    # A model without channels saves the bank as before, and refuses channels.
    plain = load(CHM(**FAST).fit(data["images"], data["labels"]).save(tmp_path / "plain.npz"))
    assert "channels" not in read_container(tmp_path / "plain.npz")[0]["bank"]
    with pytest.raises(ValueError, match="fitted without feature channels: channels must be None"):
        plain.predict_proba(data["images"][:1], channels=channels[:1])


def _bad_channels():
    """(what, change to the two-image channels list, error type, message)."""
    def nan(chs):
        c = chs[1].copy()
        c[3, 4, 1] = np.nan
        return [chs[0], c]

    return [
        ("missing", lambda chs: None, ValueError, r"fitted with 2 feature channel\(s\) \('mask', 'noise'\)"),
        ("count", lambda chs: [c[:, :, :1] for c in chs], ValueError,
         r"channels\[0\] has 1 channel\(s\) but the model was fitted with 2 \('mask', 'noise'\)"),
        ("2-D", lambda chs: [c[:, :, 0] for c in chs], ValueError, r"channels\[0\] has 1 channel\(s\)"),
        ("size", lambda chs: [chs[0], chs[1][:-1]], ValueError,
         r"channels\[1\] has shape \(63, 72, 2\) but images\[1\] is 64 x 72: expected \(64, 72, 2\)"),
        ("transposed", lambda chs: [np.moveaxis(c, 2, 0) for c in chs], ValueError,
         r"channels\[0\] has shape \(2, 64, 72\) but images\[0\] is 64 x 72"),
        ("NaN", nan, ValueError, r"channels\[1\] holds NaN or infinite values \(channel 'noise', e.g. at row 3, "
                                 r"column 4\)"),
        ("inf", lambda chs: [chs[0] * np.inf, chs[1]], ValueError, r"channels\[0\] holds NaN or infinite"),
        ("one for two", lambda chs: chs[:1], ValueError, r"got 2 images but 1 arrays of channels"),
        ("not a list", lambda chs: chs[0], TypeError, r"one array per image, got a single array .* wrap it"),
        ("complex", lambda chs: [c.astype(complex) for c in chs], TypeError, r"channels\[0\] must hold real numbers"),
        ("text", lambda chs: [np.full(c.shape, "x") for c in chs], TypeError, r"must hold real numbers"),
    ]


@pytest.mark.parametrize("what, change, error, message", _bad_channels(), ids=[b[0] for b in _bad_channels()])
def test_predict_says_what_channels_it_needs(two, data, what, change, error, message):
    model, channels = two
    with pytest.raises(error, match=message):
        model.predict_proba(data["images"][:2], channels=change(channels[:2]))


def test_fit_refuses_bad_channels(data):
    images, labels, chs = data["images"][:2], data["labels"][:2], data["channels"][:2]
    fit = lambda **kw: CHM(**FAST).fit(images, labels, **kw)  # noqa: E731
    with pytest.raises(ValueError, match=r"channels\[1\] has 2 channel\(s\) but channels\[0\] has 1: every image "
                                         "needs the same channels"):
        fit(channels=[chs[0], np.dstack([chs[1], chs[1]])])
    with pytest.raises(ValueError, match=r"channel_names names 2 channel\(s\) but the channels have 1"):
        fit(channels=chs, channel_names=["a", "b"])
    with pytest.raises(ValueError, match="channel_names names feature channels, but channels is None"):
        fit(channel_names=["a"])
    with pytest.raises(ValueError, match="non-empty strings"):
        fit(channels=chs, channel_names=[3])
    holed = chs[0].copy()
    holed[5, 6] = np.nan
    with pytest.raises(ValueError, match=r"channels\[0\] holds NaN or infinite values \(channel 0, e.g. at row 5, "
                                         r"column 6\)"):
        fit(channels=[holed, chs[1]])
    with pytest.raises(ValueError, match=r"channels\[1\] has shape \(64, 71\) but images\[1\] is 64 x 72"):
        fit(channels=[chs[0], chs[1][:, 1:]])
    assert check_channels(None, images) is None
    # A constant channel gets scale 1, not a division by zero.
    assert FeatureChannels.fit([np.full((4, 5, 1), 7.0)]).scale == (1.0,)


def test_semi_supervised_methods_see_the_images_without_their_channels(data, monkeypatch):
    """Superpixels, MRF proposals, contrast-sensitive losses and the EM prior run with channels,
    and what reads image contrast gets the image's planes only (a gray model: 2-D)."""
    seen = []
    proposals, centres, spread = training.proposals, training.ImageCentres, training.expand_labels
    monkeypatch.setattr(training, "proposals", lambda maps, images, *a: seen.extend(np.shape(im) for im in images)
                        or proposals(maps, images, *a))
    monkeypatch.setattr(training, "ImageCentres", lambda *a: seen.extend(np.shape(im) for im in a[5])
                        or centres(*a))
    monkeypatch.setattr(training, "expand_labels", lambda image, *a: seen.append(np.shape(image))
                        or spread(image, *a))
    chs = [np.dstack([c, c]) for c in data["channels"][:3]]  # with the image: 3 planes, as a colour image
    for method in (dict(semi_supervised="contrast+self-training", alpha=0.01), dict(semi_supervised="superpixels")):
        model = CHM(**FAST, **method, class_prior="em").fit(data["images"][:3], data["labels"][:3], channels=chs)
        assert model.feature_channels_ == ("channel 0", "channel 1")
    assert len(seen) == 2 * 3 + 3 + 3 and all(s == (64, 72) for s in seen)


def test_k_class_colour_model_with_channels(monkeypatch):
    """A colour K-class model stacks the channels behind the three colour planes; its self-training
    proposals see the colour image."""
    seen = []
    proposal = training.class_proposal
    monkeypatch.setattr(training, "class_proposal", lambda p, image, *a: seen.append(image.shape)
                        or proposal(p, image, *a))
    rng = np.random.default_rng(4)
    images, masks = make_scenes(3, shape=(40, 48), n_classes=3, rng=rng)
    labels = [np.where(rng.random(m.shape) < 0.05, m, -1).astype(np.int8) for m in masks]
    channels = [np.eye(3)[m] + 0.2 * rng.standard_normal(m.shape + (3,)) for m in masks]  # one-hot + noise
    model = CHM(**dict(FAST, semi_supervised="self-training", features=("haar", "colour"))).fit(
        images, labels, channels=channels)
    assert model.n_channels_ == 3 and len(model.feature_channels_) == 3
    assert seen == [(40, 48, 3)] * 3
    probas = model.predict_proba(images, channels=channels)
    assert probas[0].shape == (40, 48, 3)
    assert pixel_error(model.decide(probas), masks) < 0.1


def test_the_feature_cache_keys_on_the_channels(data, tmp_path):
    rng = np.random.default_rng(5)
    image, a, b = rng.random((20, 25)), rng.random((20, 25, 1)), rng.random((20, 25, 1))
    fc = FeatureChannels.fit([a])
    bank = FilterBank(("haar",), channels=fc)
    cache = FeatureCache(tmp_path / "bank")
    fa, fb = (np.array(cache.get(np.dstack([image, c]), bank)) for c in (a, b))
    assert (cache.hits, cache.misses) == (0, 2) and not np.allclose(fa[..., -1], fb[..., -1])
    np.testing.assert_array_equal(cache.get(np.dstack([image, a]), bank), fa)
    assert (cache.hits, cache.misses) == (1, 2)
    # The same planes under another standardisation: another entry, other values.
    other = FilterBank(("haar",), channels=FeatureChannels(fc.names, [fc.offset[0] + 1], fc.scale))
    assert not np.allclose(cache.get(np.dstack([image, a]), other)[..., -1], fa[..., -1])
    assert cache.misses == 3 and len(list((tmp_path / "bank").glob("*.npy"))) == 3
    # A model predicting its training image with other channels through its cache: those channels'
    # map (float16 features: close to the uncached one), not the training channels'.
    model = CHM(**dict(FAST, feature_cache=tmp_path / "model")).fit(data["images"], data["labels"],
                                                                     channels=data["channels"])
    image0, swapped = data["images"][:1], data["channels"][1:2]
    through = model.predict_proba(image0, channels=swapped)[0]
    uncached = CHM.set_params(model, feature_cache=None).predict_proba(image0, channels=swapped)[0]
    trained = model.predict_proba(image0, channels=data["channels"][:1])[0]
    assert np.abs(through - uncached).max() < 0.01 and np.abs(through - trained).max() > 0.3


# -- tiles ---------------------------------------------------------------------------------------

def test_tiled_equals_whole_with_channels():
    rng = np.random.default_rng(6)
    images, masks = make_shapes(4, shape=(64, 72), rng=rng)
    labels = [np.where(rng.random(m.shape) < 0.05, m, -1).astype(np.int8) for m in masks]
    channels = [np.dstack([m + 0.3 * rng.standard_normal(m.shape), rng.random(m.shape)]) for m in masks]
    model = CHM(levels=2, features=DEFAULT_FEATURES + ("position",), **TINY).fit(images, labels, channels=channels)
    image, mask = (a[0] for a in make_shapes(1, shape=(203, 217), rng=rng))
    channel = np.dstack([mask + 0.3 * rng.standard_normal(mask.shape), rng.random(mask.shape)])
    whole = model.predict_proba([image], channels=[channel])[0]
    for tile in (40, 1024):
        np.testing.assert_allclose(predict_tiled(model.cascade_, image, tile, channels=channel), whole,
                                   rtol=0, atol=ATOL)
    tiled = CHM.set_params(model, tile_size=40).predict_proba([image], channels=[channel])[0]
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=ATOL)
    # The channels matter to the map (the comparison above is not of maps that ignore them).
    assert np.abs(model.predict_proba([image], channels=[channel[::-1]])[0] - whole).max() > 0.05


# -- the command line ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory, data):
    """Images and label images as PNGs, and each image's two channels: .npy (H, W, 2) files and
    one channels-first (2, H, W) TIFF."""
    root = tmp_path_factory.mktemp("channels_cli")
    for sub in ("images", "labels", "channels"):
        (root / sub).mkdir()
    rng = np.random.default_rng(7)
    arrays = []
    for i, (im, lab, ch) in enumerate(zip(data["images"][:4], data["labels"], data["channels"])):
        iio.imwrite(root / "images" / f"im{i}.png", np.round(im * 255).astype(np.uint8))
        iio.imwrite(root / "labels" / f"im{i}.png", (lab + 1).astype(np.uint8))
        arr = np.dstack([ch, rng.random(ch.shape)]).astype(np.float32)
        arrays.append(arr)
        if i == 3:
            iio.imwrite(root / "channels" / f"im{i}.tif", np.moveaxis(arr, 2, 0))
        else:
            np.save(root / "channels" / f"im{i}.npy", arr)
    model = root / "model.npz"
    assert main(["train", str(root / "images"), str(root / "labels"), "-o", str(model), "--levels", "1",
                 "--stages", "1", "--classifier", "logistic", "--features", "haar", "--seed", "0", "-q",
                 "--channels", str(root / "channels")]) == 0
    return root, model, arrays


def test_cli_trains_and_predicts_with_channels(files, capsys):
    root, model, arrays = files
    loaded = load(model)
    assert loaded.feature_channels_ == ("channel 0", "channel 1")
    out = root / "out"
    assert main(["predict", str(model), str(root / "images"), "-o", str(out), "--format", "npy", "-q",
                 "--channels", str(root / "channels")]) == 0
    pixels = [iio.imread(root / "images" / f"im{i}.png") for i in range(4)]
    for i, p in enumerate(loaded.predict_proba(pixels, channels=arrays)):
        np.testing.assert_allclose(np.load(out / f"im{i}.npy"), p, rtol=0, atol=1e-6)
    assert main(["info", str(model)]) == 0
    assert "+ 2 feature channel(s) (channel 0, channel 1) = 4 features per pixel" in capsys.readouterr().out


def _run(args, capsys):
    status = main(args)
    return status, capsys.readouterr().err


def test_cli_errors_name_the_files(files, tmp_path, capsys):
    root, model, arrays = files
    predict = ["predict", str(model), str(root / "images"), "-o", str(tmp_path / "out")]
    status, err = _run(predict, capsys)
    assert status == 2 and "trained with 2 feature channel(s) (channel 0, channel 1): give --channels DIR" in err
    # One file missing, one of another size, one with one channel.
    for name, change, message in [
            ("missing", lambda d: (d / "im2.npy").unlink(), "no feature-channel file for '{images}/im2.png': "
                                                            "expected '{d}/im2.npy' (or .tif, .tiff)"),
            ("size", lambda d: np.save(d / "im1.npy", arrays[1][:-2]),
             "feature-channel file '{d}/im1.npy' holds an array of shape (62, 72, 2) but its image "
             "'{images}/im1.png' is 64 x 72: expected (64, 72), (64, 72, E) or (E, 64, 72)"),
            ("count", lambda d: np.save(d / "im1.npy", arrays[1][:, :, 0]),
             "channels[0] ('{d}/im1.npy') has 1 channel(s) but the model was fitted with 2"),
            ("NaN", lambda d: np.save(d / "im0.npy", np.where(arrays[0] > 1.5, np.nan, arrays[0])),
             "channels[0] ('{d}/im0.npy') holds NaN or infinite values")]:
        d = tmp_path / name
        d.mkdir()
        for p in (root / "channels").iterdir():
            (d / p.name).write_bytes(p.read_bytes())
        change(d)
        status, err = _run(predict + ["--channels", str(d)], capsys)
        assert status == 2 and message.format(d=d, images=root / "images") in err, err
        assert not (tmp_path / "out").exists()  # stopped before any output
    # Training: the message names the file too.
    status, err = _run(["train", str(root / "images"), str(root / "labels"), "-o", str(tmp_path / "m.npz"),
                        "--levels", "1", "-q", "--channels", str(tmp_path / "NaN")], capsys)
    assert status == 2 and f"channels[0] ('{tmp_path / 'NaN' / 'im0.npy'}') holds NaN" in err
    # A model without channels refuses them.
    plain = tmp_path / "plain.npz"
    assert main(["train", str(root / "images"), str(root / "labels"), "-o", str(plain), "--levels", "1",
                 "--stages", "1", "--features", "haar", "--epochs", "1", "-q"]) == 0
    status, err = _run(["predict", str(plain), str(root / "images"), "-o", str(tmp_path / "out"), "--channels",
                        str(root / "channels")], capsys)
    assert status == 2 and "trained without feature channels: drop --channels" in err
