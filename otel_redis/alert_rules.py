"""Alert rules, their configuration, and their evaluation against the stored statistics.

Four rules (each can be turned off):

- ``error_rate``: share of 4xx and 5xx responses in the last ``window_s`` above ``threshold``
  (with at least ``min_requests`` requests), overall and per proxy hostname;
- ``latency``: the ``quantile`` (p95) response time of the last ``window_s`` more than ``factor`` times
  its own baseline (the ``baseline_s`` before the window) and at least ``min_increase_ms`` above it;
- ``traffic``: the request rate of the last ``window_s`` more than ``factor`` times the baseline rate,
  or below the baseline rate divided by ``factor`` (a spike or a drop), once the baseline has
  ``min_baseline_requests`` requests;
- ``oauth_failures``: at least ``threshold`` OAuth records whose ``oauth.event_type`` is one of
  ``event_types`` in the last ``window_s`` (``ZCOUNT idx:oauth:{event_type}``).

Configuration: defaults, then a TOML or JSON file (``OTEL_REDIS_ALERTS_FILE``), then environment
variables. Every field has a variable: ``OTEL_REDIS_ALERT_<FIELD>`` for the general ones
(``OTEL_REDIS_ALERT_COOLDOWN_S``) and ``OTEL_REDIS_ALERT_<RULE>_<FIELD>`` for a rule's
(``OTEL_REDIS_ALERT_ERROR_RATE_THRESHOLD=0.1``); lists are comma-separated. The file has the
general fields at top level and one table per rule::

    cooldown_s = 600
    webhooks = ["https://hooks.example.com/otel-redis"]
    [error_rate]
    threshold = 0.1
    [oauth_failures]
    event_types = ["login_failed", "token_error"]
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import redis

from . import metrics, schema
from .config import ConfigError
from .histogram import percentiles


@dataclass(frozen=True)
class ErrorRateRule:
    enabled: bool = True
    window_s: int = 300
    threshold: float = 0.05
    min_requests: int = 20
    per_hostname: bool = True


@dataclass(frozen=True)
class LatencyRule:
    enabled: bool = True
    window_s: int = 300
    baseline_s: int = 3600
    quantile: float = 95.0
    factor: float = 2.0
    min_increase_ms: float = 50.0
    min_requests: int = 20
    min_baseline_requests: int = 50
    per_hostname: bool = True


@dataclass(frozen=True)
class TrafficRule:
    enabled: bool = True
    window_s: int = 300
    baseline_s: int = 3600
    factor: float = 3.0
    min_baseline_requests: int = 100
    per_hostname: bool = False


@dataclass(frozen=True)
class OAuthFailureRule:
    enabled: bool = True
    window_s: int = 300
    threshold: int = 10
    event_types: tuple[str, ...] = (
        "auth_failure",
        "authorization_failed",
        "login_failed",
        "token_error",
        "token_failed",
        "invalid_client",
        "invalid_grant",
        "access_denied",
    )


RULES = {
    "error_rate": ErrorRateRule,
    "latency": LatencyRule,
    "traffic": TrafficRule,
    "oauth_failures": OAuthFailureRule,
}


@dataclass(frozen=True)
class AlertConfig:
    """Everything the alert engine needs; see the module docstring for how it is configured."""

    interval_s: float = 30.0
    cooldown_s: int = 600
    webhooks: tuple[str, ...] = ()
    webhook_timeout_s: float = 5.0
    webhook_attempts: int = 4
    webhook_backoff_s: float = 0.5
    retention_days: int = 30
    max_events: int = 10_000
    error_rate: ErrorRateRule = field(default_factory=ErrorRateRule)
    latency: LatencyRule = field(default_factory=LatencyRule)
    traffic: TrafficRule = field(default_factory=TrafficRule)
    oauth_failures: OAuthFailureRule = field(default_factory=OAuthFailureRule)


# ---------------------------------------------------------------------------- loading


def _convert(value: Any, default: Any, where: str) -> Any:
    """Coerce a file or environment value to the type of the field's default."""
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("not a boolean (use true or false)")
        if isinstance(default, tuple):
            items = value if isinstance(value, (list, tuple)) else str(value).split(",")
            return tuple(str(v).strip() for v in items if str(v).strip())
        if isinstance(default, int):
            out = int(value) if not isinstance(value, str) else int(value.strip())
        else:
            out = float(value)
        if out < 0:
            raise ValueError("must not be negative")
        return out
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}={value!r}: {exc}") from None


