"""Table 2 of the paper: Stanford Background, 5-fold cross-validation, N labelled pixels per image.

    python -m experiments.stanford --classifier convnet --out results/stanford_convnet
    python -m experiments.stanford --folds 0 --sizes 10 --draws 1 --methods supervised,tv   # one draw, no MRF
    python -m experiments.stanford --quick --out /tmp/q                         # smoke run

Folds: ``chm.datasets.load_stanford_background(root, fold, seed)`` (5 random bins of 143 images,
fixed by --seed). Each (fold, N, draw) trains a supervised and a TV ConvNet on the same sparse
labels; MRF = alpha-expansion on the supervised output with beta chosen on held-out training
images (see :mod:`experiments.scenes`). Scores: test pixel error and mean IoU over the 8 classes;
``--clicks balanced`` draws N / K' labels per class present instead of N uniform ones. Writes
OUT/table2.md, table2.csv, fig_error.png, fig_samples.png and OUT/runs/ (resumable).
"""

if __name__ == "__main__" and not __package__:  # python -m experiments.stanford: run as the module
    from _common import run_as_module

    run_as_module("experiments.stanford")

from experiments import scenes
from chm.datasets import load_stanford_background

# Paper Table 2 (mean, std) in %: supervised, MRF post-processing, semi-supervised (TV).
PAPER = {10: ((39.98, 1.35), (40.92, 1.73), (26.19, 0.33)), 20: ((34.35, 0.98), (34.64, 1.03), (24.33, 0.29)),
         30: ((31.36, 0.85), (31.58, 0.83), (23.61, 0.25)), 40: ((29.76, 0.38), (29.93, 0.36), (23.13, 0.16)),
         50: ((27.96, 0.60), (28.13, 0.62), (22.79, 0.24))}


def splits(args):
    for fold in (int(f) for f in args.folds.split(",")):
        data = load_stanford_background(args.data, fold=fold, seed=args.seed)
        if args.quick:
            data = scenes.subsample(data, 8, 2)
        yield f"fold{fold}", data


def main(argv=None):
    args = scenes.parse_args(argv, __doc__, folds=True)
    args.out = scenes.default_out(args, "stanford")
    if args.quick:
        args.folds, args.beta_images = args.folds.split(",")[0], 2
    return scenes.run(args, splits(args), PAPER, "table2", "Stanford Background (Table 2)",
                      f"Stanford Background (fold seed {args.seed}), {args.classifier}; runs = folds x draws.")


if __name__ == "__main__":
    main()
