"""Fingerprints of Table 1's N = 10, draw 0 refits: whether a change of the code changed a model.

Fits the supervised CHM, TV (alpha 0.1) and the recommended ``"auto"`` on the labels and seed that
``experiments.weizmann`` uses for N = 10, draw 0 (through a float16 feature cache, as there),
and prints the SHA-256 of each model's test probability maps with its test error. Two commits
that print the same hashes trained bit-identical models.

    python -m experiments.fingerprint [--data FOLDER] [--methods supervised,tv,auto]
"""

import argparse
import hashlib
import json
import tempfile

import numpy as np

from chm import CHM
from chm.cascade.cache import FeatureCache
from chm.datasets import load_weizmann_horse
from chm.metrics import pixel_error
from chm.utils import run_main
from experiments._common import table1_labels, table1_seed, weizmann_root

METHODS = {"supervised": {}, "tv": {"semi_supervised": "tv", "alpha": 0.1}, "auto": {"semi_supervised": "auto"}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="Weizmann folder (default: $CHM_DATA, then ../shared/data)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    data = load_weizmann_horse(weizmann_root(args.data))
    n, draw, seed = 10, 0, 0
    labels = table1_labels(data.train_masks, n, draw, seed)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(tmp, max_bytes=int(4e9))
        for method in args.methods.split(","):
            model = CHM(levels=3, stages=2, random_state=table1_seed(n, draw, seed), n_jobs=args.n_jobs,
                        feature_cache=cache, progress=False, **METHODS[method])
            maps = model.fit(data.train_images, labels).predict_proba(data.test_images)
            h = hashlib.sha256()
            for p in maps:
                h.update(np.ascontiguousarray(p).tobytes())
            out[method] = {"sha256": h.hexdigest(), "error": pixel_error(model.decide(maps),
                                                                         data.test_masks)}
            print(method, json.dumps(out[method]), flush=True)


if __name__ == "__main__":
    run_main(main)
