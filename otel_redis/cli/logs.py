"""``otel-redis logs <command>``: the specification's log query commands, over the query API.

Every ``just logs-*`` recipe calls one of these commands (see the ``justfile``), passing each of its
positional arguments as an option, so that nothing a recipe accepts is dropped. Empty values mean
"not set" (the API's default applies), which is how a recipe skips an argument: ``just logs "" ERROR``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from . import CliError
from .api_client import EXIT_FAILURE, EXIT_USAGE, ApiClient, path_segment, resolve_token, resolve_url
from .output import Printer, color_choice, records_of
from .render_doc import render_document, render_stats

# ----------------------------------------------------------------------------- the recipes

#: (recipe, its arguments, one line): the specification's "Log Query Commands", in its order
RECIPES: tuple[tuple[str, str, str], ...] = (
    ("logs", "[hours] [event] [level] [hostname] [limit] [token]", "Show recent logs (oldest to newest)"),
    ("logs-ip", "<ip> [hours] [event] [level] [limit] [token]", "Query logs by client IP"),
    ("logs-proxy", "<hostname> [hours] [limit] [token]", "Query logs by proxy hostname"),
    ("logs-hostname", "<hostname> [hours] [limit] [token]", "Query logs by client hostname (reverse DNS)"),
    ("logs-oauth-client", "<client-id> [hours] [event] [level] [limit] [token]", "Query logs by OAuth client"),
    ("logs-search", "[query] [hours] [event] [level] [hostname] [limit] [token]", "Search logs with filters"),
    ("logs-errors", "[hours] [limit] [token]", "Show recent errors"),
    ("logs-errors-debug", "[hours] [include-warnings] [limit] [token]", "Detailed errors with debugging"),
    ("logs-follow", "[interval] [event] [level] [hostname] [token]", "Follow logs in real-time with ANSI colors"),
    ("logs-oauth", "<ip> [hours] [limit] [token]", "OAuth activity summary"),
    ("logs-oauth-debug", "<ip> [hours] [limit] [token]", "Full OAuth flow debugging"),
    ("logs-oauth-flow", "[client-id] [username] [hours] [token]", "Track OAuth flows"),
    ("logs-stats", "[hours] [token]", "Show event statistics"),
    ("logs-test", "[token]", "Test logging system"),
    ("logs-user", "<user-id> [hours] [limit] [token]", "Query logs by user ID"),
    ("logs-session", "<session-id> [hours] [limit] [token]", "Query logs by session ID"),
    ("logs-method", "<method> [hours] [limit] [token]", "Query logs by HTTP method"),
    ("logs-status", "<code> [hours] [limit] [token]", "Query logs by status code"),
    ("logs-slow", "[threshold-ms] [hours] [limit] [token]", "Query slow requests"),
    ("logs-path", "<pattern> [hours] [limit] [token]", "Query logs by path pattern"),
    ("logs-oauth-user", "<username> [hours] [limit] [token]", "Query logs by OAuth username"),
    ("logs-docker", "[lines] [follow]", "Docker container logs only"),
    ("logs-service", "[service] [lines]", "Service-specific Docker logs"),
    ("logs-clear", "[token]", "Clear all log entries from Redis"),
    ("logs-help", "", "Show logging commands help"),
)

# ----------------------------------------------------------------------------- argument types


def _unset(text: str) -> bool:
    return text.strip() == ""


def positive_int(what: str, *, minimum: int = 1, maximum: int | None = None) -> Callable[[str], int | None]:
    def parse(text: str) -> int | None:
        if _unset(text):
            return None
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"{what} must be {bound}, got {value}")
        return value

    return parse


def positive_float(what: str) -> Callable[[str], float | None]:
    def parse(text: str) -> float | None:
        if _unset(text):
            return None
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{what} must be a positive number, got {text!r}")
        return value

    return parse


_TRUE = frozenset({"1", "true", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "no", "n", "off"})


def flag_value(what: str) -> Callable[[str], bool | None]:
    """A yes/no argument given as a word (recipes pass every argument positionally)."""

    def parse(text: str) -> bool | None:
        word = text.strip().lower()
        if word == "":
            return None
        if word in _TRUE or word in (what, what.replace("_", "-")):
            return True
        if word in _FALSE:
            return False
        raise argparse.ArgumentTypeError(f"{what} must be true or false, got {text!r}")

    return parse


def text_value(text: str) -> str | None:
    return None if _unset(text) else text


def attribute_filter(text: str) -> tuple[str, str] | None:
    """``--attr NAME=VALUE``: the query parameter ``attr.NAME=VALUE``."""
    if _unset(text):
        return None
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--attr takes NAME=VALUE, got {text!r}")
    return name, value


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Option:
    """A command-line option and the API query parameter it becomes."""

    flag: str
    api: str
    type: Callable[[str], Any]
    help: str
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: dict[str, Option] = {
    o.dest: o
    for o in (
        Option("--hours", "hours", positive_float("hours"), "how many hours back (API default 24)", "N"),
        Option("--event", "event", text_value, "only this event name"),
        Option("--level", "level", text_value,
               "only this level (TRACE DEBUG INFO WARNING ERROR CRITICAL; requests by status: INFO <400, WARNING 4xx, ERROR 5xx)"),
        Option("--hostname", "hostname", text_value, "only this hostname"),
        Option("--limit", "limit", positive_int("limit"), "at most N records, the most recent ones (API default 100)", "N"),
        Option("--cursor", "cursor", text_value, "continue further back from a previous page's next_cursor"),
        Option("--include-warnings", "include_warnings", flag_value("include_warnings"), "also WARNING records (true/false)", "BOOL"),
        Option("--threshold-ms", "threshold_ms", positive_float("threshold-ms"), "slower than this many ms (API default 1000)", "MS"),
        Option("--component", "component", text_value, "only this component"),
        Option("--status", "status", positive_int("status", minimum=100, maximum=599), "only this HTTP status code"),
        Option("--method", "method", text_value, "only this HTTP method"),
        Option("--path", "path", text_value, "only paths matching this pattern"),
        Option("--user", "user", text_value, "only this user id"),
        Option("--client", "client", text_value, "only this OAuth client id"),
        Option("--trace-id", "trace_id", text_value, "only this trace id"),
        Option("--ip", "ip", text_value, "only this client IP"),
        Option("--session", "session", text_value, "only this session id"),
        Option("--kind", "kind", text_value, "only application logs (log) or only requests (request)"),
        Option("--service", "service", text_value, "only records of this resource service.name"),
        Option("--attr", "attr", attribute_filter,
               "only records whose attribute NAME is VALUE (repeatable for several names; a bounded scan, see OTEL_REDIS_ATTR_SCAN_LIMIT)",
               "NAME=VALUE"),
        Option("--client-id", "client_id", text_value, "OAuth client id"),
        Option("--username", "username", text_value, "OAuth username"),
        Option("--since", "since", text_value, "only alert events of this last period: 30m, 24h, 7d", "PERIOD"),
        Option("--type", "type", text_value, "only alert events of this kind: fired or resolved", "KIND"),
        Option("--rule", "rule", text_value, "only this alert rule: error_rate, latency, traffic, oauth_failures"),
        Option("--window", "window", text_value, "window of the top list: 15m, 1h, 24h, 7d (API default 24h)", "PERIOD"),
    )
}

#: the largest page the API serves (query_api.deps.MAX_LIMIT); a larger --limit is fetched page by page
API_PAGE_MAX = 1000

_WINDOW = ("hours", "limit", "cursor")
_FILTERS = ("hours", "event", "level", "limit", "cursor")


@dataclass(frozen=True)
class Query:
    """A command that lists records from one endpoint."""

    name: str
    help: str
    endpoint: str  # "{subject}" is replaced by the escaped positional argument
    options: tuple[str, ...]
    subject: str | None = None  # name of the positional argument
    subject_param: str | None = None  # the positional goes into this query parameter instead of the path
    subject_optional: bool = False
    subject_type: Callable[[str], Any] = text_value
    fixed: dict[str, Any] = field(default_factory=dict)
    details: bool = False


QUERIES: tuple[Query, ...] = (
    Query("recent", "recent logs, oldest first (just logs)", "/logs",
          ("hours", "event", "level", "hostname", "limit", "cursor", "kind", "service", "attr")),
    Query("ip", "logs of one client IP (just logs-ip)", "/logs/ip/{subject}", _FILTERS, subject="ip"),
    Query("proxy", "requests to one proxy hostname (just logs-proxy)", "/logs/proxy/{subject}", _WINDOW, subject="hostname"),
    Query("hostname", "logs of one client hostname from reverse DNS (just logs-hostname)", "/logs/host/{subject}", _WINDOW, subject="hostname"),
    Query("oauth-client", "logs of one OAuth client (just logs-oauth-client)", "/logs/client/{subject}", _FILTERS, subject="client_id"),
    Query(
        "search",
        "search with any combination of filters (just logs-search)",
        "/logs/search",
        ("hours", "event", "level", "hostname", "limit", "cursor")
        + ("component", "status", "method", "path", "user", "client", "trace_id", "ip", "session", "kind", "service", "attr"),
        subject="query",
        subject_param="text",
        subject_optional=True,
    ),
    Query("errors", "recent errors (just logs-errors)", "/logs/errors", _WINDOW),
    Query(
        "errors-debug",
        "errors with full details: attributes and stack traces (just logs-errors-debug)",
        "/logs/errors",
        ("hours", "include_warnings", "limit", "cursor"),
        fixed={"details": True},
        details=True,
    ),
    Query("user", "logs of one user id (just logs-user)", "/logs/user/{subject}", _WINDOW, subject="user_id"),
    Query("session", "logs of one session id (just logs-session)", "/logs/session/{subject}", _WINDOW, subject="session_id"),
    Query("method", "requests with one HTTP method (just logs-method)", "/logs/method/{subject}", _WINDOW, subject="method"),
    Query(
        "status",
        "requests with one status code (just logs-status)",
        "/logs/status/{subject}",
        _WINDOW,
        subject="code",
        subject_type=positive_int("code", minimum=100, maximum=599),
    ),
    Query("slow", "slow requests (just logs-slow)", "/logs/slow", ("threshold_ms", "hours", "limit", "cursor")),
    Query(
        "path",
        "requests whose path matches a pattern, * for any run of characters (just logs-path)",
        "/logs/path",
        (*_WINDOW, "method"),
        subject="pattern",
        subject_param="pattern",
    ),
    Query("oauth-user", "OAuth activity of one username (just logs-oauth-user)", "/logs/oauth/user/{subject}", _WINDOW, subject="username"),
    Query("trace", "application logs and requests of one trace id", "/logs/trace/{subject}", _WINDOW, subject="trace_id"),
)

# ----------------------------------------------------------------------------- registration


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument("--url", type=text_value, help="query API base URL (env OTEL_REDIS_API_URL, default http://127.0.0.1:8080)")
    group.add_argument("--token", type=text_value, help="bearer token (env OTEL_REDIS_API_TOKEN, else <data dir>/api-token)")
    group.add_argument("--json", action="store_true", help="machine-readable output: one JSON record per line")
    group.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colours (auto: only on a terminal; NO_COLOR, FORCE_COLOR respected)")
    group.add_argument("-v", "--verbose", action="store_true", default=_env_verbose(), help="print each HTTP request on stderr (env OTEL_REDIS_CLI_VERBOSE=1)")
    return common


def _env_verbose() -> bool:
    return os.environ.get("OTEL_REDIS_CLI_VERBOSE", "").strip().lower() in _TRUE


#: options given several times (each value kept)
_REPEATABLE = frozenset({"attr"})


def _add_option(parser: argparse.ArgumentParser, name: str) -> None:
    opt = OPTIONS[name]
    action = "append" if name in _REPEATABLE else "store"
    parser.add_argument(opt.flag, dest=opt.dest, type=opt.type, metavar=opt.metavar, help=opt.help, action=action)


def register(subparsers: Any) -> None:
    logs = subparsers.add_parser("logs", help="query, search and follow logs through the query API (see `otel-redis logs help`)")
    commands = logs.add_subparsers(dest="logs_command", metavar="COMMAND")
    logs.set_defaults(func=_cmd_help)
    common = _common()
    # the order of the calls is the order of `otel-redis logs --help`
    _register_queries(commands, common)
    _register_follow(commands, common)
    _register_documents(commands, common)
    _register_admin(commands, common)
    _register_containers(commands)
    p = commands.add_parser("help", help="list every command with one line each (just logs-help)")
    p.set_defaults(func=_cmd_help)


def _register_queries(commands: Any, common: argparse.ArgumentParser) -> None:
    """The record queries of the QUERIES table: one sub-command each, with its subject and options."""
    for query in QUERIES:
        p = commands.add_parser(query.name, parents=[common], help=query.help, description=query.help)
        if query.subject:
            kwargs: dict[str, Any] = {"type": query.subject_type, "metavar": query.subject.upper().replace("_", "-")}
            if query.subject_optional:
                kwargs["nargs"] = "?"
            p.add_argument(query.subject, **kwargs)
        for name in query.options:
            _add_option(p, name)
        p.set_defaults(func=_cmd_query, query_spec=query)


def _register_follow(commands: Any, common: argparse.ArgumentParser) -> None:
    """Live follow over SSE, with its source filter."""
    p = commands.add_parser("follow", parents=[common], help="follow new records live (just logs-follow)")
    p.add_argument(
        "--interval", type=text_value, metavar="SECONDS|SOURCE",
        help="seconds between reconnect attempts (default 1); a word that is not a number is taken as --source "
        "with the default interval (just logs-follow api)",
    )
    p.add_argument(
        "--source", type=text_value, metavar="NAME",
        help="only records whose component or proxy hostname is NAME or starts with NAME followed by . _ - or : "
        "(api: api_server, api.example.com)",
    )
    for name in ("event", "level", "hostname"):
        _add_option(p, name)
    p.set_defaults(func=_cmd_follow)


def _register_documents(commands: Any, common: argparse.ArgumentParser) -> None:
    """Commands that print one summary document of the API (OAuth views, top lists, alerts)."""
    for name, endpoint, subject, helptext in (
        ("oauth", "/logs/oauth/ip/{subject}", "ip", "OAuth activity summary of one IP (just logs-oauth)"),
        ("oauth-debug", "/logs/oauth/ip/{subject}/flows", "ip", "full OAuth flow debugging for one IP (just logs-oauth-debug)"),
    ):
        p = commands.add_parser(name, parents=[common], help=helptext)
        p.add_argument(subject, type=text_value, metavar=subject.upper())
        for opt in _WINDOW:
            _add_option(p, opt)
        p.set_defaults(func=_cmd_document, endpoint=endpoint, subject=subject, options=_WINDOW)

    p = commands.add_parser("oauth-flow", parents=[common], help="OAuth flows by client id and/or username (just logs-oauth-flow)")
    for opt in ("client_id", "username", "hours", "limit"):
        _add_option(p, opt)
    p.set_defaults(func=_cmd_document, endpoint="/logs/oauth/flows", subject=None, options=("client_id", "username", "hours", "limit"))

    # issue 17: the console's top lists (GET /logs/top/{kind})
    p = commands.add_parser("top", parents=[common], help="top client IPs, paths, user agents or referrers (GET /logs/top)")
    p.add_argument("kind", choices=("ips", "paths", "agents", "referrers", "not_found", "slow_routes"))
    for opt in ("window", "limit"):
        _add_option(p, opt)
    p.set_defaults(func=_cmd_document, endpoint="/logs/top/{subject}", subject="kind", options=("window", "limit"))

    alert_opts = ("limit", "since", "type", "rule")
    p = commands.add_parser("alerts", parents=[common], help="alerts firing now and the latest alert events (GET /logs/alerts)")
    for opt in alert_opts:
        _add_option(p, opt)
    p.set_defaults(func=_cmd_document, endpoint="/logs/alerts", subject=None, options=alert_opts)


def _register_admin(commands: Any, common: argparse.ArgumentParser) -> None:
    """Statistics, the self-check and clearing the data."""
    p = commands.add_parser("stats", parents=[common], help="event statistics and request totals (just logs-stats)")
    _add_option(p, "hours")
    p.set_defaults(func=_cmd_stats)

    p = commands.add_parser("test", parents=[common], help="end-to-end self-check of the logging system (just logs-test)")
    p.set_defaults(func=_cmd_test)

    p = commands.add_parser("clear", parents=[common], help="delete all log data written by otel-redis; admin token (just logs-clear)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=_cmd_clear)


def _register_containers(commands: Any) -> None:
    """Container logs of the compose project (no query API involved)."""
    p = commands.add_parser("docker", help="container logs of the compose project (just logs-docker)")
    p.add_argument("--lines", type=positive_int("lines", minimum=0), default=None, metavar="N", help="last N lines of each container (default 100)")
    p.add_argument("--follow", type=flag_value("follow"), default=None, metavar="BOOL", help="keep following (true/false)")
    p.set_defaults(func=_cmd_docker)

    p = commands.add_parser("service", help="container logs of one compose service (just logs-service)")
    p.add_argument("service", nargs="?", type=text_value, default=None, help="redis, otel-redis (default) or demo")
    p.add_argument("--lines", type=positive_int("lines", minimum=0), default=None, metavar="N", help="last N lines (default 100)")
    p.set_defaults(func=_cmd_service)


# ----------------------------------------------------------------------------- command bodies


def _pipe_safe(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A reader that went away (``| head``) ends the command quietly instead of with a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
            return 0

    return run


def _client(args: argparse.Namespace, *, admin: bool = False) -> ApiClient:
    return ApiClient(resolve_url(args.url), resolve_token(args.token, admin=admin), verbose=args.verbose)


def _printer(args: argparse.Namespace, *, details: bool = False) -> Printer:
    return Printer(json=args.json, color=color_choice(args.color, sys.stdout), details=details)


def _params(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    params = {OPTIONS[n].api: getattr(args, OPTIONS[n].dest) for n in names if n not in _REPEATABLE}
    for pair in (getattr(args, "attr", None) or ()) if "attr" in names else ():
        if pair is not None:
            params[f"attr.{pair[0]}"] = pair[1]
    return params


def _endpoint(template: str, value: Any) -> str:
    if "{subject}" not in template:
        return template
    return template.replace("{subject}", path_segment(str(value)))


def fetch_records(client: ApiClient, endpoint: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The newest ``limit`` matches, oldest first, and the ``related`` records of errors-debug.

    A ``limit`` above the API's page size is served by following ``next_cursor`` further back.
    """
    wanted = params.get("limit")
    remaining = wanted if isinstance(wanted, int) and wanted > API_PAGE_MAX else None
    if remaining is None:
        payload = client.get(endpoint, params)
        _note_partial(payload)
        related = payload.get("related") if isinstance(payload, dict) else None
        return records_of(payload), related if isinstance(related, dict) else {}
    pages: list[list[dict[str, Any]]] = []
    related_all: dict[str, Any] = {}
    cursor = params.get("cursor")
    while remaining > 0:
        payload = client.get(endpoint, {**params, "limit": min(remaining, API_PAGE_MAX), "cursor": cursor})
        _note_partial(payload)
        page = records_of(payload)
        pages.append(page)
        remaining -= len(page)
        related = payload.get("related") if isinstance(payload, dict) else None
        if isinstance(related, dict):
            related_all.update(related)
        cursor = payload.get("next_cursor") if isinstance(payload, dict) else None
        if not cursor or not page:
            break
    return [record for page in reversed(pages) for record in page], related_all