def _apply(obj: Any, values: Mapping[str, Any], where: str) -> Any:
    names = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in names or key in RULES:
            raise ConfigError(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(names))})")
        changes[key] = _convert(value, getattr(obj, key), f"{where}.{key}")
    return replace(obj, **changes)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"OTEL_REDIS_ALERTS_FILE={str(path)!r}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"OTEL_REDIS_ALERTS_FILE={str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"OTEL_REDIS_ALERTS_FILE={str(path)!r}: expected a table of settings")
    return data


def load_alert_config(env: Mapping[str, str] | None = None) -> AlertConfig:
    """Defaults, then ``OTEL_REDIS_ALERTS_FILE``, then ``OTEL_REDIS_ALERT_*``; ConfigError on bad values."""
    env = os.environ if env is None else env
    config = AlertConfig()
    path = (env.get("OTEL_REDIS_ALERTS_FILE") or "").strip()
    if path:
        data = _read_file(Path(path))
        general = {k: v for k, v in data.items() if k not in RULES}
        config = _apply(config, general, path)
        for rule in RULES:
            table = data.get(rule)
            if table is not None:
                if not isinstance(table, dict):
                    raise ConfigError(f"{path}: [{rule}] must be a table")
                config = replace(config, **{rule: _apply(getattr(config, rule), table, f"{path}: {rule}")})
    general_env: dict[str, Any] = {}
    for f in fields(config):
        if f.name in RULES:
            continue
        var = f"OTEL_REDIS_ALERT_{f.name.upper()}"
        if (env.get(var) or "").strip():
            general_env[f.name] = _convert(env[var], getattr(config, f.name), var)
    config = replace(config, **general_env)
    for rule in RULES:
        obj = getattr(config, rule)
        changes = {}
        for f in fields(obj):
            var = f"OTEL_REDIS_ALERT_{rule.upper()}_{f.name.upper()}"
            if (env.get(var) or "").strip():
                changes[f.name] = _convert(env[var], getattr(obj, f.name), var)
        config = replace(config, **{rule: replace(obj, **changes)})
    for url in config.webhooks:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"OTEL_REDIS_ALERT_WEBHOOKS: {url!r} is not an http:// or https:// URL")
    if config.interval_s <= 0:
        raise ConfigError("OTEL_REDIS_ALERT_INTERVAL_S must be > 0 (turn rules off with *_ENABLED=false)")
    return config


# ---------------------------------------------------------------------------- evaluation


@dataclass
class Condition:
    """One rule evaluated for one scope (``*`` = every hostname)."""

    rule: str
    scope: str
    firing: bool
    value: float | None
    threshold: float
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.rule}:{self.scope}"


ALL = "*"


def _scopes(client: redis.Redis, window: metrics.Window, per_hostname: bool) -> list[str | None]:
    return [None, *(metrics.hostnames(client, window) if per_hostname else [])]


def _scope_name(host: str | None) -> str:
    return ALL if host is None else host


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def eval_error_rate(client: redis.Redis, rule: ErrorRateRule, now_ms: int) -> list[Condition]:
    window = metrics.Window.ending(rule.window_s, now_ms)
    out = []
    for host, m in metrics.read_scopes(client, window, _scopes(client, window, rule.per_hostname), now_ms).items():
        firing = m.requests >= rule.min_requests and m.error_rate > rule.threshold
        out.append(Condition(
            "error_rate", _scope_name(host), firing, m.error_rate, rule.threshold,
            f"error rate {_pct(m.error_rate)} over {rule.window_s} s ({m.errors} of {m.requests} requests), "
            f"threshold {_pct(rule.threshold)}",
            {"requests": m.requests, "errors": m.errors, "server_errors": m.server_errors, "window_s": rule.window_s},
        ))
    return out


