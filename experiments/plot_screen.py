"""Plot screened variants against one numeric parameter: a weight sweep at a glance.

    python -m experiments.plot_screen results/screen_tv/*.json --param alpha --out docs/tv_sweep.png
    python -m experiments.plot_screen results/screen_tv/*.json --param alpha --series classifier,n

Reads the JSON files ``python -m experiments.screen`` writes (one per variant) and draws four panels
against ``--param`` (log axis): the held-out sparse error with its standard error (and, dashed, the
error at the calibrated threshold where the screen recorded it), the held-out maps' total variation
per pixel, the fraction of pixels decided foreground (two classes) or as the largest class (K
classes), and the spatial loss's share of the gradient norm (mean over the classifiers that carry
it). A variant without the parameter (the supervised ``{}``) is the reference at 0: a horizontal
line with its standard-error band. ``--series`` splits the files into curves by settings (keys of
the variant, the base or the screen: ``classifier``, ``n``, ``dataset``, ...). Prints the table it
plots.
"""

import argparse
import json
from pathlib import Path

import numpy as np

PANELS = ("held-out sparse error (%)", "map TV per pixel", "decided foreground / largest class (%)",
          "spatial share of the gradient norm")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="result JSON files of experiments.screen")
    ap.add_argument("--param", required=True, help="the numeric estimator parameter on the x axis, e.g. alpha")
    ap.add_argument("--series", default="", help="comma-separated settings that split the files into curves")
    ap.add_argument("--title", default=None)
    ap.add_argument("--out", default=None, help="PNG to write (default: only print the table)")
    return ap.parse_args(argv)


def load_rows(files, param, series=()):
    """The screen results as plot rows: dicts with ``x`` (None for the reference), ``series`` and the
    plotted values; raises ValueError for a file that is not a screen result or a non-numeric x."""
    rows = []
    for f in files:
        try:
            r = json.loads(Path(f).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{f}: not a readable JSON file ({e})") from None
        if not isinstance(r, dict) or "heldout_sparse_error" not in r or "variant" not in r:
            raise ValueError(f"{f}: not a result of experiments.screen (no heldout_sparse_error / variant)")
        params = {**r.get("base", {}), **r["variant"]}
        x = params.get(param)
        if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float))):
            raise ValueError(f"{f}: {param} = {x!r} is not a number")
        key = tuple(str(params.get(s, r.get(s, _default(r.get("estimator", "chm"), s)))) for s in series)
        fractions = r.get("heldout_class_fractions")
        share = r.get("spatial_share")
        rows.append({
            "file": str(f), "x": None if x is None or x == 0 else float(x), "series": key,
            "error": 100 * r["heldout_sparse_error"], "se": 100 * r.get("heldout_sparse_error_se", np.nan),
            "calibrated": 100 * r["heldout_sparse_error_calibrated"] if "heldout_sparse_error_calibrated" in r
            else np.nan,
            "tv": r.get("heldout_map_tv", np.nan),
            "fraction": 100 * (r["heldout_foreground"] if "heldout_foreground" in r
                               else max(fractions) if fractions else np.nan),
            "share": float(np.mean(list(share.values()))) if share else np.nan,
        })
    return rows


def _default(estimator, name):
    """The estimator's default of a parameter a file leaves out ("default" if unknown)."""
    if estimator == "chm":
        from chm import CHM

        return CHM().get_params().get(name, "default")
    return "default"


def table(rows, param, series):
    """The plotted numbers as text, one line per row, sorted by series then x."""
    head = f"{'series':<20} {param:>10} {'error %':>8} {'± se':>6} {'calib %':>8} {'map TV':>8} {'fg/top %':>8} {'share':>6}"
    lines = [head]
    for r in sorted(rows, key=lambda r: (r["series"], -1 if r["x"] is None else r["x"])):
        name = ",".join(f"{s}={v}" for s, v in zip(series, r["series"])) or "-"
        x = "0 (ref)" if r["x"] is None else f"{r['x']:g}"
        lines.append(f"{name:<20} {x:>10} {r['error']:8.2f} {r['se']:6.2f} {r['calibrated']:8.2f} "
                     f"{r['tv']:8.4f} {r['fraction']:8.1f} {r['share']:6.2f}")
    return "\n".join(lines)


def plot(rows, param, series, out, title=None):
    """Four panels against ``param`` (log x), one curve per series, the references as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharex=True)
    keys = sorted({r["series"] for r in rows})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for c, key in enumerate(keys):
        color = colors[c % len(colors)]
        label = ", ".join(f"{s} {v}" for s, v in zip(series, key)) or None
        swept = sorted((r for r in rows if r["series"] == key and r["x"] is not None), key=lambda r: r["x"])
        refs = [r for r in rows if r["series"] == key and r["x"] is None]
        x = np.array([r["x"] for r in swept])
        for ax, field in zip(axes.flat, ("error", "tv", "fraction", "share")):
            if len(x):
                y = np.array([r[field] for r in swept])
                if field == "error":
                    ax.errorbar(x, y, yerr=[r["se"] for r in swept], marker="o", color=color, capsize=3, label=label)
                    cal = np.array([r["calibrated"] for r in swept])
                    if np.isfinite(cal).any():
                        ax.plot(x, cal, "--", marker="x", color=color, alpha=0.7,
                                label=f"{label + ': ' if label else ''}calibrated threshold")
                else:
                    ax.plot(x, y, marker="o", color=color)
            for ref in refs:
                v = ref[field]
                if np.isfinite(v):
                    ax.axhline(v, color=color, ls=":", lw=1)
                    if field == "error" and np.isfinite(ref["se"]):
                        ax.axhspan(v - ref["se"], v + ref["se"], color=color, alpha=0.08)
    for ax, name in zip(axes.flat, PANELS):
        ax.set_xscale("log")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel(f"{param} (dotted: {param} = 0)")
    if not any(np.isfinite(r["share"]) for r in rows):
        # the ConvNet's screens do not measure it: say so rather than leave an empty frame
        axes[1, 1].text(0.5, 0.5, "not recorded by these screens", ha="center", va="center",
                        transform=axes[1, 1].transAxes, color="0.4")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    series = tuple(s for s in args.series.split(",") if s)
    try:
        rows = load_rows(args.files, args.param, series)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if not any(r["x"] is not None for r in rows):
        raise SystemExit(f"no file sets {args.param} to a non-zero number: nothing to plot against")
    print(table(rows, args.param, series))
    if args.out:
        plot(rows, args.param, series, args.out, args.title)
        print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
