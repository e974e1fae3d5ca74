"""chm.selection: the rules that choose settings from sparse labels of training images."""

import numpy as np
import pytest

from chm.selection import choose, cross_val_fits, cross_val_predict, kfold, select, sparse_error, std_error


def test_kfold_partitions_the_images_and_the_seed_decides():
    splits = kfold(7, 3, rng=0)
    assert [len(h) for _, h in splits] == [3, 2, 2]
    assert sorted(np.concatenate([h for _, h in splits]).tolist()) == list(range(7))  # each image held once
    for fit, held in splits:
        assert sorted(np.concatenate([fit, held]).tolist()) == list(range(7))
        assert list(held) == sorted(held) and list(fit) == sorted(fit)
    again = kfold(7, 3, rng=0)
    assert all(np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(splits, again))
    assert any(not np.array_equal(b, d) for (_, b), (_, d) in zip(splits, kfold(7, 3, rng=1)))
    with pytest.raises(ValueError, match="n_folds"):
        kfold(7, 8)
    with pytest.raises(ValueError, match="n_folds"):
        kfold(7, 0)
    with pytest.raises(ValueError, match="at least 2"):
        kfold(1, 1)


def test_kfold_with_one_fold_holds_out_a_fifth():
    [(fit, held)] = kfold(10, 1, rng=0)
    assert len(held) == 2 and sorted(np.concatenate([fit, held]).tolist()) == list(range(10))
    np.testing.assert_array_equal(kfold(10, 1, rng=0)[0][1], held)
    # the split the experiments' single held-out fifth always used (weizmann, screen: [seed, N, 99])
    order = np.random.default_rng([0, 10, 99]).permutation(164)
    np.testing.assert_array_equal(kfold(164, 1, [0, 10, 99])[0][1], np.sort(order[:33]))


def test_sparse_error_counts_labelled_pixels_only():
    masks = [np.array([[1, 0], [0, 1]]), np.array([[1, 1]])]
    labels = [np.array([[1, -1], [1, -1]]), np.array([[-1, 0]])]
    assert sparse_error(masks, labels) == pytest.approx(2 / 3)  # (0,0) right; (1,0) and the 2nd image wrong
    with pytest.raises(ValueError, match="no labelled"):
        sparse_error(masks, [np.full((2, 2), -1), np.full((1, 2), -1)])


def test_std_error_is_binomial():
    assert std_error(0.2, 400) == pytest.approx(0.02)
    assert std_error(0.0, 10) == 0.0
    with pytest.raises(ValueError):
        std_error(0.2, 0)


def test_choose_takes_the_smallest_score_then_the_smallest_weight():
    assert choose({0.3: 0.2, 0.1: 0.2, 1.0: 0.25}) == 0.1
    with pytest.raises(ValueError):
        choose({})


class _Recorder:
    """A stand-in estimator: image i is the constant i; its map of an image is 1 where the image
    was among those it was fitted on, else ``shift``; ``decide`` thresholds at ``threshold_``."""

    fits = []  # (shift, image ids) of every fit, in order

    def __init__(self, shift=0.0):
        self.shift = shift

    def get_params(self, deep=True):
        return {"shift": self.shift}

    def fit(self, images, labels):
        self.seen_ = {int(im[0, 0]) for im in images}
        self.threshold_ = 0.5 + len(self.seen_) / 100
        _Recorder.fits.append((self.shift, frozenset(self.seen_)))
        return self

    def predict_proba(self, images):
        return [np.full((2, 2), 1.0 if int(im[0, 0]) in self.seen_ else self.shift) for im in images]

    def decide(self, probas):
        return [(p > self.threshold_).astype(np.uint8) for p in probas]


def _data(n):
    images = [np.full((2, 2), i, dtype=float) for i in range(n)]
    labels = [np.array([[1, -1], [-1, 0]]) for _ in range(n)]  # one pixel of each class per image
    return images, labels


def test_cross_val_predict_comes_from_models_that_never_saw_the_image():
    images, labels = _data(7)
    calls = []
    out = cross_val_predict(_Recorder(0.1), images, labels, n_folds=3, rng=0,
                            progress=lambda k, n: calls.append((k, n)))
    assert calls == [(0, 3), (1, 3), (2, 3)]
    assert all((m == 0.1).all() for m in out.maps)  # no model predicted an image it was fitted on
    assert all((d == 0).all() for d in out.decisions)  # decided by the model's own threshold
    # folds of 3, 2, 2 images: the models saw 4 or 5 images; each image's threshold is its model's
    for fit, held in out.splits:
        assert all(out.thresholds[i] == pytest.approx(0.5 + len(fit) / 100) for i in held)
    np.testing.assert_array_equal(out.held, np.arange(7))
    again = cross_val_predict(_Recorder(0.1), images, labels, n_folds=3, rng=0)
    assert [m.tolist() for m in again.maps] == [m.tolist() for m in out.maps]  # deterministic
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(again.splits, out.splits))
    slim = cross_val_predict(lambda: _Recorder(0.1), images, labels, n_folds=3, rng=0, keep_maps=False)
    assert slim.maps == [None] * 7 and len(slim.decisions) == 7  # a factory works like a template
    one = cross_val_predict(_Recorder(), images, labels, n_folds=1, rng=0)  # the single held-out fifth
    assert len(one.held) == 1 and sum(m is not None for m in one.maps) == 1
    with pytest.raises(ValueError, match="n_folds"):
        cross_val_predict(_Recorder(), images, labels, n_folds=8)
    with pytest.raises(ValueError, match="label maps"):
        cross_val_predict(_Recorder(), images, labels[:3], n_folds=2)


