"""``otel-redis alerts``: the alert conditions firing now and the latest alert events, read from
REDIS_URL (or the embedded Redis) with the same functions as ``GET /logs/alerts``.

(``otel-redis logs alerts`` is the HTTP twin.) The alert engine and redis-py are imported when the
command runs, not when the ``otel-redis`` parser is built.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..config import load_settings
from . import CliError

#: the rule names of otel_redis.alert_rules.RULES (a test keeps them equal), for --rule's choices
RULE_NAMES = ("error_rate", "latency", "traffic", "oauth_failures")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("alerts", help="alerts firing now and the latest alert events")
    p.add_argument("--limit", type=int, default=20, help="events to show (default 20)")
    p.add_argument("--since", help="only events of this last period: 30m, 24h, 7d")
    p.add_argument("--type", choices=("fired", "resolved"), help="only this kind of event")
    p.add_argument("--rule", choices=RULE_NAMES, help="only this rule")
    p.add_argument("--json", action="store_true", help="print {active, events} as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import alerts
    from ..connection import make_client
    from ..metrics import parse_duration

    if not 1 <= args.limit <= 10_000:
        raise CliError(f"--limit must be between 1 and 10000, got {args.limit}", 2)
    since_ms = None
    if args.since:
        try:
            since_ms = int(time.time() * 1000) - parse_duration(args.since) * 1000
        except ValueError as exc:
            raise CliError(f"--since: {exc}", 2) from None
    client = make_client(load_settings())
    try:
        firing = alerts.active(client)
        events = alerts.list_events(client, limit=args.limit, since_ms=since_ms, kind=args.type, rule=args.rule)
    except Exception as exc:  # noqa: BLE001 - one line, no traceback
        raise CliError(f"cannot read alerts: {type(exc).__name__}: {exc}") from None
    finally:
        client.close()
    if args.json:
        print(json.dumps({"active": firing, "events": events}, default=str))
        return 0
    print(f"firing now: {len(firing)}")
    for a in firing:
        print(f"  {a['since']}  {a['condition']}  {a['message']}")
    print(f"events ({len(events)}, newest first):")
    for e in events:
        print(f"  {e['at']}  {e['type'].upper():8}  {e['condition']}  {e['message']}")
    return 0
