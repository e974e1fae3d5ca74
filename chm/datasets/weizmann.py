"""The Weizmann horse database.

The data are never shipped with the package. :func:`load_weizmann_horse`
finds them (an explicit path, ``$CHM_DATA``, or the cache), or downloads the
public archive once into the cache and checks every file against the
SHA-256 manifest in ``chm/datasets/data/weizmann_horse_db.sha256``.
"""

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from ..io.images import read_image, read_mask
from .record import Dataset
from ..utils._progress import bar

__all__ = [
    "WEIZMANN_URL",
    "WeizmannHorse",
    "cache_dir",
    "find_data_root",
    "load_weizmann_horse",
    "verify_weizmann",
]

WEIZMANN_URL = (
    "https://github.com/shenshutao/image_segmentation/raw/master/weizmann_horse_db.tar.gz"
)
DATA_ENV = "CHM_DATA"
CACHE_ENV = "CHM_CACHE"

_DIRNAME = "weizmann_horse_db"
_MANIFEST_NAME = "weizmann_horse_db.sha256"
_N_HORSES = 328
_N_TRAIN = 164  # horse001-164 train, horse165-328 test (Tu & Bai's split)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeizmannHorse(Dataset):
    """The Weizmann horse database split into train and test halves.

    Attributes
    ----------
    train_images, test_images : list of ndarray of float64, shape (H, W)
        Gray images in [0, 1].
    train_masks, test_masks : list of ndarray of uint8, shape (H, W)
        Figure/ground masks: 1 = horse, 0 = background.
    train_names, test_names : list of str
        ``"horse001"`` ... ``"horse328"``.
    root : pathlib.Path
        Folder the data were read from (the one holding ``gray/``).
    classes : tuple of str
        ``("background", "horse")``: the name of each mask value, as the scene datasets have.
    """

    classes: tuple = ("background", "horse")


