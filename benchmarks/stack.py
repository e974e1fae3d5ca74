"""A stack: train from labels on a few slices, predict every slice in parallel (issue 36).

    python -m benchmarks.stack [--depth 64] [--side 512] [--labelled 3] [--n 200] [--n-jobs 2]

Writes a synthetic (Z, H, W) gray stack (``make_shapes`` slices) and a label stack with ``--n``
uniformly drawn labelled pixels on ``--labelled`` evenly spaced slices (0 elsewhere) as TIFF
files, reads them back with :mod:`chm.io.stacks`, fits the default CHM on the labelled slices
and predicts all Z slices with ``n_jobs``. Prints a markdown table: seconds of each step, the
peak RSS of this process (``getrusage``), and the test error over the
unlabelled slices (a check that the model learned something, not an accuracy claim).
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from chm import CHM
from chm.datasets import make_shapes, sample_sparse_labels
from chm.io.stacks import labelled_slices, read_label_stack, read_stack, write_stack


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth", type=int, default=64, help="slices in the stack")
    ap.add_argument("--side", type=int, default=512, help="each slice's side in pixels")
    ap.add_argument("--labelled", type=int, default=3, help="slices that hold labels")
    ap.add_argument("--n", type=int, default=200, help="labelled pixels per labelled slice")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    images, masks = make_shapes(args.depth, shape=(args.side, args.side), rng=rng)
    stack, truth = np.stack(images).astype(np.float32), np.stack(masks)
    which = np.linspace(0, args.depth - 1, args.labelled).round().astype(int)
    file_labels = np.zeros(truth.shape, np.uint8)  # the label files' convention: 0 = unlabelled
    for z, lab in zip(which, sample_sparse_labels([truth[z] for z in which], args.n, rng=rng)):
        file_labels[z] = np.where(lab >= 0, lab + 1, 0)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_stack(Path(tmp) / "stack.tif", stack)
        write_stack(Path(tmp) / "stack_labels.tif", file_labels)
        t0 = time.perf_counter()
        train, labs, kept = labelled_slices(read_stack(Path(tmp) / "stack.tif"),
                                            read_label_stack(Path(tmp) / "stack_labels.tif"))
        rows.append(("read stacks", time.perf_counter() - t0))
    t0 = time.perf_counter()
    model = CHM(n_jobs=args.n_jobs, progress=False, random_state=0).fit(train, labs)
    rows.append((f"fit on {len(kept)} labelled slices", time.perf_counter() - t0))
    t0 = time.perf_counter()
    pred = np.stack(model.predict(list(stack)))
    seconds = time.perf_counter() - t0
    rows.append((f"predict {args.depth} slices, n_jobs={args.n_jobs}", seconds))

    unlabelled = np.setdiff1d(np.arange(args.depth), kept)
    error = float((pred[unlabelled] != truth[unlabelled]).mean())
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"Stack {args.depth} x {args.side} x {args.side}, labels on slices {list(kept)} "
          f"({args.n} pixels each), default CHM\n")
    print("| step | seconds |\n|---|---|")
    for name, s in rows:
        print(f"| {name} | {s:.1f} |")
    print(f"| predict, per slice | {seconds / args.depth:.2f} |")
    print(f"\npeak RSS of this process {own:.2f} GiB (joblib's process workers, if any, not counted); "
          f"error on the {len(unlabelled)} unlabelled slices {100 * error:.2f} % "
          f"(all background: {100 * truth[unlabelled].mean():.2f} %)")


if __name__ == "__main__":
    main()
