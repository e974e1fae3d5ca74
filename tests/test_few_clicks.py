"""A first try with a handful of clicks trains a model (smaller networks, one warning), not an error."""

import warnings

import imageio.v3 as iio
import numpy as np
import pytest

from chm import CHM, load
from chm.classifiers import LDNN, LogisticRegression, shrink_to_labels
from chm.cli import main
from chm.model import FewLabelsWarning

FG = [(30, 30), (31, 31), (29, 27)]  # three foreground clicks in one 8 x 8 block
BG = [(2, 2), (3, 4), (60, 75)]  # two of them share a block too


def _two_images():
    rng = np.random.default_rng(0)
    images, labels = [], []
    for shift in (0, 3):
        mask = np.zeros((64, 80), np.int8)
        mask[16 + shift:48, 20:60 + shift] = 1
        images.append(np.clip(0.3 + 0.4 * mask + rng.normal(0, 0.1, mask.shape), 0, 1))
        lab = np.full(mask.shape, -1, np.int8)
        for cls, clicks in ((1, FG), (0, BG)):
            for y, x in clicks:
                assert mask[y, x] == cls
                lab[y, x] = cls
        labels.append(lab)
    return images, labels


@pytest.mark.parametrize("network", ["small", "original"])
def test_three_clicks_per_class_on_two_images_give_a_model(network, tmp_path):
    images, labels = _two_images()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = CHM(network=network, epochs=3, progress=False, random_state=0).fit(images, labels)
    few = [w for w in caught if issubclass(w.category, FewLabelsWarning)]
    assert len(few) == 1, [str(w.message) for w in caught]  # said once, for every smaller classifier
    message = str(few[0].message)
    assert "stage 1 level 3: " in message and ("10 x 20 -> 6 x 6" in message) == (network == "original")
    for (s, l), clf in model.classifiers_.items():
        n_fg = 6 if l < 3 else 2  # the three clicks of each image fall into one level-3 block
        assert clf.n_groups <= n_fg and clf.n_nodes <= 6
    masks = model.predict(images)
    assert [m.shape for m in masks] == [im.shape for im in images]
    model.save(tmp_path / "m.npz")  # the smaller sizes are saved with each classifier
    for a, b in zip(load(tmp_path / "m.npz").predict_proba(images), model.predict_proba(images)):
        np.testing.assert_array_equal(a, b)


def test_enough_clicks_keep_the_network_and_say_nothing():
    images, labels = _two_images()
    rng = np.random.default_rng(1)
    for lab, im in zip(labels, images):
        fg = np.argwhere(im > 0.6)
        bg = np.argwhere(im < 0.2)
        for cls, where in ((1, fg), (0, bg)):
            pick = where[rng.choice(len(where), 40, replace=False)]
            lab[pick[:, 0], pick[:, 1]] = cls
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewLabelsWarning)
        model = CHM(epochs=2, progress=False, random_state=0).fit(images, labels)
    assert all((c.n_groups, c.n_nodes) == (6, 6) for c in model.classifiers_.values())


def test_shrink_to_labels():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, -1, -1])
    clf, note = shrink_to_labels(LDNN(n_groups=10, n_nodes=20), y)
    assert (clf.n_groups, clf.n_nodes, note) == (3, 5, "10 x 20 -> 3 x 5")
    clf, note = shrink_to_labels(LDNN(n_groups=24, n_nodes=24, dropout=True, batch_size=1), np.array([1, 0, 0]))
    assert (clf.n_groups, clf.n_nodes, clf.dropout) == (1, 2, False)  # dropout needs two units a side
    clf.fit(np.random.default_rng(0).random((3, 4)), np.array([1, 0, 0]))
    clf, note = shrink_to_labels(LDNN(n_groups=2, n_nodes=2), y)
    assert (clf.n_groups, clf.n_nodes, note) == (2, 2, None)
    assert shrink_to_labels(LogisticRegression(), y)[1] is None


def test_background_lost_at_a_coarse_level_is_a_clear_error():
    images, labels = _two_images()
    for lab in labels:
        lab[lab == 0] = -1
        lab[24, 31] = 0  # the only background click shares an 8 x 8 block with the foreground ones
    with pytest.raises(ValueError, match=r"level 3 every labelled background pixel.*levels=2"):
        CHM(progress=False).fit(images, labels)


def test_cli_says_so_once(tmp_path, capsys):
    images, labels = _two_images()
    (tmp_path / "im").mkdir()
    (tmp_path / "lab").mkdir()
    for i, (im, lab) in enumerate(zip(images, labels)):
        iio.imwrite(tmp_path / "im" / f"i{i}.png", np.round(im * 255).astype(np.uint8))
        iio.imwrite(tmp_path / "lab" / f"i{i}.png", (lab + 1).astype(np.uint8))
    assert main(["train", str(tmp_path / "im"), str(tmp_path / "lab"), "-o", str(tmp_path / "m.npz"),
                 "--network", "original", "--epochs", "2", "--seed", "0", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("chm: warning: few labelled pixels") == 1 and "10 x 20 -> 6 x 6" in err