def _note_partial(payload: Any) -> None:
    """An attribute filter's bounded scan that stopped early says so on stderr (stdout stays records)."""
    if isinstance(payload, dict) and payload.get("partial"):
        print(f"partial: the attribute filter checked {payload.get('scanned')} records "
              "(OTEL_REDIS_ATTR_SCAN_LIMIT); older matches may exist (--cursor next_cursor)", file=sys.stderr)


@_pipe_safe
def _cmd_query(args: argparse.Namespace) -> int:
    query: Query = args.query_spec
    params = {**query.fixed, **_params(args, query.options)}
    subject = getattr(args, query.subject) if query.subject else None
    if query.subject and subject is None and not query.subject_optional:
        raise CliError(f"{query.subject} is required (it cannot be empty)", EXIT_USAGE)
    if query.subject_param:
        params[query.subject_param] = subject
    endpoint = _endpoint(query.endpoint, subject)
    with _client(args) as client:
        records, related = fetch_records(client, endpoint, params)
    if not records:
        print("no records", file=sys.stderr)  # stdout stays empty for scripts; exit 0
        return 0
    printer = _printer(args, details=query.details)
    if not related:
        printer.records(records)
        return 0
    # errors-debug: each error, then the other records of its trace (each trace shown once)
    shown: set[str] = set()
    for record in records:
        trace = record.get("trace_id")
        others = related.get(trace, []) if trace and trace not in shown else []
        shown.add(trace or "")
        if args.json:
            printer.record({**record, "related": others} if others else record)
            continue
        printer.record(record)
        for other in others:
            printer.related(other)
    return 0


