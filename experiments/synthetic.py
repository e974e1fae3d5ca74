"""Synthetic check in seconds: noisy piecewise-constant shapes, 5 labelled pixels per image.

The total-variation loss must beat the supervised model (alpha = 0) clearly here: 4 training
images give 20 labelled pixels for an 81-value intensity stencil, so the supervised classifier
fits the noise, while TV asks for maps that are piecewise constant on every training pixel.
The classifier is logistic regression at full resolution only (no cascade), which isolates the
loss; see the README for how the LDNN and the cascade respond to TV.

    python experiments/synthetic.py [--alpha 0.3] [--seeds 0,1,2]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chm import CHM  # noqa: E402
from chm.datasets import sample_sparse_labels  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402


def make_shapes(n_images, shape=(48, 48), noise=0.35, rng=None):
    """Images of 1-3 random rectangles/ellipses (foreground 0.65, background 0.35) plus Gaussian noise.

    Returns
    -------
    images : list of float64 arrays in [0, 1]
    masks : list of uint8 arrays (1 = foreground)
    """
    rng = np.random.default_rng(rng)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    images, masks = [], []
    for _ in range(n_images):
        mask = np.zeros(shape, bool)
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
            ry, rx = rng.uniform(0.1, 0.3) * h, rng.uniform(0.1, 0.3) * w
            if rng.random() < 0.5:
                mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            else:
                mask |= (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        img = np.where(mask, 0.65, 0.35) + rng.normal(scale=noise, size=shape)
        images.append(np.clip(img, 0, 1))
        masks.append(mask.astype(np.uint8))
    return images, masks


def make_scenes(n_images, shape=(48, 64), n_classes=4, noise=0.15, rng=None):
    """Colour images of K-class scenes: horizontal bands (a sky, ground, ...) with a blob in one,
    each class with its own mean colour, plus Gaussian noise.

    Returns
    -------
    images : list of float64 arrays (H, W, 3) in [0, 1]
    masks : list of uint8 arrays (H, W), classes 0 .. n_classes-1
    """
    rng = np.random.default_rng(rng)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    colours = np.random.default_rng(12345).uniform(0.15, 0.85, size=(n_classes, 3))
    images, masks = [], []
    for _ in range(n_images):
        order = rng.permutation(n_classes)
        cuts = np.sort(rng.uniform(0.15, 0.85, size=min(2, n_classes - 1))) * h
        mask = np.full(shape, order[0], dtype=np.uint8)
        for c, cut in zip(order[1:], cuts):
            mask[yy >= cut + rng.normal(0, 2, size=w)[None, :]] = c
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.1, 0.25) * h, rng.uniform(0.1, 0.25) * w
        mask[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = order[-1]
        img = colours[mask] + rng.normal(scale=noise, size=shape + (3,))
        images.append(np.clip(img, 0, 1))
        masks.append(mask)
    return images, masks


def run(alpha=0.3, seed=0, n_train=4, n_test=16, n_labels=5, noise=0.5, progress=False):
    """Test pixel error of the supervised and the TV-regularised model on the same sparse labels."""
    rng = np.random.default_rng(seed)
    train_x, train_y = make_shapes(n_train, noise=noise, rng=rng)
    test_x, test_y = make_shapes(n_test, noise=noise, rng=rng)
    labels = sample_sparse_labels(train_y, n_labels, rng)
    common = dict(levels=0, stages=1, classifier="logistic", features=("intensity",), epochs=300,
                  progress=progress, random_state=seed)
    errors = {}
    for name, a in (("supervised", 0.0), ("tv", alpha)):
        model = CHM(semi_supervised="tv", alpha=a, **common).fit(train_x, labels)
        errors[name] = pixel_error(model.predict(test_x), test_y)
    return errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alpha", type=float, default=0.3)
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    print("| seed | supervised (alpha=0) | TV (alpha=%g) |" % args.alpha)
    print("|---|---|---|")
    all_err = []
    for seed in (int(s) for s in args.seeds.split(",")):
        err = run(args.alpha, seed)
        all_err.append(err)
        print(f"| {seed} | {100 * err['supervised']:.2f} % | {100 * err['tv']:.2f} % |")
    mean = {k: 100 * np.mean([e[k] for e in all_err]) for k in ("supervised", "tv")}
    print(f"| mean | {mean['supervised']:.2f} % | {mean['tv']:.2f} % |  ({time.perf_counter() - t:.1f} s)")


if __name__ == "__main__":
    from chm._signals import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
