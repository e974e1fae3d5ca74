"""ConvNet speed targets of issue 16: prints a table.

    python -m benchmarks.bench_convnet [--data PATH] [--threads 2] [--repeats 5] [--n-iter N] [--skip-fit]

* dense prediction time of one 240 x 320 colour image (best and median of --repeats, after a
  warm-up; and the process's CPU time, which other jobs on the machine inflate less: with one
  thread it is the wall time of an idle machine), with 1 and with --threads torch threads —
  target <= 0.5 s on the CPU;
* one TV ConvNet fit on Stanford Background fold 0 (572 images, N = 10, default settings) with
  --threads threads — target <= 15 min on 2 cores; the machine's load average is printed beside it,
  since another job on the same cores slows everything.

The ConvNet's errors are the experiments' job (``experiments/weizmann.py --classifier convnet``,
``experiments/stanford.py``, ``experiments/siftflow.py``).
"""

import os
import argparse
import time

import numpy as np

from chm import ConvNet
from chm.datasets import load_stanford_background, sample_sparse_labels

from experiments._common import data_root


def predict_time(threads, repeats):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 50, 3), dtype=np.uint8) for _ in range(2)]
    labels = [np.where(rng.random((40, 50)) < 0.05, rng.integers(0, 8, (40, 50)), -1) for _ in range(2)]
    model = ConvNet(n_classes=8, n_iter=1, n_jobs=threads, progress=False, random_state=0).fit(images, labels)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    model.predict_proba([image])  # warm-up
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        model.predict_proba([image])
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(times), float(np.median(times)), min(cpu)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-iter", type=int, default=None, help="ConvNet steps (default: ConvNet's)")
    ap.add_argument("--skip-fit", action="store_true")
    args = ap.parse_args(argv)
    extra = {} if args.n_iter is None else {"n_iter": args.n_iter}
    rows = []
    for t in sorted({1, args.threads}):
        best, med, cpu = predict_time(t, args.repeats)
        rows.append((f"dense prediction, 240 x 320 colour, {t} thread(s)",
                     f"{best:.3f} s (median {med:.3f} s; CPU time {cpu:.3f} s; load average {os.getloadavg()[0]:.1f})",
                     "<= 0.5 s"))
        print(rows[-1], flush=True)
    if not args.skip_fit:
        data = load_stanford_background(data_root(args.data), fold=0, seed=0)
        labels = sample_sparse_labels(data.train_masks, 10, np.random.default_rng([0, 10, 0]), ignore=-1)
        load = os.getloadavg()[0]
        model = ConvNet(semi_supervised="tv", n_classes=8, n_jobs=args.threads, random_state=0, **extra)
        t0 = time.perf_counter()
        model.fit(data.train_images, labels)
        fit = time.perf_counter() - t0
        rows.append((f"TV ConvNet fit, Stanford fold 0 (572 images, N = 10), {args.threads} threads, "
                     f"{model.n_iter_} steps", f"{fit / 60:.1f} min (load average {load:.1f} -> "
                                               f"{os.getloadavg()[0]:.1f})", "<= 15 min"))
        print(rows[-1], flush=True)
    print("\n| measurement | result | target |\n|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