def _show_document(args: argparse.Namespace, payload: Any) -> None:
    """A JSON document from the API: as JSON with --json, else rendered for reading."""
    printer = _printer(args)
    if args.json:
        printer.document(payload)
    else:
        render_document(payload, printer)


@_pipe_safe
def _cmd_document(args: argparse.Namespace) -> int:
    subject = getattr(args, args.subject) if args.subject else None
    if args.subject and subject is None:
        raise CliError(f"{args.subject} is required (it cannot be empty)", EXIT_USAGE)
    with _client(args) as client:
        payload = client.get(_endpoint(args.endpoint, subject), _params(args, args.options))
    _show_document(args, payload)
    return 0


@_pipe_safe
def _cmd_stats(args: argparse.Namespace) -> int:
    params = _params(args, ("hours",))
    with _client(args) as client:
        events = client.get("/logs/events", params)
        stats = client.get("/logs/stats", params)
    printer = _printer(args)
    if args.json:
        printer.document({"events": events, "stats": stats})
    else:
        render_stats(events, stats, printer)
    return 0


@_pipe_safe
def _cmd_test(args: argparse.Namespace) -> int:
    with _client(args) as client:
        payload = client.request("POST", "/logs/test")
    _show_document(args, payload)
    if not _self_check_passed(payload):
        raise CliError("self-check failed: the test records did not come back", EXIT_FAILURE)
    return 0


