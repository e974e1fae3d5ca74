"""Large images: time and peak memory of tiled against whole-image prediction (issue 36).

    python -m benchmarks.large_image [--sizes 1000,3000] [--tile-sizes auto,1024] [--max-whole-gb 4]

Fits a small model (the default architecture, levels 3 and the default bank, on 4 synthetic
128 x 128 images with 5 % of their pixels labelled and 2 epochs: its accuracy is irrelevant
here), then predicts one synthetic gray image of each size, each prediction in a fresh process on
one core: whole (:meth:`chm.cascade.spec.FittedCascade.predict_image`, what ``predict_proba`` did
before tiling), then ``CHM.predict_proba`` with each of ``--tile-sizes`` (auto: ``tile_size=None``).
Prints a markdown table: wall and CPU seconds (CPU time is the steadier one on a busy machine),
the process's peak RSS (``getrusage``), its RSS before the prediction (psutil, the ``bench``
extra) and the largest difference from the whole image's map.
The whole image is skipped when its filter bank alone would exceed ``--max-whole-gb``.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from chm import CHM, load
from chm.cascade.pyramid import level_shape
from chm.cascade.tiling import auto_tile_size, halo, receptive_radius
from chm.datasets import make_shapes


def fit_model(path):
    rng = np.random.default_rng(0)
    images, masks = make_shapes(4, shape=(128, 128), rng=rng)
    labels = [np.where(rng.random(m.shape) < 0.05, m, -1).astype(np.int8) for m in masks]
    CHM(epochs=2, n_jobs=1, progress=False, random_state=0).fit(images, labels).save(path)


def whole_bank_gb(model, shape):
    """The float32 filter bank of every level of an image of ``shape``, in GB."""
    levels = model.cascade_.spec.levels
    return 4 * model.bank_.n_features * sum(np.prod(level_shape(shape, l)) for l in range(levels + 1)) / 1e9


def worker(model_path, image_path, mode, tile_size, out_path):
    """One prediction in this process; prints its seconds and memory as JSON."""
    model = load(model_path)
    model.set_params(n_jobs=1, progress=False, tile_size=tile_size)
    image = np.load(image_path)
    model.predict_proba([image[:64, :64]])  # warm-up: numba's cached kernels, FFT plans
    before = psutil.Process().memory_info().rss
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "whole":
        cascade = model.cascade_
        proba = cascade.predict_image(cascade.spec.prepare(image))
    else:
        proba = model.predict_proba([image])[0]
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    np.save(out_path, proba)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak": peak, "before": before}))


def run(model_path, image_path, mode, tile_size, out_path):
    """:func:`worker` in a fresh process: its peak RSS is this prediction's alone."""
    cmd = [sys.executable, "-m", "benchmarks.large_image", "--worker", model_path, image_path, mode,
           str(tile_size), out_path]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def measured(r):
    """The table cells of one :func:`run`: seconds, peak RSS, RSS before."""
    return f"{r['seconds']:.1f} / {r['cpu']:.1f} | {r['peak'] / 2**30:.2f} GiB | {r['before'] / 2**30:.2f} GiB"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,3000", help="image sides, comma-separated (square gray images)")
    ap.add_argument("--tile-sizes", default="auto", help="tiles' sides, comma-separated; auto = tile_size=None")
    ap.add_argument("--max-whole-gb", type=float, default=4.0,
                    help="skip the whole-image prediction when its filter bank alone exceeds this (GB)")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        model_path, image_path, mode, tile, out_path = args.worker
        return worker(model_path, image_path, mode, None if tile == "None" else int(tile), out_path)

    tile_sizes = [None if t == "auto" else int(t) for t in args.tile_sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "model.npz")
        t0 = time.perf_counter()
        fit_model(model_path)
        model = load(model_path)
        margin = halo(model.cascade_)
        print(f"model: {model!r}, {model.bank_.n_features} features, fitted in {time.perf_counter() - t0:.1f} s; "
              f"receptive radius {receptive_radius(model.cascade_)} px, halo {margin} px; one core per "
              f"prediction; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print()
        print("| image | prediction | wall / CPU s | peak RSS | RSS before | max abs difference from whole |")
        print("|---|---|---|---|---|---|")
        for side in (int(s) for s in args.sizes.split(",")):
            shape = (side, side)
            image_path = os.path.join(tmp, "image.npy")
            np.save(image_path, make_shapes(1, shape=shape, rng=np.random.default_rng(side))[0][0])
            whole_path = None
            if whole_bank_gb(model, shape) > args.max_whole_gb:
                print(f"| {side} × {side} | whole | skipped: its filter bank alone is "
                      f"{whole_bank_gb(model, shape):.1f} GB | | | |")
            else:
                whole_path = os.path.join(tmp, "whole.npy")
                r = run(model_path, image_path, "whole", None, whole_path)
                print(f"| {side} × {side} | whole | {measured(r)} | – |", flush=True)
            for tile_size in tile_sizes:
                out_path = os.path.join(tmp, "tiled.npy")
                r = run(model_path, image_path, "tiled", tile_size, out_path)
                tile = tile_size or auto_tile_size(model.cascade_, shape)
                what = "whole (under the threshold)" if tile is None else \
                    f"tiled, {tile} px tiles{' (auto)' if tile_size is None else ''}"
                diff = "–" if whole_path is None else \
                    f"{np.abs(np.load(out_path) - np.load(whole_path)).max():.2g}"
                print(f"| {side} × {side} | {what} | {measured(r)} | {diff} |", flush=True)
            Path(image_path).unlink()


if __name__ == "__main__":
    main()
