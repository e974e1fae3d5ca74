"""What a fresh install pays for numba's compilation on its first fit.

    python -m benchmarks.bench_jit [--repeats 3] [--semi-supervised auto]

Each run is a new Python process with ``NUMBA_CACHE_DIR`` pointing at an empty folder, which is
what a first ``fit`` sees after ``pip install`` (numba then writes its cache beside the package).
The process imports chm, fits a small model (8 synthetic 96 x 96 images, 10 labelled px each,
the default CHM, or ``--semi-supervised``) and predicts one image; a second process with the same, now filled, folder does
the same work warm. Their difference is the compilation cost. Prints a table (issue target: a
first fit pays at most 5 s of compilation).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import chm
from chm import CHM
t1 = time.perf_counter()
rng = np.random.default_rng(0)
images, labels = [], []
for i in range(8):
    yy, xx = np.mgrid[:96, :96]
    mask = (yy - 48) ** 2 + (xx - 40 - i) ** 2 < 30 ** 2
    images.append(np.clip(0.3 + 0.4 * mask + 0.1 * rng.standard_normal((96, 96)), 0, 1))
    lab = np.full((96, 96), -1)
    idx = rng.choice(96 * 96, 10, replace=False)
    lab.flat[idx] = mask.flat[idx]
    lab.flat[idx[:2]] = [0, 1]
    mask.flat[idx[:2]] = [False, True]
    labels.append(lab)
model = CHM(levels=2, random_state=0, n_jobs=1, progress=False, semi_supervised=SEMI).fit(images, labels)
t2 = time.perf_counter()
model.predict_proba(images[:1])
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "fit": t2 - t1, "predict": t3 - t2}))
"""


def run(cache_dir, semi):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    code = CHILD.replace("SEMI", repr(semi))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="cold/warm pairs; the table shows the medians")
    ap.add_argument("--semi-supervised", default=None, help="CHM semi_supervised= of the fit (default: None)")
    args = ap.parse_args(argv)
    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as d:
            cold.append(run(d, args.semi_supervised))
            warm.append(run(d, args.semi_supervised))
    med = lambda rows, k: sorted(r[k] for r in rows)[len(rows) // 2]  # noqa: E731
    print(f"semi_supervised={args.semi_supervised!r}\n")
    print("| seconds (median of %d) | empty numba cache | filled cache | compilation |" % args.repeats)
    print("|---|---|---|---|")
    for k in ("import", "fit", "predict"):
        c, w = med(cold, k), med(warm, k)
        print(f"| {k} | {c:.2f} | {w:.2f} | {c - w:.2f} |")
    total = sum(med(cold, k) - med(warm, k) for k in ("import", "fit", "predict"))
    print(f"\ncompilation paid by a first fit + predict: {total:.1f} s (target <= 5 s)")


if __name__ == "__main__":
    main()
