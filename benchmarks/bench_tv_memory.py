"""Peak memory of a spatial-loss fit as the training set grows (issue 37).

    python -m benchmarks.bench_tv_memory [--copies 1,4] [--semi-supervised tv] [--n-jobs 2]

Fits ``CHM(semi_supervised=...)`` (default ``"tv"``, its recommended weight) on the 164 Weizmann
training horses with 10 labelled pixels each, and on ``4 × 164`` images: each horse also mirrored
left-right, upside down and both (other pixels, so other features; the labels follow the pixels).
For each size it prints the fit time and the peak RSS of this process and its joblib workers
(sampled every 0.2 s, :class:`benchmarks._measure.PeakRSS`; pages of the spatial-loss centres'
temporary file count while a draw maps them) and the RSS at the start. Run each size in a fresh
process for a clean start (``--copies 1``, then ``--copies 4``). Issue target: ≤ 2 GB on 164 images,
growing sub-linearly with their number.
"""

import argparse
import time

import numpy as np

from chm import CHM
from chm.datasets import load_weizmann_horse, sample_sparse_labels

from benchmarks._measure import PeakRSS, gb
from experiments._common import weizmann_root

SEED = 0
N_LABELS = 10
FLIPS = [lambda a: a, np.fliplr, np.flipud, lambda a: np.flipud(np.fliplr(a))]


def training_set(images, labels, copies):
    """``copies`` (1..4) mirrored versions of every image and its labels."""
    if not 1 <= copies <= len(FLIPS):
        raise SystemExit(f"--copies must lie in 1..{len(FLIPS)}, got {copies}")
    out_x, out_y = [], []
    for flip in FLIPS[:copies]:
        out_x += [np.ascontiguousarray(flip(x)) for x in images]
        out_y += [np.ascontiguousarray(flip(y)) for y in labels]
    return out_x, out_y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", default="1,4", help="training sets of 164 x each of these (1..4)")
    ap.add_argument("--semi-supervised", default="tv", help="the spatial-loss method (tv or contrast)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--data", default=None, help="Weizmann folder (default: $CHM_DATA, ../shared/data)")
    args = ap.parse_args(argv)
    data = load_weizmann_horse(weizmann_root(args.data), progress=False)
    labels = sample_sparse_labels(data.train_masks, N_LABELS, np.random.default_rng(SEED), ignore=-1)
    rows = []
    for copies in (int(c) for c in args.copies.split(",")):
        images, labs = training_set(data.train_images, labels, copies)
        model = CHM(semi_supervised=args.semi_supervised, n_jobs=args.n_jobs, progress=False, random_state=SEED)
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            model.fit(images, labs)
            fit = time.perf_counter() - t0
        rows.append((len(images), fit, mem.peak, mem.start))
        print(f"{len(images)} images: fit {fit:.1f} s, peak RSS {gb(mem.peak)} (start {gb(mem.start)})", flush=True)
        del model
    print()
    print(f"| training images | `semi_supervised={args.semi_supervised!r}` fit | peak RSS (start) | per image above start |")
    print("|---|---|---|---|")
    for n, fit, peak, start in rows:
        print(f"| {n} | {fit:.1f} s | {gb(peak)} ({gb(start)}) | {(peak - start) / n / 2**20:.1f} MiB |")


if __name__ == "__main__":
    main()
