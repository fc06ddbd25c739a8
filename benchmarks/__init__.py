"""Benchmarks: ``python3 dev.py bench`` (or ``python -m benchmarks``) runs them all.

Each ``benchmarks/bench_*.py`` module has ``run(ctx: BenchContext) -> Section``. Every figure is
compared with a baseline measured in the same run (ratios: this machine is noisy). Each module's
section is kept in ``benchmarks/results/<name>.md``; ``benchmarks/RESULTS.md`` is assembled from
all of them, so running one module (``--only``) keeps the others' last results.
"""
