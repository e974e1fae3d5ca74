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
    from chm.utils._signals import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