def cache_dir():
    """Download cache: ``$CHM_CACHE`` if set, else ``~/.cache/chm``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "chm"


def _resolve(path):
    """The folder holding ``gray/``: ``path`` itself or ``path/weizmann_horse_db``."""
    if not path:
        return None
    path = Path(path).expanduser()
    for cand in (path, path / _DIRNAME):
        if (cand / "gray").is_dir():
            return cand
    return None


def find_data_root(extra=()):
    """Locate an existing copy of the Weizmann horse database.

    Looks at ``$CHM_DATA``, then each folder in ``extra``, then the cache
    (see :func:`cache_dir`). Each may be the folder holding ``gray/`` or its
    parent holding ``weizmann_horse_db/``. Nothing is downloaded.

    Parameters
    ----------
    extra : iterable of path-like, optional
        Further places to look, after ``$CHM_DATA``.

    Returns
    -------
    pathlib.Path or None
        The folder that contains ``gray/``, or None when none was found.
    """
    for cand in (os.environ.get(DATA_ENV), *extra, cache_dir()):
        found = _resolve(cand)
        if found is not None:
            return found
    return None


# --- checksums -------------------------------------------------------------


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest(root):
    """SHA-256 of every file under ``root``, keyed by POSIX relative path.

    Regenerate the shipped manifest from a trusted copy with::

        from chm.datasets.weizmann import _manifest, _format_manifest
        text = _format_manifest(_manifest("path/to/weizmann_horse_db"))
        open("chm/datasets/data/weizmann_horse_db.sha256", "w").write(text)
    """
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): _sha256(p) for p in files}


def _format_manifest(manifest):
    # The `sha256sum` format, so `sha256sum -c` works inside the data folder.
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(manifest.items()))


def _parse_manifest(text):
    out = {}
    for line in text.splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.strip().lstrip("*")] = digest.lower()
    return out


def _shipped_manifest():
    text = (resources.files(__package__) / "data" / _MANIFEST_NAME).read_text("ascii")
    return _parse_manifest(text)


def verify_weizmann(root, files=None, manifest=None):
    """Check files of a Weizmann horse copy against the SHA-256 manifest.

    Parameters
    ----------
    root : path-like
        The folder holding ``gray/``, ``rgb/`` and ``figure_ground/``.
    files : iterable of str, optional
        Relative POSIX paths to check (e.g. ``"gray/horse001.jpg"``);
        default: every file of the manifest.
    manifest : dict of str to str, optional
        ``{relative path: sha256 hex}``; default: the one shipped with chm.

    Raises
    ------
    RuntimeError
        A file is missing or its checksum differs; the message names it.
    ValueError
        ``files`` names a path that is not in the manifest.
    """
    manifest = _shipped_manifest() if manifest is None else manifest
    names = sorted(manifest) if files is None else list(files)
    unknown = [n for n in names if n not in manifest]
    if unknown:
        raise ValueError(f"not in the manifest: {', '.join(unknown[:5])}")
    root = Path(root)
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise RuntimeError(
            f"{len(missing)} file(s) missing from {root}: {_shortlist(missing)}"
        )
    bad = [n for n in names if _sha256(root / n) != manifest[n]]
    if bad:
        raise RuntimeError(
            f"checksum mismatch for {root / bad[0]}"
            + (f" and {len(bad) - 1} other file(s)" if len(bad) > 1 else "")
            + "; the copy is corrupt or not the original Weizmann horse database"
        )


def _shortlist(names, k=10):
    more = f" ... (+{len(names) - k} more)" if len(names) > k else ""
    return ", ".join(names[:k]) + more


# --- download --------------------------------------------------------------


def _manual_hint(target):
    return (
        f"Download {WEIZMANN_URL} by other means and unpack it so that "
        f"{Path(target) / _DIRNAME / 'gray' / 'horse001.jpg'} exists, or unpack it "
        f"anywhere and set {DATA_ENV} to the folder holding gray/ (or to its parent)."
    )


def _download(url, dest, progress=None):
    """Stream ``url`` into the file ``dest``; any network failure -> RuntimeError."""
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            got = 0
            with bar(total=total, desc=Path(url).name, enabled=progress, unit="B", unit_scale=True,
                     unit_divisor=1024) as pbar:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(chunk)
                    got += len(chunk)
                    pbar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP error {exc.code} ({exc.reason})"
        elif isinstance(exc, urllib.error.URLError):
            reason = exc.reason
        else:
            reason = exc
        raise RuntimeError(f"could not download {url}: {reason}") from exc
    if total is not None and got != total:
        raise RuntimeError(f"could not download {url}: got {got} of {total} bytes")


def _safe_extract(archive, dest):
    """Extract a tar archive into ``dest``, refusing members that escape it.

    Links and special files are skipped rather than extracted: the dataset
    is plain files, and a link is the other classic way out of ``dest``.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                posix, win = PurePosixPath(m.name), PureWindowsPath(m.name)
                if posix.is_absolute() or win.anchor or ".." in posix.parts or ".." in win.parts:
                    raise RuntimeError(
                        f"refusing to extract {archive}: member '{m.name}' would be "
                        "written outside the target folder"
                    )
            keep = [m for m in members if m.isfile() or m.isdir()]
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(dest, members=keep, **kwargs)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise RuntimeError(f"cannot extract {archive}: {exc}") from exc


