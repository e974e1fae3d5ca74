"""The README's speed table: one JSON record per benchmarked setting, the table rebuilt from all of them.

A full run of ``python -m benchmarks.bench_run`` (with the peer and the dataset's default bank) writes
its record to ``benchmarks/records/<dataset>-<semi-supervised or supervised>.json`` (kept in git) with
:func:`write_record`; this module rebuilds the table between :data:`README_BEGIN` and
:data:`README_END` from every record:

    python -m benchmarks.records --readme README.md [--records benchmarks/records]
"""

import argparse
import json
import os
import platform
import subprocess
from pathlib import Path

import psutil

from chm.model import DEFAULT_FEATURES

__all__ = ["README_BEGIN", "README_END", "RECORDS", "RECORD_ORDER", "git_commit", "machine", "speed_table",
           "update_readme", "write_record"]

README_BEGIN = "<!-- speed table: written by `python -m benchmarks.records --readme README.md`; do not edit -->"
README_END = "<!-- /speed table -->"
#: Earlier spellings of the opening marker, still recognised (and replaced) in a README.
OLD_BEGINS = ("<!-- speed table: written by `python benchmarks/run.py --readme README.md`; do not edit -->",)
RECORD_ORDER = ("weizmann-supervised", "weizmann-auto", "stanford-supervised", "stanford-auto")
REPO = Path(__file__).resolve().parents[1]
#: The records' folder in the repository.
RECORDS = REPO / "benchmarks" / "records"


def machine():
    """CPU model, logical cores and RAM of this machine, in a few words."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 1024 ** 3:.0f} GiB"


def git_commit():
    """Short hash of HEAD, with '+' when tracked files have changes (other than the README and
    the records, which the benchmark writes); None outside a git checkout."""
    try:
        opts = dict(cwd=REPO, capture_output=True, text=True, check=True)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **opts).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!README.md", ":!benchmarks/records"], **opts).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


def write_record(rec, records_dir=RECORDS):
    """Write one record (a dict with a ``key``) as ``records_dir/<key>.json``; returns the path."""
    path = Path(records_dir) / f"{rec['key']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec, indent=1) + "\n")
    return path


def _table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def speed_table(records):
    """Markdown lines of the README's speed table, one row per record."""
    rows = []
    for r in sorted(records, key=lambda r: RECORD_ORDER.index(r["key"]) if r["key"] in RECORD_ORDER else 99):
        o, p = r["ours"], r["peer"]
        extra = [f for f in r["features"] if f not in DEFAULT_FEATURES]
        setting = (f"{r['dataset']}, N = {r['n_labels']}, {r['n_train']} / {r['n_test']} images, "
                   f"`semi_supervised={r['semi_supervised']!r}`" + "".join(f" + {f}" for f in extra))
        ours_t, peer_t = o["fit"] + o["predict"], p["fit"] + p["predict"]
        rows.append([setting, f"{o['fit']:.1f} s", f"{o['predict'] / r['n_test']:.2f} s",
                     f"{ours_t:.1f} / {peer_t:.1f} s (**{ours_t / peer_t:.2f}×**)",
                     f"{1e3 * o['latency']:.0f} ms",
                     f"{100 * o['error']:.2f} / {100 * p['error']:.2f} % ({o['error'] / p['error']:.2f}×)",
                     f"{r['date']}, commit {r['commit']}, {r['machine']}, n_jobs {r['n_jobs']}"])
    shape = records[0]["latency_shape"] if records else (210, 260)
    return _table(["setting", "fit", "predict per image", "fit + predict: ours / peer",
                   f"one image {shape[0]} × {shape[1]}", "test error: ours / peer", "measured"], rows)


def update_readme(readme, records_dir=RECORDS):
    """Replace the block between README_BEGIN and README_END by the table of every record."""
    readme = Path(readme)
    text = readme.read_text()
    for old in OLD_BEGINS:
        text = text.replace(old, README_BEGIN)
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit(f"{readme} has no speed-table block ({README_BEGIN!r} ... {README_END!r})")
    records = [json.loads(f.read_text()) for f in sorted(Path(records_dir).glob("*.json"))]
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    tmp = readme.with_name(readme.name + ".tmp")  # written whole, then renamed: never half a README
    tmp.write_text(head + README_BEGIN + "\n" + "\n".join(speed_table(records)) + "\n" + README_END + tail)
    os.replace(tmp, readme)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", default=str(REPO / "README.md"), help="the README whose table to rebuild")
    ap.add_argument("--records", default=str(RECORDS), help="folder of the JSON records")
    args = ap.parse_args(argv)
    update_readme(args.readme, args.records)
    print(f"speed table of {args.readme} rebuilt from {args.records}")


if __name__ == "__main__":
    main()
