import sys
from pathlib import Path

import numpy as np

from chm import CHM
from chm.cascade.cache import FeatureCache, footprint
from chm.features import FilterBank

from chm.datasets import make_shapes

SMALL = dict(levels=1, stages=2, features=("haar", "intensity"), context_radius=3,
             classifier_params={"n_groups": 2, "n_nodes": 2}, epochs=3, progress=False, random_state=0)


def test_cache_returns_float16_bank_and_reuses_files(tmp_path):
    image = np.random.default_rng(0).random((20, 25))
    bank = FilterBank(("haar", "edge"))
    cache = FeatureCache(tmp_path / "c")
    first = cache.get(image, bank)
    files = list((tmp_path / "c").iterdir())
    assert len(files) == 1 and first.dtype == np.float16
    np.testing.assert_allclose(first, bank(image), rtol=2e-3, atol=1e-4)
    second = cache.get(image, bank)
    assert isinstance(second, np.memmap)
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    # Another bank or another image is another entry.
    cache.get(image, FilterBank(("haar",)))
    cache.get(image + 0.01, bank)
    assert len(list((tmp_path / "c").iterdir())) == 3


def test_temp_files_of_dead_writers_are_removed(tmp_path):
    import os
    import subprocess

    from chm.cascade.cache import remove_orphans

    folder = tmp_path / "c"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = folder / f"{int(dead.stdout)}.abc.npy.part"  # a writer killed mid-write
    mine = folder / f"{os.getpid()}.def.npy.part"  # a writer still at work
    entry = folder / "0123.npy"
    for p in (orphan, mine, entry):
        p.write_bytes(b"x")
    cache = FeatureCache(folder)  # opening a cache sweeps it
    assert not orphan.exists() and mine.exists() and entry.exists()
    orphan.write_bytes(b"x")
    remove_orphans(timeout=0.2)  # after a stop: every cache this process opened
    assert not orphan.exists() and mine.exists() and entry.exists()
    # A new entry's temporary file carries its writer's pid (nothing is left behind).
    cache.get(np.zeros((8, 8)), FilterBank(("haar",)))
    assert sorted(p.name for p in folder.glob("*.part")) == [mine.name]


def test_damaged_entry_is_recomputed(tmp_path):
    image = np.random.default_rng(1).random((10, 12))
    bank = FilterBank(("haar",))
    cache = FeatureCache(tmp_path)
    good = np.array(cache.get(image, bank))
    path = next(tmp_path.iterdir())
    path.write_bytes(b"garbage")
    np.testing.assert_array_equal(cache.get(image, bank), good)


def test_fit_through_cache_is_repeatable_and_close_to_uncached(tmp_path):
    rng = np.random.default_rng(0)
    images, masks = make_shapes(4, shape=(24, 30), rng=rng)
    labels = [np.where(rng.random(m.shape) < 0.1, m, -1).astype(np.int8) for m in masks]
    a = CHM(feature_cache=tmp_path, **SMALL).fit(images, labels)
    b = CHM(feature_cache=tmp_path, **SMALL).fit(images, labels)
    for k in a.classifiers_:
        np.testing.assert_array_equal(a.classifiers_[k].W_, b.classifiers_[k].W_)
    plain = CHM(**SMALL).fit(images, labels)
    pa, pp = a.predict_proba(images)[0], plain.predict_proba(images)[0]
    assert np.mean(np.abs(pa - pp)) < 0.02
    a.save(tmp_path / "m.npz")  # the cache folder is not stored in the model file


def test_budget_stops_storing_but_not_caching_precision(tmp_path):
    rng = np.random.default_rng(2)
    images = [rng.random((20, 25)) for _ in range(3)]
    bank = FilterBank(("haar", "edge"))
    entry = 20 * 25 * bank.n_features * 2  # float16 bytes of one image's features
    cache = FeatureCache(tmp_path / "c", max_bytes=2 * entry + 1000)  # room for two entries (+ headers)
    feats = [cache.get(im, bank) for im in images]
    assert len(list((tmp_path / "c").glob("*.npy"))) == 2 and cache.size() <= cache.max_bytes
    assert all(f.dtype == np.float16 for f in feats)  # the third, not stored, is float16 too
    assert footprint([im.shape for im in images], 0, bank.n_features) == 3 * entry
    assert repr(cache).endswith(f"max_bytes={2 * entry + 1000})")


def test_model_does_not_depend_on_what_the_budget_stored(tmp_path):
    rng = np.random.default_rng(0)
    images, masks = make_shapes(4, shape=(24, 30), rng=rng)
    labels = [np.where(rng.random(m.shape) < 0.1, m, -1).astype(np.int8) for m in masks]
    full = CHM(feature_cache=tmp_path / "all", **SMALL).fit(images, labels)
    none_stored = CHM(feature_cache=FeatureCache(tmp_path / "none", max_bytes=0), **SMALL).fit(images, labels)
    assert FeatureCache(tmp_path / "none").size() == 0
    for k in full.classifiers_:
        np.testing.assert_array_equal(full.classifiers_[k].W_, none_stored.classifiers_[k].W_)


def test_a_refit_reads_every_feature_from_the_cache(tmp_path):
    import pickle

    rng = np.random.default_rng(0)
    images, masks = make_shapes(2, shape=(24, 30), rng=rng)
    labels = [np.where(rng.random(m.shape) < 0.1, m, -1).astype(np.int8) for m in masks]
    cache = FeatureCache(tmp_path)
    CHM(feature_cache=cache, n_jobs=1, **SMALL).fit(images, labels)
    assert cache.misses == 2 * 2 and cache.hits > 0  # 2 images x 2 levels computed once
    first = cache.hits
    CHM(feature_cache=cache, n_jobs=1, **SMALL).fit(images, labels)
    assert cache.misses == 4 and cache.hits > first
    copy = pickle.loads(pickle.dumps(cache))  # as joblib ships it to a worker
    assert (copy.hits, copy.misses) == (cache.hits, cache.misses)
    copy.get(images[0], FilterBank(("haar",)))
    assert copy.misses == 5 and cache.misses == 4
