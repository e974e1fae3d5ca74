"""Where the time of one prediction goes: a profile of ``CHM.predict_proba`` on one image.

    python -m benchmarks.bench_latency [--data PATH] [--dataset weizmann|stanford] [--shape 210 260] [--features F1,F2,...]
                                 [--network small|original] [--classifier-params JSON] [--levels 3]
                                 [--repeats 5] [--n-jobs 2]

Trains a CHM on 20 training images (40 labelled px each: the accuracy is irrelevant here, the
network sizes are what count), then predicts one test image resized to ``--shape`` in this
process (``n_jobs=1``) under cProfile and prints a table: milliseconds per prediction spent in
each filter family (all pyramid levels), the classifiers' evaluation, the context stencils and
the rest, plus the best-of-``--repeats`` wall time without the profiler, with ``n_jobs=1`` and
with ``--n-jobs`` (a single image then has its filter bank computed by that many threads).
The CPU time of the same calls (one BLAS thread) is printed too: it moves less than the wall
time when other jobs share the machine.

``--dataset stanford``: a K-class colour model instead (8 training images of Stanford Background
fold 0, 40 labelled px each, the default bank plus ``position``, ``n_classes=8``), predicting the
first test image at ``--shape`` (default its own 240 x 320).
"""

import os
import argparse
import cProfile
import json
import pstats
import time

import numpy as np
from skimage.transform import resize

from chm import CHM
from chm.datasets import load_stanford_background, load_weizmann_horse, sample_sparse_labels
from chm.classifiers import NETWORKS
from chm.model import DEFAULT_FEATURES
from chm.features import ALL_FAMILIES
from threadpoolctl import threadpool_limits

from experiments._common import data_root, weizmann_root


def _cumtime(stats, module_suffix, name):
    """Cumulative seconds of the function ``name`` defined in a file ending with ``module_suffix``.

    The largest entry, not their sum: a numba-compiled callee can make pstats hold the same
    function twice, each with the whole cumulative time.
    """
    return max((v[3] for (fn, _, func), v in stats.stats.items() if fn.endswith(module_suffix) and func == name),
               default=0.0)


def profile(model, image, repeats):
    model.predict_proba([image])  # warm-up (numba caches, FFT plans)
    wall = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_proba([image])
        wall.append(time.perf_counter() - t0)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(repeats):
        model.predict_proba([image])
    prof.disable()
    st = pstats.Stats(prof)
    per = 1e3 / repeats
    total = _cumtime(st, os.path.join("cascade", "spec.py"), "predict_image") * per
    rows = []
    for fam in model.bank_.families:
        module = "stencil.py" if fam == "intensity" else f"{fam}.py"
        rows.append((f"filter family: {fam}", _cumtime(st, os.path.join("features", module), fam) * per))
    # The context stencil rows are made inside the classifiers' predict_proba, chunk by chunk
    # (features.StencilRows.band); the intensity family calls band() too.
    stencils = _cumtime(st, os.path.join("features", "stencil.py"), "band") * per
    if "intensity" in model.bank_.families:
        stencils -= rows[model.bank_.families.index("intensity")][1]
    classifiers = sum(_cumtime(st, os.path.join("classifiers", f), "predict_proba") for f in ("ldnn.py", "softmax.py"))
    rows.append(("classifiers (GEMM + AND-OR or softmax)", classifiers * per - stencils))
    rows.append(("context stencils (57 values per map and channel)", stencils))
    rows.append(("pyramid (halving, upsampling)", sum(_cumtime(st, os.path.join("cascade", "pyramid.py"), f) * per
                                                      for f in ("pyramid", "upsample", "downsample_n"))))
    rows.append(("other", total - sum(r[1] for r in rows)))
    with threadpool_limits(1):
        cpu = []
        for _ in range(repeats):
            t0 = time.process_time()
            model.predict_proba([image])
            cpu.append(time.process_time() - t0)
    return min(wall), total, rows, min(cpu)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--dataset", default="weizmann", choices=("weizmann", "stanford"))
    ap.add_argument("--shape", type=int, nargs=2, default=None, metavar=("ROWS", "COLS"),
                    help="default: 210 260 (Weizmann), 240 320 (Stanford)")
    ap.add_argument("--features", default=None, help="default: the CHM default bank (Stanford: plus position)")
    ap.add_argument("--network", default="small", choices=tuple(NETWORKS), help="LDNN sizes")
    ap.add_argument("--classifier-params", default="{}", help="JSON overrides of every classifier")
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-jobs", type=int, default=2, help="cores for the second wall time (threads in one process)")
    args = ap.parse_args(argv)
    scene = args.dataset == "stanford"
    families = (tuple(args.features.split(",")) if args.features
                else DEFAULT_FEATURES + ("position",) if scene else DEFAULT_FEATURES)
    unknown = [f for f in families if f not in ALL_FAMILIES]
    if unknown:
        ap.error(f"unknown families {unknown}; valid: {list(ALL_FAMILIES)}")
    args.shape = tuple(args.shape or ((240, 320) if scene else (210, 260)))

    if scene:
        d = load_stanford_background(data_root(args.data), fold=0, seed=0)
        n_train, extra = 8, {"n_classes": len(d.classes)}
    else:
        d = load_weizmann_horse(weizmann_root(args.data))
        n_train, extra = 20, {}
    labels = sample_sparse_labels(d.train_masks[:n_train], 40, np.random.default_rng(0), ignore=-1)
    model = CHM(levels=args.levels, features=families, network=args.network, progress=False, n_jobs=1,
                random_state=0, classifier_params=json.loads(args.classifier_params) or None,
                **extra).fit(d.train_images[:n_train], labels)
    image = resize(d.test_images[0], args.shape, order=1, anti_aliasing=True, preserve_range=True)
    image = image.astype(np.uint8) if scene else image.astype(np.float32)
    wall, total, rows, cpu = profile(model, image, args.repeats)
    model.set_params(n_jobs=args.n_jobs)
    wall_n = profile(model, image, args.repeats)[0]

    print(f"predict_proba of one {args.shape[0]} x {args.shape[1]} {args.dataset} image, levels={args.levels}, "
          f"stages=2, {model.n_classes_} classes, "
          f"features={','.join(families)} ({model.bank_.n_features}), "
          f"network={args.network}, classifier_params={json.loads(args.classifier_params)}, n_jobs=1")
    print(f"wall time (best of {args.repeats}, no profiler): {1e3 * wall:.0f} ms; "
          f"under the profiler: {total:.0f} ms; with n_jobs={args.n_jobs}: {1e3 * wall_n:.0f} ms; "
          f"CPU time (best, one thread): {1e3 * cpu:.0f} ms\n")
    print("| part | ms per image | share |")
    print("|---|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} | {100 * ms / total:.0f} % |")


if __name__ == "__main__":
    main()
