"""``otel-redis cleanup``: run the retention job once against REDIS_URL (or the embedded Redis) and
print what it removed (a table, or ``--json``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..config import load_settings
from . import CliError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cleanup",
        help="remove index members, records, stream entries and stats past retention (small steps)",
        description="Run the retention job once. Retention comes from LOG_RETENTION_*_DAYS; "
        "the step size from OTEL_REDIS_CLEANUP_BATCH unless --batch is given.",
    )
    p.add_argument("--batch", type=int, default=None, help="members or keys per Redis command (default 500)")
    p.add_argument("--no-dangling", action="store_true", help="skip the check for members whose record is gone")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..connection import make_client
    from ..retention import CleanupSettings, run_cleanup

    settings = load_settings()
    cfg = CleanupSettings.from_env()
    if args.batch is not None:
        if args.batch < 1:
            raise CliError(f"--batch must be >= 1, got {args.batch}", 2)
        cfg = CleanupSettings(cfg.interval_s, args.batch, cfg.scan_count, cfg.check_dangling)
    if args.no_dangling:
        cfg = CleanupSettings(cfg.interval_s, cfg.batch, cfg.scan_count, False)
    client = make_client(settings)
    try:
        report = run_cleanup(client, settings, cfg)
    except Exception as exc:  # noqa: BLE001 - one line, no traceback
        raise CliError(f"cleanup failed: {type(exc).__name__}: {exc}") from None
    finally:
        client.close()
    data = report.to_dict()
    if args.json:
        print(json.dumps(data, sort_keys=True))
        return 0
    streams = ", ".join(f"{k} {v}" for k, v in sorted(report.stream_entries_trimmed.items()))
    lines = [
        f"indexes scanned           {report.indexes_scanned}",
        f"members past retention    {report.members_past_retention}",
        f"dangling members          {report.members_dangling}",
        f"records deleted           {report.records_deleted} (of {report.records_scanned} scanned)",
        f"stream entries trimmed    {streams or 0}",
        f"stats keys deleted        {report.stats_keys_deleted} (of {report.stats_keys_scanned} scanned)",
        f"expiries set              {report.expiries_set}",
        f"removed in all            {report.removed}  ({report.commands} commands, {report.duration_s:.2f} s)",
    ]
    print("\n".join(lines), file=sys.stdout)
    return 0
