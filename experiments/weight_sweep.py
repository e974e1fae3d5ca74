"""Each method's weight curve on one sparse-label draw of the Weizmann split (N labels per image).

For every method and weight, two numbers:

* held-out: the error on the sparse labels of a fifth of the training images, for a model fitted
  on the other four fifths: what the selection rule of experiments/weizmann.py sees
  (``chm.selection``);
* test: the pooled test pixel error of a model fitted on all training images, with its predicted
  foreground fraction (truth 24.8 %): what the choice is worth, for orientation only.

    python experiments/weight_sweep.py                      # every method, N = 10
    python experiments/weight_sweep.py --methods tv --weights '{"tv": [0.1, 0.3, 1, 3]}'

Writes OUT/sweep.md, OUT/sweep.json and OUT/sweep.png (one panel per method); resumes from
OUT/sweep.json when interrupted.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chm import CHM, mrf  # noqa: E402
from chm.datasets import load_weizmann_horse, sample_sparse_labels  # noqa: E402
from chm.io.files import write_atomic  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402
from chm.selection import heldout_split, sparse_error  # noqa: E402

WEIGHTS = {"tv": [0.03, 0.1, 0.3, 1.0], "contrast": [0.03, 0.1, 0.3, 1.0], "l2": [1e-4, 1e-3, 1e-2, 1e-1],
           "self-training": [4.0, 8.0, 16.0, 32.0], "mrf": [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]}
NAMES = {"tv": "TV alpha", "contrast": "contrast alpha", "l2": "L2 weight decay",
         "self-training": "self-training beta", "mrf": "MRF post-processing beta"}


def params(method, w):
    return {"tv": {"semi_supervised": "tv", "alpha": w}, "contrast": {"semi_supervised": "contrast", "alpha": w},
            "l2": {"weight_decay": w}, "self-training": {"semi_supervised": "self-training", "beta": w},
            "mrf": {}}[method]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default=",".join(WEIGHTS))
    ap.add_argument("--weights", default="{}", help="JSON {method: [weights]} replacing the defaults")
    ap.add_argument("--n", type=int, default=10, help="labelled pixels per training image")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--cache", default=None, help="feature cache folder")
    ap.add_argument("--n-jobs", type=int, default=-1)
    ap.add_argument("--out", default="results/weight_sweep")
    args = ap.parse_args(argv)
    weights = {**WEIGHTS, **json.loads(args.weights)}
    data = load_weizmann_horse(args.data)
    labels = sample_sparse_labels(data.train_masks, args.n, np.random.default_rng([args.seed, args.n, 0]))
    fit, held = heldout_split(len(labels), [args.seed, args.n, 99])
    pick = lambda lst, idx: [lst[i] for i in idx]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "sweep.json"
    res = json.loads(store.read_text()) if store.exists() else {}
    common = dict(levels=args.levels, n_jobs=args.n_jobs, feature_cache=args.cache, progress=False,
                  random_state=args.seed)

    def save():
        write_atomic(store, lambda fh: fh.write(json.dumps(res, indent=1).encode()))

    for method in args.methods.split(","):
        rows = res.setdefault(method, {})
        todo = [w for w in weights[method] if str(w) not in rows]
        if not todo:
            continue
        t0 = time.perf_counter()
        if method == "mrf":  # one supervised model per split; beta only changes the decoding
            small = CHM(**common).fit(pick(data.train_images, fit), pick(labels, fit))
            hmaps = small.predict_proba(pick(data.train_images, held))
            full = CHM(**common).fit(data.train_images, labels)
            tmaps = full.predict_proba(data.test_images)
            for w in todo:
                hmask = [mrf.decode(p, w, image=im) for p, im in zip(hmaps, pick(data.train_images, held))]
                tmask = [mrf.decode(p, w, image=im) for p, im in zip(tmaps, data.test_images)]
                rows[str(w)] = _row(hmask, pick(labels, held), tmask, data.test_masks, time.perf_counter() - t0)
                save()
            continue
        for w in todo:
            t0 = time.perf_counter()
            small = CHM(**common, **params(method, w)).fit(pick(data.train_images, fit), pick(labels, fit))
            hmask = [p > small.threshold_ for p in small.predict_proba(pick(data.train_images, held))]
            full = CHM(**common, **params(method, w)).fit(data.train_images, labels)
            tmask = [p > full.threshold_ for p in full.predict_proba(data.test_images)]
            rows[str(w)] = _row(hmask, pick(labels, held), tmask, data.test_masks, time.perf_counter() - t0)
            save()
            print(f"{method} {w:g}: {rows[str(w)]}", flush=True)
    lines = [f"N = {args.n}, draw of seed {args.seed}: held-out = sparse-label error on {len(held)} held-out "
             f"training images (the selection rule); test = pooled test pixel error (orientation only)", ""]
    for method in args.methods.split(","):
        lines += [f"| {NAMES[method]} | held-out error | test error | test foreground | s |", "|---|---|---|---|---|"]
        for w in weights[method]:
            r = res[method][str(w)]
            lines.append(f"| {w:g} | {100 * r['heldout']:.2f} % | {100 * r['test']:.2f} % | "
                         f"{100 * r['foreground']:.1f} % | {r['seconds']:.0f} |")
        lines.append("")
    (out / "sweep.md").write_text("\n".join(lines))
    print("\n".join(lines))
    plot(res, args.methods.split(","), weights, out / "sweep.png")


def _row(hmask, hlabels, tmask, tmasks, seconds):
    fg = sum(int(np.sum(m)) for m in tmask) / sum(np.size(m) for m in tmask)
    return {"heldout": sparse_error(hmask, hlabels), "test": pixel_error(tmask, tmasks), "foreground": fg,
            "seconds": seconds}


def plot(res, methods, weights, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3), squeeze=False)
    for ax, method in zip(axes[0], methods):
        ws = weights[method]
        x = np.arange(len(ws))
        for key, label, color in (("heldout", "held-out sparse labels", "tab:orange"), ("test", "test", "tab:blue")):
            ax.plot(x, [100 * res[method][str(w)][key] for w in ws], marker="o", color=color, label=label)
        ax.set_xticks(x, [f"{w:g}" for w in ws], fontsize=7)
        ax.set_title(NAMES[method], fontsize=9)
        ax.set_ylabel("error (%)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    from chm.utils._signals import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
