"""Benchmark of the CHM filter bank (``features`` package), one core.

Prints, per family and for the whole 476-feature bank: best time per image
over ``--repeat`` runs, throughput in Mpx/s, and the peak memory allocated by
one call (tracemalloc, which numpy reports to) relative to the output size.

    python -m benchmarks.bench_features                  # smooth random 300x400 image
    python -m benchmarks.bench_features --data /work/shared/data/weizmann_horse_db/gray

With ``--data``, the first ``--n-images`` JPEGs of the folder are read as
grey floats in [0, 1] and resized to the benchmark shape; times are averaged
over them.
"""

import os

# one core: must be set before numpy/scipy start their thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from chm.features import FAMILIES, FilterBank


def synthetic_image(shape, seed=0):
    """Random-ish smooth image in [0, 1]: blurred noise at two scales."""
    rng = np.random.default_rng(seed)
    im = ndi.gaussian_filter(rng.random(shape), 4) + 0.3 * ndi.gaussian_filter(rng.random(shape), 1)
    return (im - im.min()) / np.ptp(im)


def load_images(folder, shape, n):
    from skimage import io, transform, util
    paths = sorted(Path(folder).glob("*.jpg"))[:n]
    if not paths:
        raise SystemExit(f"no *.jpg in {folder}")
    ims = []
    for p in paths:
        im = util.img_as_float(io.imread(p, as_gray=True))
        ims.append(np.clip(transform.resize(im, shape, anti_aliasing=True), 0, 1))
    return ims


def best_time(fn, images, repeat):
    """Best over ``repeat`` of the mean time per image."""
    fn(images[0])                               # warm-up (imports, caches)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for im in images:
            fn(im)
        best = min(best, (time.perf_counter() - t0) / len(images))
    return best


def peak_bytes(fn, image):
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn(image)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="folder of grey *.jpg images (e.g. Weizmann gray/)")
    ap.add_argument("--n-images", type=int, default=3)
    ap.add_argument("--shape", default="300x400", help="HxW (default 300x400)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.lower().split("x"))
    images = (load_images(args.data, shape, args.n_images) if args.data
              else [synthetic_image(shape)])
    mpx = shape[0] * shape[1] / 1e6

    rows = [(name, n, lambda im, f=fn: f(im)) for name, (fn, n) in FAMILIES.items()]
    bank = FilterBank()
    rows.append(("bank (all)", bank.n_features, bank))

    src = f"{len(images)} image(s) from {args.data}" if args.data else "synthetic smooth image"
    print(f"features benchmark: {shape[0]}x{shape[1]}, {src}, best of {args.repeat}, 1 thread")
    print(f"{'family':<12}{'k':>5}{'ms/image':>11}{'Mpx/s':>9}{'peak MB':>10}{'peak/out':>10}")
    total = 0.0
    for name, n, fn in rows:
        t = best_time(fn, images, args.repeat)
        peak = peak_bytes(fn, images[0])
        out_bytes = shape[0] * shape[1] * n * 4
        if name != "bank (all)":
            total += t
        print(f"{name:<12}{n:>5}{1e3 * t:>11.1f}{mpx / t:>9.2f}{peak / 1e6:>10.1f}{peak / out_bytes:>10.2f}")
    print(f"{'sum of families':<17}{1e3 * total:>11.1f}")


if __name__ == "__main__":
    main()
