"""How many pixels the superpixel labels cover, and how many of them are wrong.

For each dataset and ``superpixel_scale``: sparse labels of the experiments' first draw (N per
training image) are spread over superpixels (:func:`chm.superpixels.expand_labels`) and compared
with the training images' dense masks. A diagnostic of the labels a ``semi_supervised=
"superpixels"`` fit trains on; the dense masks are never used to choose anything (the scale is
chosen on held-out training images' sparse labels: benchmarks/selftraining_screen.py).

    python -m benchmarks.bench_superpixels [--datasets weizmann,stanford,siftflow] [--scales 25,50,100,200]
"""

import argparse
import time

import numpy as np

from chm.datasets import (load_siftflow, load_stanford_background, load_weizmann_horse,
                          sample_sparse_labels)
from chm.io.images import as_float_image
from chm.semi.superpixels import expand_labels

from experiments._common import data_root, weizmann_root


def load(name, root):
    if name == "weizmann":
        return load_weizmann_horse(weizmann_root(root), download=False)
    if name == "stanford":
        return load_stanford_background(data_root(root), fold=0, seed=0)
    return load_siftflow(data_root(root))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="folder holding the datasets")
    ap.add_argument("--datasets", default="weizmann,stanford,siftflow")
    ap.add_argument("--scales", default="25,50,100,200")
    ap.add_argument("--n", type=int, default=10, help="labelled pixels per training image")
    ap.add_argument("--images", type=int, default=200, help="training images looked at (the first ones)")
    args = ap.parse_args(argv)
    print(f"N = {args.n}, the first {args.images} training images of each dataset, draw 0 of the experiments")
    print("| dataset | scale | labelled pixels | wrong among them | foreground among them | seconds |")
    print("|---|---|---|---|---|---|")
    for name in args.datasets.split(","):
        data = load(name, args.data)
        masks = data.train_masks[:args.images]
        images = [as_float_image(im) for im in data.train_images[:args.images]]
        # The experiments' draw 0: Weizmann [seed 0, N, 0]; scenes the same with unknown pixels left out.
        labels = sample_sparse_labels(masks, args.n, np.random.default_rng([0, args.n, 0]),
                                      **({} if name == "weizmann" else {"ignore": -1}))
        for scale in (float(s) for s in args.scales.split(",")):
            t0 = time.perf_counter()
            known = wrong = total = fg = 0
            for im, lab, m in zip(images, labels, masks):
                spread = expand_labels(im, lab, scale)
                sel = (spread >= 0) & (m >= 0)
                known += int(sel.sum())
                wrong += int(np.sum(spread[sel] != m[sel]))
                fg += int(np.sum(spread[sel] == 1))
                total += int(np.sum(m >= 0))
            fg_cell = f"{100 * fg / known:.1f} %" if name == "weizmann" else "–"
            print(f"| {name} | {scale:g} | {100 * known / total:.1f} % | {100 * wrong / known:.2f} % | {fg_cell} | "
                  f"{time.perf_counter() - t0:.1f} |", flush=True)


if __name__ == "__main__":
    main()
