"""Decode time of chm.mrf on a 260 x 210 map (the Weizmann image size).

Usage::

    python -m benchmarks.bench_mrf [--beta 1.0] [--repeat 5] [--edmonds-karp]

The binary map is a smooth random field (Gaussian-filtered noise, logit
std 2) plus independent per-pixel logit noise, passed through a sigmoid;
the K = 3 map is the softmax of three such fields.  Times are the median
of ``--repeat`` runs after a warm-up call (numba compilation / cache load
excluded).  Targets: graph cut well under 100 ms, LBP within 10x of it.
"""

import argparse
import time

import numpy as np
from scipy import ndimage

from chm import mrf

H, W = 260, 210


def smooth_logits(rng, noise):
    z = ndimage.gaussian_filter(rng.standard_normal((H, W)), 8)
    return 2.0 * z / z.std() + noise * rng.standard_normal((H, W))


def timed(fn, repeat):
    """Median wall and CPU seconds of ``fn()`` and its last result.

    CPU time is shown too because the machine may be shared: it is less
    inflated by other processes than the wall clock.
    """
    fn()                                   # warm-up: compile / load cache
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return float(np.median(wall)), float(np.median(cpu)), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--noise", type=float, default=1.5,
                    help="std of the per-pixel logit noise")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--edmonds-karp", action="store_true",
                    help="also time maximum_flow(method='edmonds_karp') "
                         "(slow: ~15 s per call)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    p2 = 1.0 / (1.0 + np.exp(-smooth_logits(rng, args.noise)))
    z3 = np.stack([smooth_logits(rng, args.noise) for _ in range(3)], -1)
    p3 = np.exp(z3 - z3.max(-1, keepdims=True))
    p3 /= p3.sum(-1, keepdims=True)

    rows = []
    for name, p, method in [("graphcut", p2, "graphcut"),
                            ("icm", p2, "icm"), ("lbp", p2, "lbp"),
                            ("meanfield", p2, "meanfield"),
                            ("expansion K=3", p3, "expansion"),
                            ("icm K=3", p3, "icm"), ("lbp K=3", p3, "lbp")]:
        t, c, (_, e) = timed(lambda: mrf.decode(p, args.beta, method,
                                                return_energy=True),
                             args.repeat)
        rows.append((name, t, c, e))

    # The bare cut with each flow algorithm, to show where the time goes.
    u = -np.log(np.maximum(np.stack([1 - p2, p2], -1), mrf.EPS))
    offs, w = mrf.edge_weights((H, W), args.beta)
    d = u[..., 1] - u[..., 0]
    flows = ["dinic"] + (["edmonds_karp"] if args.edmonds_karp else [])
    for fm in flows:
        rep = args.repeat if fm == "dinic" else 1
        t, c, (lab, info) = timed(
            lambda: mrf.graphcut_binary(d, w, w, offs, method=fm), rep)
        e = mrf.energy(lab.astype(int), p2, args.beta)
        rows.append((f"  cut only ({fm})", t, c, e))

    gc = rows[0][1]
    print(f"{H}x{W}, beta={args.beta}, logit noise={args.noise}, "
          f"median of {args.repeat}")
    print(f"{'method':<24}{'wall [ms]':>10}{'cpu [ms]':>10}{'x graphcut':>12}"
          f"{'energy':>14}")
    for name, t, c, e in rows:
        print(f"{name:<24}{t * 1e3:>10.1f}{c * 1e3:>10.1f}{t / gc:>12.2f}"
              f"{e:>14.2f}")
    print(f"integer scale {info['scale']:.1f}, rounding bound n_arcs/scale "
          f"= {info['tol']:.2f} (energy units)")


if __name__ == "__main__":
    main()
