"""Benchmarks of chm, run from the repository root as modules: ``python -m benchmarks.bench_run`` and the
other ``bench_*`` scripts (benchmarks/README.md). Measuring helpers are in :mod:`benchmarks._measure`; the
README's speed table is rebuilt from the JSON records by :mod:`benchmarks.records`."""
