import io
import shutil
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest

from chm.datasets import find_data_root, load_weizmann_horse, sample_sparse_labels, verify_weizmann
from chm.datasets import weizmann as datasets
from chm.datasets.weizmann import _format_manifest, _install, _manifest, _parse_manifest, _safe_extract


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """No CHM_DATA, an empty cache: the loader must find nothing."""
    monkeypatch.delenv("CHM_DATA", raising=False)
    monkeypatch.setenv("CHM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _offline(monkeypatch, exc=None):
    calls = []

    def fail(url, *args, **kwargs):
        calls.append(url)
        raise exc or urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    return calls


def _tar(path, files, extra=()):
    """Write a .tar.gz holding ``files`` ({name: bytes}) plus raw TarInfo ``extra``."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return path


# --- the real data ---------------------------------------------------------


@pytest.mark.data
def test_split(weizmann):
    assert len(weizmann.train_images) == len(weizmann.train_masks) == 164
    assert len(weizmann.test_images) == len(weizmann.test_masks) == 164
    assert weizmann.train_names[0] == "horse001" and weizmann.train_names[-1] == "horse164"
    assert weizmann.test_names[0] == "horse165" and weizmann.test_names[-1] == "horse328"


@pytest.mark.data
def test_images_and_masks(weizmann):
    pixels = 0
    for img, mask in zip(
        weizmann.train_images + weizmann.test_images, weizmann.train_masks + weizmann.test_masks
    ):
        assert img.dtype == np.float64 and img.ndim == 2
        assert mask.dtype == np.uint8 and mask.shape == img.shape
        assert 0 <= img.min() and img.max() <= 1
        assert set(np.unique(mask)) == {0, 1}
        pixels += img.size
    assert 18_000_000 < pixels < 20_000_000  # "about 19 million pixels"


@pytest.mark.data
def test_shipped_manifest_matches_shared_copy(weizmann_root):
    verify_weizmann(weizmann_root)


@pytest.mark.data
def test_tampered_copy_fails(weizmann_root, tmp_path):
    subset = ["gray/horse001.jpg", "figure_ground/horse001.jpg", "rgb/horse002.jpg"]
    for rel in subset:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weizmann_root / rel, tmp_path / rel)
    verify_weizmann(tmp_path, files=subset)
    data = bytearray((tmp_path / subset[1]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / subset[1]).write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="checksum mismatch for .*figure_ground/horse001.jpg"):
        verify_weizmann(tmp_path, files=subset)
    with pytest.raises(RuntimeError, match="missing.*gray/horse003.jpg"):
        verify_weizmann(tmp_path, files=subset + ["gray/horse003.jpg"])
    with pytest.raises(ValueError, match="not in the manifest"):
        verify_weizmann(tmp_path, files=["gray/horse999.jpg"])


@pytest.mark.data
def test_incomplete_root_lists_missing_files(weizmann_root, tmp_path):
    for d in ("gray", "figure_ground"):
        (tmp_path / d).mkdir()
        shutil.copyfile(weizmann_root / d / "horse001.jpg", tmp_path / d / "horse001.jpg")
    with pytest.raises(FileNotFoundError, match=r"654 file\(s\) missing: gray/horse002.jpg, figure_ground/horse002.jpg"):
        load_weizmann_horse(tmp_path, download=False)


@pytest.mark.data
def test_root_forms_and_env(weizmann_root, tmp_path, isolated_env, monkeypatch):
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "weizmann_horse_db").symlink_to(weizmann_root, target_is_directory=True)
    assert find_data_root() is None
    for value in (weizmann_root, parent):
        monkeypatch.setenv("CHM_DATA", str(value))
        assert (find_data_root() / "gray" / "horse001.jpg").is_file()


@pytest.mark.data
def test_install_from_archive_end_to_end(weizmann_root, tmp_path, isolated_env, monkeypatch):
    # Pack the shared copy like the distribution and "download" it via file://.
    archive = tmp_path / "weizmann_horse_db.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(weizmann_root, arcname="weizmann_horse_db")
    monkeypatch.setattr(
        datasets, "_install",
        lambda parent, progress=None: _install(parent, url=archive.as_uri(), progress=progress),
    )
    data = load_weizmann_horse(progress=False)
    assert data.root == isolated_env / "weizmann_horse_db"
    assert len(data.train_images) == 164
    assert sorted(p.name for p in isolated_env.iterdir()) == ["weizmann_horse_db"]
    # Later calls find the cache instead of downloading again.
    assert find_data_root() == data.root


# --- download / install without the real data --------------------------------


def test_offline_download_gives_clear_error(isolated_env, monkeypatch):
    calls = _offline(monkeypatch)
    with pytest.raises(RuntimeError) as err:
        load_weizmann_horse(progress=False)
    msg = str(err.value)
    assert "could not download" in msg and "name resolution" in msg
    assert "CHM_DATA" in msg and str(isolated_env) in msg
    assert calls == [datasets.WEIZMANN_URL]
    assert not (isolated_env / "weizmann_horse_db").exists()
    assert list(isolated_env.iterdir()) == []  # no temp leftovers


def test_http_error(isolated_env, monkeypatch, tmp_path):
    _offline(monkeypatch, urllib.error.HTTPError(datasets.WEIZMANN_URL, 404, "Not Found", {}, None))
    with pytest.raises(RuntimeError, match="HTTP error 404"):
        load_weizmann_horse(tmp_path / "mydata", progress=False)
    assert not (tmp_path / "mydata" / "weizmann_horse_db").exists()


def test_no_download_gives_file_not_found(isolated_env, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(FileNotFoundError, match="CHM_DATA"):
        load_weizmann_horse(download=False)
    monkeypatch.setenv("CHM_DATA", str(isolated_env / "typo"))
    with pytest.warns(UserWarning, match="typo"), pytest.raises(FileNotFoundError):
        load_weizmann_horse(download=False)


def test_install_verifies_and_cleans_up(tmp_path):
    src = {"weizmann_horse_db/gray/horse001.jpg": b"abc", "weizmann_horse_db/figure_ground/x": b"d"}
    archive = _tar(tmp_path / "a.tar.gz", src)
    good = {name.split("/", 1)[1]: __import__("hashlib").sha256(data).hexdigest()
            for name, data in src.items()}
    final = _install(tmp_path / "ok", url=archive.as_uri(), progress=False, manifest=good)
    assert (final / "gray" / "horse001.jpg").read_bytes() == b"abc"
    assert sorted(p.name for p in (tmp_path / "ok").iterdir()) == ["weizmann_horse_db"]

    bad = dict(good, **{"gray/horse001.jpg": "0" * 64})
    with pytest.raises(RuntimeError, match="checksum mismatch for .*gray/horse001.jpg"):
        _install(tmp_path / "bad", url=archive.as_uri(), progress=False, manifest=bad)
    assert list((tmp_path / "bad").iterdir()) == []


def test_path_traversal_is_refused(tmp_path):
    for evil in ("../evil.txt", "weizmann_horse_db/../../evil.txt", "/tmp/evil.txt"):
        archive = _tar(tmp_path / "evil.tar.gz", {"ok.txt": b"x", evil: b"pwned"})
        dest = tmp_path / "out"
        with pytest.raises(RuntimeError, match="outside the target folder"):
            _safe_extract(archive, dest)
        assert not (tmp_path / "evil.txt").exists()
        assert not any(dest.rglob("*"))
        shutil.rmtree(dest)


def test_links_are_not_extracted(tmp_path):
    link = tarfile.TarInfo("gray/link.jpg")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = _tar(tmp_path / "l.tar.gz", {"gray/a.jpg": b"x"}, extra=[link])
    _safe_extract(archive, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "gray").iterdir()) == ["a.jpg"]


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tar at all" * 10)
    with pytest.raises(RuntimeError, match="cannot extract"):
        _safe_extract(bad, tmp_path / "out")


def test_manifest_round_trip(tmp_path):
    (tmp_path / "gray").mkdir()
    (tmp_path / "gray" / "a.jpg").write_bytes(b"hello")
    m = _manifest(tmp_path)
    assert m == {"gray/a.jpg": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}
    assert _parse_manifest(_format_manifest(m)) == m
    verify_weizmann(tmp_path, manifest=m)


# --- sparse labels -------------------------------------------------------------


@pytest.fixture
def masks():
    rng = np.random.default_rng(0)
    return [(rng.random(s) > 0.5).astype(np.uint8) for s in [(20, 30), (7, 5), (64, 48)]]


def test_sparse_counts_and_values(masks):
    labs = sample_sparse_labels(masks, 10, rng=1)
    assert len(labs) == len(masks)
    for lab, m in zip(labs, masks):
        assert lab.shape == m.shape and lab.dtype == np.int8
        sel = lab >= 0
        assert sel.sum() == 10
        np.testing.assert_array_equal(lab[sel], m[sel])
        assert (lab[~sel] == -1).all()


def test_sparse_determinism(masks):
    a = sample_sparse_labels(masks, 10, rng=7)
    b = sample_sparse_labels(masks, 10, rng=np.random.default_rng(7))
    c = sample_sparse_labels(masks, 10, rng=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_sparse_edge_cases(masks):
    full = sample_sparse_labels(masks[1:2], 35, rng=0)[0]
    np.testing.assert_array_equal(full, masks[1])
    assert (sample_sparse_labels(masks, 0, rng=0)[0] == -1).all()
    with pytest.raises(ValueError, match="mask 1 has 35 pixels"):
        sample_sparse_labels(masks, 36, rng=0)
    with pytest.raises(ValueError, match="negative"):
        sample_sparse_labels([np.array([[0, -1]])], 1, rng=0)
    with pytest.raises(ValueError, match="2-D"):
        sample_sparse_labels([np.zeros(4, int)], 1, rng=0)
    labs = sample_sparse_labels([np.full((3, 3), 300)], 2, rng=0)
    assert labs[0].dtype == np.int16 and (labs[0] == 300).sum() == 2


def test_sparse_uniform_over_pixels():
    # Every pixel should be drawn about equally often across many draws.
    mask = np.zeros((4, 5), dtype=np.uint8)
    rng = np.random.default_rng(0)
    hits = sum((sample_sparse_labels([mask], 4, rng)[0] >= 0).astype(int) for _ in range(2000))
    np.testing.assert_allclose(hits / 2000, 4 / 20, atol=0.04)


def _draw_digest(protocol_kw):
    """sha1 of a fixed set of draws (several seeds, K = 3 and K = 5, an ignore value)."""
    import hashlib

    rng = np.random.default_rng(123)
    masks = [rng.integers(0, 3, size=(17, 23)) for _ in range(4)]
    masks.append(np.where(rng.random((9, 11)) < 0.3, -1, rng.integers(0, 5, size=(9, 11))))
    h = hashlib.sha1()
    draws = [sample_sparse_labels(masks[:4], 10, np.random.default_rng(seed), **protocol_kw)
             for seed in (0, [1, 10, 0])]
    draws.append(sample_sparse_labels(masks, 20, np.random.default_rng(5), ignore=-1, **protocol_kw))
    for labs in draws:
        for lab in labs:
            h.update(lab.tobytes())
            h.update(str(lab.dtype).encode())
    return h.hexdigest()


def test_sparse_uniform_draws_are_those_of_before_the_protocols():
    # the digest of the draws of the code before `protocol` existed: Table 1-3's labels unchanged
    old = "b116f71d506101dd61bab2c41c67e9b2bc49a72c"
    assert _draw_digest({}) == old
    assert _draw_digest({"protocol": "uniform"}) == old
    assert _draw_digest({"protocol": "balanced"}) != old
    with pytest.raises(ValueError, match="protocol"):
        sample_sparse_labels([np.zeros((2, 2), int)], 1, rng=0, protocol="clicks")


def _per_class(lab, k):
    return np.bincount(lab[lab >= 0].ravel(), minlength=k).tolist()


def test_sparse_balanced_splits_n_evenly_over_the_classes_present():
    mask = np.zeros((12, 12), dtype=np.uint8)
    mask[:4] = 1
    mask[4:6] = 3  # class 2 absent: three classes present
    extra = set()
    for seed in range(20):
        lab = sample_sparse_labels([mask], 10, rng=seed, protocol="balanced")[0]
        np.testing.assert_array_equal(lab[lab >= 0], mask[lab >= 0])
        counts = _per_class(lab, 4)
        assert counts[2] == 0 and sorted(counts[:2] + counts[3:]) == [3, 3, 4]  # 10 // 3, remainder to one
        extra.add(counts.index(4))
    assert extra == {0, 1, 3}  # the rng decides which class takes the remainder
    two = sample_sparse_labels([mask > 0], 9, rng=0, protocol="balanced")[0]  # bool masks: two classes
    assert sorted(_per_class(two, 2)) == [4, 5]


def test_sparse_balanced_gives_a_small_class_all_it_has_and_the_rest_to_the_others():
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[0, :3] = 1  # 3 pixels
    mask[1, 0] = 2  # 1 pixel
    assert _per_class(sample_sparse_labels([mask], 10, rng=0, protocol="balanced")[0], 3) == [6, 3, 1]
    assert _per_class(sample_sparse_labels([mask], 11, rng=0, protocol="balanced")[0], 3) == [7, 3, 1]
    assert _per_class(sample_sparse_labels([mask], 2, rng=0, protocol="balanced")[0], 3).count(1) == 2
    assert _per_class(sample_sparse_labels([mask], 100, rng=0, protocol="balanced")[0], 3) == [96, 3, 1]


def test_sparse_balanced_is_deterministic(masks):
    a = sample_sparse_labels(masks, 10, rng=7, protocol="balanced")
    b = sample_sparse_labels(masks, 10, rng=np.random.default_rng(7), protocol="balanced")
    c = sample_sparse_labels(masks, 10, rng=8, protocol="balanced")
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert all(_per_class(lab, 2) == [5, 5] for lab in a)


def test_sparse_balanced_never_draws_ignored_pixels():
    mask = np.full((8, 8), -1, dtype=np.int16)
    mask[:2, :3] = 0  # 6 known pixels of class 0
    mask[5, 5] = 4  # one of class 4
    lab = sample_sparse_labels([mask], 10, rng=0, ignore=-1, protocol="balanced")[0]
    assert _per_class(lab, 5) == [6, 0, 0, 0, 1]  # fewer known pixels than N: all of them
    assert (lab[mask == -1] == -1).all()
    lab = sample_sparse_labels([mask], 4, rng=0, ignore=-1, protocol="balanced")[0]
    assert _per_class(lab, 5) == [3, 0, 0, 0, 1]
    empty = sample_sparse_labels([np.full((3, 3), -1)], 2, rng=0, ignore=-1, protocol="balanced")[0]
    assert (empty == -1).all()
    with pytest.raises(ValueError, match="negative"):
        sample_sparse_labels([mask], 2, rng=0, protocol="balanced")


def test_strokes_stay_inside_their_class_and_add_up():
    from chm.datasets import make_shapes, sample_strokes

    _, (mask,) = make_shapes(1, shape=(80, 90), rng=3)
    labels = sample_strokes(mask, 3, rng=0, length=20, width=3)
    drawn = labels >= 0
    assert np.array_equal(labels[drawn], mask[drawn])  # never across the boundary
    for c in (0, 1):
        # at least one stroke's length; at most 3 strokes, a diagonal one sweeping ~sqrt(2) x the brush
        assert 20 <= (labels == c).sum() <= 3 * (20 + 3) * 3 * 1.5
    again = sample_strokes(mask, 3, rng=0, length=20, width=3)
    assert np.array_equal(again, labels)
    more = sample_strokes(mask, 2, rng=1, length=20, width=3, labels=labels)
    assert more is labels and np.all(labels[drawn] >= 0) and (labels >= 0).sum() > drawn.sum()
