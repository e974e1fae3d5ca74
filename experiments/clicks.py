"""Clicks as users give them: uniform vs balanced clicks, the labels' class prior vs EM's.

The paper draws N labelled pixels per image uniformly (``--clicks uniform``); a user clicks every
class in view (``balanced``: N / 2 per class present). With balanced clicks the labels' class
balance follows the clicker, and so do a decision rule and a self-training guard that take
their prior from the labels (``class_prior="labels"``); ``class_prior="em"`` estimates the
prior from the model's own maps of the training images (:func:`chm.thresholds.em_prior`).

Tasks: ``weizmann`` (Table 1's horses, N labels per training image, the same draws and seeds
as :mod:`experiments.weizmann`), and ``stanford-class``: one Stanford Background class against
the rest (fold 0; a binary task nobody designed the recipe on), ``--images`` training images.
Nothing is chosen here: every method runs with its defaults, and the test error (with
foreground IoU and the predicted foreground fraction) is reported as mean +- std over draws,
beside the error of predicting all background.

    python -m experiments.clicks --task weizmann --draws 0,1,2 --out results/clicks
    python -m experiments.clicks --task stanford-class --class foreground --images 200 --draws 0

One JSON per finished (task, clicks, prior, method, draw) in OUT/runs (a stopped run resumes);
OUT/clicks_TASK_NN.md is the table.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from chm import CHM
from chm.cascade.cache import FeatureCache
from chm.datasets import STANFORD_CLASSES, load_stanford_background, load_weizmann_horse
from chm.metrics import class_iou, pixel_error
from chm.utils import run_main
from experiments._common import data_root, table1_labels, table1_seed, weizmann_root, write_json

METHODS = {"supervised": {}, "auto": {"semi_supervised": "auto"}}


def load(args):
    """(train images, train masks, test images, test masks, ignore) of the task."""
    if args.task == "weizmann":
        d = load_weizmann_horse(weizmann_root(args.data))
        return d.train_images, d.train_masks, d.test_images, d.test_masks, None
    d = load_stanford_background(Path(data_root(args.data)), fold=0)
    c = STANFORD_CLASSES.index(args.cls)
    binary = [np.where(m < 0, -1, (m == c).astype(np.int8)).astype(np.int8) for m in d.train_masks + d.test_masks]
    n = len(d.train_images) if args.images is None else args.images
    pick = np.random.default_rng([args.seed, 7]).permutation(len(d.train_images))[:n]
    k = len(d.train_masks)
    return ([d.train_images[i] for i in pick], [binary[i] for i in pick], d.test_images, binary[k:], -1)


def run(args, data, clicks, prior, method, draw, cache):
    path = Path(args.out) / "runs" / f"{args.task}_N{args.n}_{clicks}_{prior}_{method}_d{draw}.json"
    if path.exists():
        return json.loads(path.read_text())
    train, masks, test, truth, ignore = data
    labels = table1_labels(masks, args.n, draw, args.seed, clicks, ignore)
    model = CHM(levels=3, stages=2, class_prior=prior, random_state=table1_seed(args.n, draw, args.seed),
                n_jobs=args.n_jobs, feature_cache=cache, progress=not args.quiet, **METHODS[method])
    model.fit(train, labels)
    pred = model.predict(test)
    known = [t != -1 for t in truth]
    row = {"task": args.task, "n": args.n, "clicks": clicks, "class_prior": prior, "method": method, "draw": draw,
           "error": pixel_error(pred, truth, ignore=ignore),
           "iou": float(class_iou(pred, truth, 2, ignore=ignore)[1]),
           "predicted_foreground": float(sum(p[k].sum() for p, k in zip(pred, known)) / sum(k.sum() for k in known)),
           "prior": float(model.cascade_.prior), "threshold": float(model.threshold_),
           "label_foreground": float(np.mean(np.concatenate([lab[lab >= 0] for lab in labels]))),
           "fit_seconds": float(sum(v if isinstance(v, float) else sum(v.values())
                                    for v in model.timings_.values()))}
    write_json(path, row)
    return row


def table(rows, truth_fg):
    lines = [f"Test pixel error (%) mean ± sample std (n − 1) over draws [foreground IoU %; predicted foreground %; class prior "
             f"in effect]. All background errs {100 * truth_fg:.2f} % (the test foreground fraction).", "",
             "| clicks | class_prior | method | draws | error | fg IoU | predicted fg | prior |", "|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["clicks"], r["class_prior"], r["method"]) for r in rows})
    for k in keys:
        rs = [r for r in rows if (r["clicks"], r["class_prior"], r["method"]) == k]
        f = lambda name: np.array([100 * r[name] for r in rs])  # noqa: E731
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {len(rs)} | {f('error').mean():.2f} ± {f('error').std(ddof=1) if len(rs) > 1 else 0.0:.2f} | "
                     f"{f('iou').mean():.1f} | {f('predicted_foreground').mean():.1f} | {f('prior').mean():.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("weizmann", "stanford-class"), default="weizmann")
    ap.add_argument("--class", dest="cls", choices=STANFORD_CLASSES, default="foreground",
                    help="stanford-class: the class against the rest")
    ap.add_argument("--images", type=int, default=None, help="stanford-class: training images (default: all 572)")
    ap.add_argument("--n", type=int, default=10, help="labelled pixels per training image")
    ap.add_argument("--draws", default="0,1,2,3,4")
    ap.add_argument("--clicks", default="uniform,balanced")
    ap.add_argument("--priors", default="labels,em")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="results/clicks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    data = load(args)
    truth = data[3]
    truth_fg = sum(int((t == 1).sum()) for t in truth) / sum(int((t >= 0).sum()) for t in truth)
    (Path(args.out) / "runs").mkdir(parents=True, exist_ok=True)
    cache = FeatureCache(Path(args.out) / "feature_cache", max_bytes=int(6e9))
    rows = []
    for draw in (int(d) for d in args.draws.split(",")):
        for clicks in args.clicks.split(","):
            for prior in args.priors.split(","):
                for method in args.methods.split(","):
                    r = run(args, data, clicks, prior, method, draw, cache)
                    print(json.dumps(r), flush=True)
                    rows.append(r)
    text = f"# {args.task}, N = {args.n}\n\n" + table(rows, truth_fg)
    (Path(args.out) / f"clicks_{args.task}_N{args.n}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    run_main(main)