def test_cross_val_fits_never_fits_on_held_out_images():
    images, labels = _data(6)
    _Recorder.fits.clear()
    for fit, held, model in cross_val_fits(_Recorder(), images, labels, kfold(6, 3, rng=2)):
        assert model.seen_ == set(fit.tolist()) and not model.seen_ & set(held.tolist())
    with pytest.raises(ValueError, match="holds out"):
        next(cross_val_fits(_Recorder(), images, labels, [(np.arange(4), np.arange(3, 6))]))


class _Scored(_Recorder):
    """Wrong on every labelled pixel of the images whose id is in ``bad`` (else right)."""

    def __init__(self, shift=0.0, bad=()):
        super().__init__(shift)
        self.bad = bad

    def get_params(self, deep=True):
        return {"shift": self.shift, "bad": self.bad}

    def predict_proba(self, images):
        return [np.array([[0.0, 0], [0, 1]]) if int(im[0, 0]) in self.bad else np.array([[1.0, 0], [0, 0]])
                for im in images]

    def decide(self, probas):
        return [(p > 0.5).astype(np.uint8) for p in probas]


def test_select_chooses_the_lowest_out_of_fold_score_on_the_same_folds():
    images, labels = _data(10)
    candidates = {0.3: _Scored(0.3, bad=(1, 2)), 1.0: _Scored(1.0, bad=(3,)), 0.1: _Scored(0.1, bad=(4, 5, 6))}
    _Recorder.fits.clear()
    seen = []
    result = select(candidates, images, labels, n_folds=5, rng=0, progress=lambda key, k, n: seen.append((key, k, n)))
    assert result.best == 1.0  # one wrong image in ten: the lowest score
    assert result.scores == pytest.approx({0.3: 0.2, 1.0: 0.1, 0.1: 0.3})
    assert result.n_labels == 20
    assert result.std_errors[1.0] == pytest.approx(np.sqrt(0.1 * 0.9 / 20))
    assert np.nansum(result.fold_scores[1.0]) == pytest.approx(0.5)  # the bad image's fold of 2 images
    assert seen[:5] == [(0.3, k, 5) for k in range(5)] and len(seen) == 15
    # every candidate was fitted on the same five training sets, none of them with its held-out fold
    by_candidate = {}
    for shift, ids in _Recorder.fits:
        by_candidate.setdefault(shift, []).append(ids)
    assert len(by_candidate) == 3 and len({tuple(v) for v in by_candidate.values()}) == 1
    assert [set(range(10)) - ids for ids in by_candidate[0.3]] == [set(h.tolist()) for _, h in result.splits]
    # deterministic; a tie goes to the smaller key
    assert select(candidates, images, labels, rng=0).scores == result.scores
    tie = select({2: _Scored(bad=(1,)), 1: _Scored(bad=(2,))}, images, labels, rng=0)
    assert tie.best == 1 and tie.scores[1] == tie.scores[2]


def test_select_fails_if_candidates_are_scored_on_different_folds():
    # With a Generator as rng, folds redrawn per candidate would differ: identical candidates
    # that err on one image would then get different per-fold scores and training sets.
    images, labels = _data(10)
    _Recorder.fits.clear()
    result = select({w: _Scored(w, bad=(3,)) for w in (0.1, 0.2, 0.3)}, images, labels, n_folds=5,
                    rng=np.random.default_rng(0))
    assert len({tuple(np.nan_to_num(v, nan=-1)) for v in result.fold_scores.values()}) == 1
    by_candidate = {}
    for shift, ids in _Recorder.fits:
        by_candidate.setdefault(shift, []).append(ids)
    assert len(by_candidate) == 3 and len({tuple(v) for v in by_candidate.values()}) == 1


def test_select_memo_skips_scored_candidates_of_the_same_folds_only():
    images, labels = _data(10)
    memo = {}
    _Recorder.fits.clear()
    first = select({0.1: _Scored(0.1, bad=(1,))}, images, labels, rng=0, memo=memo)
    assert set(memo) == {"0.1"} and len(_Recorder.fits) == 5
    again = select({0.1: _Scored(0.1, bad=(1,)), 0.2: _Scored(0.2)}, images, labels, rng=0, memo=memo)
    assert len(_Recorder.fits) == 10  # only the new candidate was fitted
    assert again.scores[0.1] == first.scores[0.1] and again.best == 0.2
    select({0.1: _Scored(0.1, bad=(1,))}, images, labels, rng=1, memo=memo)  # other folds: refitted
    assert len(_Recorder.fits) == 15
    other = [np.array([[0, -1], [-1, 1]])] * 10  # other labels: refitted
    select({0.1: _Scored(0.1, bad=(1,))}, images, other, rng=1, memo=memo)
    assert len(_Recorder.fits) == 20