def _install(parent, url=WEIZMANN_URL, progress=None, manifest=None):
    """Download, extract and verify into ``parent/weizmann_horse_db``.

    Everything happens in a temporary folder next to the target and is
    renamed into place only after verification, so an interrupted or bad
    download never leaves a half-written dataset behind.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / _DIRNAME
    tmp = Path(tempfile.mkdtemp(prefix=f".{_DIRNAME}-", dir=parent))
    try:
        archive = tmp / "archive.tar.gz"
        _download(url, archive, progress)
        _safe_extract(archive, tmp / "x")
        found = _resolve(tmp / "x")
        if found is None:
            raise RuntimeError(f"the archive from {url} holds no gray/ folder")
        verify_weizmann(found, manifest=manifest)
        try:
            found.rename(final)
        except OSError:
            # Another process may have finished the same install first.
            if _resolve(final) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# --- loading ---------------------------------------------------------------


def load_weizmann_horse(root=None, download=True, progress=None, verify=False):
    """Load the Weizmann horse database with the standard half/half split.

    Parameters
    ----------
    root : path-like, optional
        The folder holding ``gray/`` and ``figure_ground/``, or a folder
        holding ``weizmann_horse_db/``. If absent there and ``download`` is
        true, the archive is installed into ``root/weizmann_horse_db``.
        Default: ``$CHM_DATA`` (same two forms), then
        ``cache_dir()/weizmann_horse_db``, downloading into the cache.
    download : bool, optional
        Whether to fetch :data:`WEIZMANN_URL` when no copy is found.
    progress : bool or None, optional
        Download progress: None = a bar on a terminal, plain lines otherwise; True = a bar; False = none.
    verify : bool, optional
        Check an existing copy against the SHA-256 manifest (all 984 files,
        a fraction of a second). A fresh download is always verified.

    Returns
    -------
    WeizmannHorse
        horse001-164 as training, horse165-328 as test images; gray images
        in float64 [0, 1] from ``gray/``, masks in uint8 0/1 (JPEG value >
        127) from ``figure_ground/``.

    Raises
    ------
    FileNotFoundError
        No copy was found and ``download`` is false, or a copy lacks files
        (the message lists them).
    RuntimeError
        The download failed (the message says where to put the data by
        hand), or a file fails the checksum.
    ValueError
        An image and its mask differ in size, or a file is unreadable.
    """
    if root is not None:
        found, target = _resolve(root), Path(root).expanduser()
    else:
        found, target = find_data_root(), cache_dir()
        env = os.environ.get(DATA_ENV)
        if env and _resolve(env) is None:
            # Say so, or a typo in CHM_DATA silently triggers a download.
            warnings.warn(
                f"{DATA_ENV}={env} holds neither gray/ nor {_DIRNAME}/gray/; ignoring it",
                stacklevel=2,
            )
    if found is None:
        if not download:
            raise FileNotFoundError(
                "Weizmann horse database not found"
                + (f" in {target}" if root is not None else f" (${DATA_ENV} or {target})")
                + ". Pass download=True, or: " + _manual_hint(target)
            )
        try:
            found = _install(target, progress=progress)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}. {_manual_hint(target)}") from exc
    elif verify:
        verify_weizmann(found)

    names = [f"horse{i:03d}" for i in range(1, _N_HORSES + 1)]
    needed = [f"{d}/{n}.jpg" for n in names for d in ("gray", "figure_ground")]
    missing = [rel for rel in needed if not (found / rel).is_file()]
    if missing:
        raise FileNotFoundError(
            f"incomplete Weizmann horse database in {found}: {len(missing)} file(s) "
            f"missing: {_shortlist(missing)}. Restore them or delete the folder to "
            "download it again."
        )
    images, masks = [], []
    for n in names:
        img = read_image(found / "gray" / f"{n}.jpg")
        mask = read_mask(found / "figure_ground" / f"{n}.jpg", threshold=127)
        if img.shape != mask.shape:
            raise ValueError(f"{n}: image shape {img.shape} != mask shape {mask.shape}")
        images.append(img)
        masks.append(mask.astype(np.uint8))
    k = _N_TRAIN
    return WeizmannHorse(
        train_images=images[:k], train_masks=masks[:k],
        test_images=images[k:], test_masks=masks[k:],
        train_names=names[:k], test_names=names[k:], root=found,
    )


# --- sparse labels -----------------------------------------------------------