def _self_check_passed(payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    for key in ("ok", "success", "passed"):
        if isinstance(payload.get(key), bool):
            return payload[key]
    written, read = payload.get("written"), payload.get("read_back")
    return isinstance(written, int) and isinstance(read, int) and written > 0 and read >= written


@_pipe_safe
def _cmd_clear(args: argparse.Namespace) -> int:
    client = _client(args, admin=True)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("refusing to clear without confirmation: run it on a terminal or pass --yes", EXIT_USAGE)
        print(f"Delete ALL log data written by otel-redis through {client.base_url}? [y/N] ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            client.close()
            raise CliError("cancelled, nothing was deleted", EXIT_FAILURE)
    with client:
        payload = client.request("DELETE", "/logs")
    _show_document(args, payload)
    return 0


@_pipe_safe
def _cmd_follow(args: argparse.Namespace) -> int:
    from .follow import follow

    interval, source = interval_or_source(args.interval)
    params = _params(args, ("event", "level", "hostname"))
    if source and args.source and source != args.source:
        raise CliError(f"two sources given ({source!r} and {args.source!r}): give one", EXIT_USAGE)
    params["source"] = source or args.source
    printer = _printer(args)
    with _client(args) as client:
        return follow(client, params, printer.record, interval=interval if interval is not None else 1.0)


def interval_or_source(text: str | None) -> tuple[float | None, str | None]:
    """``logs-follow``'s first argument: a number is the reconnect interval (it must be positive); any
    other word is a source filter, the interval staying at its default (the specification's own
    example is ``just logs-follow api``)."""
    if text is None:
        return None, None
    try:
        float(text.strip())
    except ValueError:
        return None, text.strip()
    try:
        return positive_float("interval")(text), None
    except argparse.ArgumentTypeError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _cmd_docker(args: argparse.Namespace) -> int:
    from .docker import SERVICES, compose_logs

    return compose_logs(list(SERVICES), 100 if args.lines is None else args.lines, bool(args.follow))


def _cmd_service(args: argparse.Namespace) -> int:
    from .docker import SERVICES, compose_logs

    service = args.service or "otel-redis"
    if service not in SERVICES:
        raise CliError(f"unknown service {service!r}: choose one of {', '.join(SERVICES)}", EXIT_USAGE)
    return compose_logs([service], 100 if args.lines is None else args.lines, False)


def _cmd_help(_args: argparse.Namespace) -> int:
    width = max(len(f"just {name} {usage}".rstrip()) for name, usage, _ in RECIPES)
    lines = [f"{f'just {name} {usage}'.rstrip():<{width}}  # {text}" for name, usage, text in RECIPES]
    lines.append(
        "(empty \"\" skips an argument; env: OTEL_REDIS_API_URL, OTEL_REDIS_API_TOKEN, OTEL_REDIS_ADMIN_TOKEN, "
        "NO_COLOR, FORCE_COLOR; `otel-redis logs COMMAND --help` for the CLI)"
    )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


__all__ = ["OPTIONS", "QUERIES", "RECIPES", "register"]
