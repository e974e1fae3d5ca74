"""K-class self-training proposals: alpha-expansion over every class against the candidates only.

    python -m benchmarks.bench_proposal_pruning [--data PATH] [--train 300] [--maps 24] [--beta 16]

Fits a CHM (default bank + position, ``n_classes=33``, N = 10 labelled px per image, seed 0) on the
first ``--train`` SIFT Flow training images, predicts the first ``--maps`` of them, and decodes each
map twice as :func:`chm.selftraining.class_proposal` would: ``chm.mrf.decode(method="expansion")``
over all 33 classes, and ``class_proposal`` itself, which expands over the classes that win
somewhere or are labelled. Prints the CPU time of each, the share of equal pixels and the number
of candidate classes per image. About 5 min on one core.
"""

import argparse
import sys
import time

import numpy as np

from chm import CHM, mrf
from chm.datasets import sample_sparse_labels
from chm.io.images import as_float_image
from chm.model import DEFAULT_FEATURES
from chm.datasets import load_siftflow
from chm.semi.selftraining import class_proposal

from experiments._common import data_root


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--maps", type=int, default=24)
    ap.add_argument("--beta", type=float, default=16.0)
    args = ap.parse_args(argv)
    d = load_siftflow(data_root(args.data))
    images, masks = d.train_images[:args.train], d.train_masks[:args.train]
    labels = sample_sparse_labels(masks, 10, np.random.default_rng(0), ignore=-1)
    t0 = time.perf_counter()
    model = CHM(n_classes=len(d.classes), features=DEFAULT_FEATURES + ("position",), n_jobs=1, progress=False,
                random_state=0).fit(images, labels)
    print(f"fit on {len(images)} images: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    maps = model.predict_proba(images[:args.maps])
    w = model.class_weights_
    t_full = t_cand = 0.0
    equal = total = 0
    n_cand = []
    for m, im, lab in zip(maps, images, labels):
        im = as_float_image(im)
        p = m * w
        p = np.clip(p / p.max(), 0.0, 1.0)
        t = time.process_time()
        full = mrf.decode(p, args.beta, method="expansion", image=im, fixed=lab)
        t_full += time.process_time() - t
        t = time.process_time()
        cand = class_proposal(m, im, lab, args.beta, w)
        t_cand += time.process_time() - t
        equal += int(np.count_nonzero(full == cand))
        total += full.size
        n_cand.append(len(np.unique(np.r_[p.argmax(axis=2).ravel(), lab[lab >= 0]])))
    print(f"| {args.maps} SIFT Flow training maps, beta {args.beta:g} | CPU s | per image |")
    print("|---|---|---|")
    print(f"| expansion over all {len(d.classes)} classes | {t_full:.1f} | {t_full / len(maps):.2f} |")
    print(f"| expansion over the candidate classes (`class_proposal`) | {t_cand:.1f} | {t_cand / len(maps):.2f} |")
    print(f"\nspeed-up {t_full / t_cand:.1f}x; equal pixels {100 * equal / total:.3f} %; candidate classes per "
          f"image: median {np.median(n_cand):.0f}, max {max(n_cand)}")


if __name__ == "__main__":
    main()