def _with_baseline(
    client: redis.Redis, window_s: int, baseline_s: int, per_hostname: bool, now_ms: int
) -> tuple[metrics.Window, metrics.Window, dict, dict]:
    current = metrics.Window.ending(window_s, now_ms)
    baseline = metrics.Window(current.start_ms - baseline_s * 1000, current.start_ms - 1)
    scopes = _scopes(client, metrics.Window(baseline.start_ms, now_ms), per_hostname)
    return current, baseline, metrics.read_scopes(client, current, scopes, now_ms), metrics.read_scopes(
        client, baseline, scopes, now_ms
    )


def eval_latency(client: redis.Redis, rule: LatencyRule, now_ms: int) -> list[Condition]:
    _, _, cur, base = _with_baseline(client, rule.window_s, rule.baseline_s, rule.per_hostname, now_ms)
    out = []
    for host, m in cur.items():
        b = base[host]
        now_q = percentiles(m.histogram, [rule.quantile])[rule.quantile]
        base_q = percentiles(b.histogram, [rule.quantile])[rule.quantile]
        firing = bool(
            now_q is not None
            and base_q is not None
            and m.requests >= rule.min_requests
            and b.requests >= rule.min_baseline_requests
            and now_q > rule.factor * base_q
            and now_q - base_q >= rule.min_increase_ms
        )
        q = f"p{rule.quantile:g}"
        out.append(Condition(
            "latency", _scope_name(host), firing, now_q, rule.factor,
            f"{q} {now_q if now_q is None else round(now_q, 1)} ms over {rule.window_s} s vs baseline "
            f"{base_q if base_q is None else round(base_q, 1)} ms (factor {rule.factor:g})",
            {q: now_q, f"baseline_{q}": base_q, "requests": m.requests, "baseline_requests": b.requests,
             "window_s": rule.window_s, "baseline_s": rule.baseline_s},
        ))
    return out


def eval_traffic(client: redis.Redis, rule: TrafficRule, now_ms: int) -> list[Condition]:
    cur_w, base_w, cur, base = _with_baseline(client, rule.window_s, rule.baseline_s, rule.per_hostname, now_ms)
    out = []
    for host, m in cur.items():
        b = base[host]
        rate, base_rate = m.requests / cur_w.seconds, b.requests / base_w.seconds
        enough = b.requests >= rule.min_baseline_requests and base_rate > 0
        ratio = rate / base_rate if base_rate > 0 else None
        spike = enough and rate > rule.factor * base_rate
        drop = enough and rate < base_rate / rule.factor
        kind = "spike" if spike else "drop" if drop else "normal"
        out.append(Condition(
            "traffic", _scope_name(host), spike or drop, ratio, rule.factor,
            f"traffic {kind}: {rate:.3f} req/s over {rule.window_s} s vs baseline {base_rate:.3f} req/s "
            f"(factor {rule.factor:g})",
            {"kind": kind, "rate": rate, "baseline_rate": base_rate, "requests": m.requests,
             "baseline_requests": b.requests, "window_s": rule.window_s, "baseline_s": rule.baseline_s},
        ))
    return out


def eval_oauth_failures(client: redis.Redis, rule: OAuthFailureRule, now_ms: int) -> list[Condition]:
    window = metrics.Window.ending(rule.window_s, now_ms)
    pipe = client.pipeline(transaction=False)
    for event_type in rule.event_types:
        pipe.zcount(schema.idx_oauth_event(event_type), window.start_ms, window.end_ms)
    counts = {t: int(n) for t, n in zip(rule.event_types, pipe.execute())}
    total = sum(counts.values())
    return [Condition(
        "oauth_failures", ALL, total >= rule.threshold, float(total), float(rule.threshold),
        f"{total} OAuth authentication failures over {rule.window_s} s (threshold {rule.threshold})",
        {"by_event_type": {t: n for t, n in counts.items() if n}, "window_s": rule.window_s},
    )]


EVALUATORS = {
    "error_rate": eval_error_rate,
    "latency": eval_latency,
    "traffic": eval_traffic,
    "oauth_failures": eval_oauth_failures,
}


def evaluate(client: redis.Redis, config: AlertConfig, now_ms: int | None = None) -> list[Condition]:
    """Every enabled rule's conditions at ``now_ms`` (now)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    out: list[Condition] = []
    for name, fn in EVALUATORS.items():
        rule = getattr(config, name)
        if rule.enabled:
            out.extend(fn(client, rule, now))
    return out
