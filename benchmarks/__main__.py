"""Run every benchmark module (or ``--only NAME``) and write benchmarks/RESULTS.md."""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import traceback
from pathlib import Path

from .harness import BenchContext

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _modules() -> list[str]:
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--only", action="append", help="run just this module (bench_core, ...); repeatable")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    names = args.only or _modules()
    ctx = BenchContext(quick=args.quick)
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for name in names:
        name = name if name.startswith("bench_") else f"bench_{name}"
        print(f"== {name}", flush=True)
        try:
            section = importlib.import_module(f"benchmarks.{name}").run(ctx)
        except Exception:  # noqa: BLE001 - report and go on with the others
            traceback.print_exc()
            failed += 1
            continue
        text = section.markdown()
        print(text, flush=True)
        (RESULTS / f"{name}.md").write_text(text)
    header = (
        "# Benchmark results\n\n"
        f"Written by `python3 dev.py bench` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}.\n"
        "Every figure is compared with a baseline measured in the same run; ratios, not absolute times, are the "
        "result (this machine is shared and noisy).\n\n"
    )
    parts = [(RESULTS / f"{n}.md").read_text() for n in _modules() if (RESULTS / f"{n}.md").exists()]
    (HERE / "RESULTS.md").write_text(header + "\n".join(parts))
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
