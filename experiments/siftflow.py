"""Table 3 of the paper: SIFT Flow (2488 training / 200 test images), N labelled pixels per image.

    python -m experiments.siftflow --classifier convnet --out results/siftflow_convnet
    python -m experiments.siftflow --sizes 10 --draws 1 --methods supervised,tv   # one draw, no MRF
    python -m experiments.siftflow --quick --out /tmp/q                          # smoke run

Each (N, draw) trains a supervised and a TV ConvNet on the same sparse labels (33 classes; the
dataset's unlabelled pixels are never drawn and not scored); MRF = alpha-expansion on the
supervised output with beta chosen on held-out training images (see :mod:`experiments.scenes`).
Scores: test pixel error and mean IoU over the classes; ``--clicks balanced`` draws N / K' labels per
class present instead of N uniform ones. Writes OUT/table3.md, table3.csv, fig_error.png,
fig_samples.png and OUT/runs/ (resumable).
"""

if __name__ == "__main__" and not __package__:  # python -m experiments.siftflow: run as the module
    from _common import run_as_module

    run_as_module("experiments.siftflow")

from experiments import scenes
from chm.datasets import load_siftflow

# Paper Table 3 (mean, std) in %: supervised, MRF post-processing, semi-supervised (TV).
PAPER = {10: ((33.94, 0.57), (34.26, 0.62), (25.41, 0.25)), 20: ((31.92, 1.32), (32.15, 1.31), (24.39, 0.38)),
         30: ((28.80, 0.60), (29.05, 0.68), (23.77, 0.62)), 40: ((27.66, 1.05), (27.88, 1.08), (23.55, 0.40)),
         50: ((26.53, 1.30), (26.79, 1.31), (23.64, 0.29))}


def splits(args):
    data = load_siftflow(args.data)
    if args.quick:
        data = scenes.subsample(data, 8, 2)
    yield "siftflow", data


def main(argv=None):
    args = scenes.parse_args(argv, __doc__)
    args.out = scenes.default_out(args, "siftflow")
    if args.quick:
        args.beta_images = 2
    return scenes.run(args, splits(args), PAPER, "table3", "SIFT Flow (Table 3)",
                      f"SIFT Flow, standard split, {args.classifier}; runs = draws.")


if __name__ == "__main__":
    main()
