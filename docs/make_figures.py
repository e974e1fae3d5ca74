"""The README's picture: an image, a few clicks, the result.

    python docs/make_figures.py [--data PATH] [--images 20] [--clicks 5] [--seed 0] [--n-jobs 1]

Trains a CHM with the default settings on ``--images`` Weizmann training horses, each with
``--clicks`` labelled pixels per class (what a user clicks: a few on the horse, a few on the
background), segments the 164 test horses, and writes ``docs/few_clicks.png``: one training
image with its clicks, then three test images with the predicted horse outlined. Prints the
settings, the fit time and the test pixel error, which the README quotes. The data come from
``--data``, else ``$CHM_DATA``, else ``../shared/data`` beside the repository.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from chm import CHM
from chm.datasets import find_data_root, load_weizmann_horse
from chm.metrics import pixel_error

SHOWN = (0, 5, 9)  # test images in the figure


def clicks(mask, k, rng):
    """Label map with ``k`` random pixels of each class labelled, -1 elsewhere."""
    labels = np.full(mask.shape, -1, np.int8)
    for cls in (0, 1):
        ys, xs = np.nonzero(mask == cls)
        pick = rng.choice(len(ys), k, replace=False)
        labels[ys[pick], xs[pick]] = cls
    return labels


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--images", type=int, default=20, help="training images")
    ap.add_argument("--clicks", type=int, default=5, help="labelled pixels per class and image")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "docs" / "few_clicks.png"))
    args = ap.parse_args(argv)
    root = args.data or find_data_root(extra=[ROOT.parent / "shared" / "data"])
    if root is None:
        sys.exit("Weizmann data not found: pass --data or set CHM_DATA")
    data = load_weizmann_horse(root, download=False)
    rng = np.random.default_rng(args.seed)
    train = rng.choice(len(data.train_images), args.images, replace=False)
    images = [data.train_images[i] for i in train]
    labels = [clicks(data.train_masks[i], args.clicks, rng) for i in train]

    t = time.perf_counter()
    model = CHM(n_jobs=args.n_jobs, random_state=args.seed).fit(images, labels)
    fit = time.perf_counter() - t
    masks = model.predict(data.test_images)
    error = pixel_error(masks, data.test_masks)
    print(f"{args.images} training images x {args.clicks} clicks per class ({2 * args.clicks * args.images} "
          f"labelled pixels), CHM defaults, seed {args.seed}: fit {fit:.0f} s, test pixel error {100 * error:.1f} % "
          f"on {len(data.test_images)} test images")
    plot(images[0], labels[0], [data.test_images[i] for i in SHOWN], [masks[i] for i in SHOWN], args.out)
    print(f"wrote {args.out}")


def plot(image, labels, tests, masks, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(tests), figsize=(2.6 * (1 + len(tests)), 2.5))
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
    for cls, colour in ((1, "#ff3030"), (0, "#30a0ff")):
        ys, xs = np.nonzero(labels == cls)
        axes[0].scatter(xs, ys, s=28, c=colour, edgecolors="white", linewidths=0.8)
    axes[0].set_title("training: a few clicks\n(red horse, blue background)", fontsize=8)
    for ax, im, mask in zip(axes[1:], tests, masks):
        ax.imshow(im, cmap="gray", vmin=0, vmax=1)
        ax.contour(mask, levels=[0.5], colors="#ff3030", linewidths=1.2)
        ax.set_title("new image: result", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    from chm.utils import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
