"""The Prometheus view of the service: a custom prometheus-client collector, read at scrape time.

Families (``hostname=""`` is every hostname together; ``window`` is in seconds):

- ``otel_redis_window_requests``, ``otel_redis_requests_per_second``, ``otel_redis_error_rate``,
  ``otel_redis_server_error_rate``, ``otel_redis_response_time_ms{quantile}``,
  ``otel_redis_unique_visitors``: request metrics over each window of ``OTEL_REDIS_METRICS_WINDOWS``
  (otel_redis/metrics.py; the same numbers as ``GET /logs/metrics``);
- ``otel_redis_records_*_total``, ``otel_redis_records_dropped_total{reason}``,
  ``otel_redis_queue_length``, ``otel_redis_export_seconds`` (summary: batches and time spent):
  the pipeline counters of this process plus those every other live process published in Redis
  (the workers of a prefork server, otel_redis/counters.py), and
  ``otel_redis_process_records_total{process,counter}`` for each process;
- ``otel_redis_stream_length{stream}``, ``otel_redis_stream_group_pending{stream,group}``,
  ``otel_redis_stream_group_lag_seconds{stream,group}`` (newest entry time minus the group's last
  delivered entry time: the forwarder's lag, read from Redis, so it is right whichever process
  forwards); ``otel_redis_forwarder_backlog{stream}`` (entries the forwarding group has not been
  given yet, collector/counters.py ``forwarder_backlog``);
- ``otel_redis_receiver_*_total`` (this process's OTLP receiver) and
  ``otel_redis_forwarder_*_total{consumer}`` (every live forwarder, as it publishes its counters in
  Redis: collector/counters.py);
- ``otel_redis_job_runs_total{job}``, ``otel_redis_job_failures_total{job}``: the periodic jobs;
- ``otel_redis_alerts_firing{rule,scope}``: conditions firing now (1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily

import otel_redis
from otel_redis import counters, metrics, schema
from otel_redis.config import ConfigError
from otel_redis.connection import read_layout
from otel_redis.write_result import ERROR_KINDS

DROP_REASONS = ("queue_full", "export_failed", "preconfigure", "after_shutdown") + tuple(
    f"redis_error_{kind}" for kind in ERROR_KINDS
)


@dataclass(frozen=True)
class MetricsSettings:
    """``OTEL_REDIS_METRICS_WINDOWS`` and ``OTEL_REDIS_METRICS_TOKEN`` (see the README)."""

    windows: tuple[int, ...] = (60, 300, 3600)
    tokens: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "MetricsSettings":
        env = os.environ if env is None else env
        raw = env.get("OTEL_REDIS_METRICS_WINDOWS") or "60,300,3600"
        try:
            windows = tuple(dict.fromkeys(metrics.parse_duration(w) for w in raw.split(",") if w.strip()))
        except ValueError as exc:
            raise ConfigError(f"OTEL_REDIS_METRICS_WINDOWS={raw!r}: {exc}") from None
        if not windows:
            raise ConfigError(f"OTEL_REDIS_METRICS_WINDOWS={raw!r} names no window")
        tokens = tuple(t.strip() for t in (env.get("OTEL_REDIS_METRICS_TOKEN") or "").split(",") if t.strip())
        return cls(windows=windows, tokens=tokens)


def _s(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _id_ms(stream_id: Any) -> int:
    text = _s(stream_id)
    return int(text.split("-", 1)[0]) if text and text[0].isdigit() else 0


class ServiceCollector:
    """Collect everything above on each scrape (sync client: runs in the endpoint's worker thread)."""

    def __init__(
        self,
        client: redis.Redis,
        settings: MetricsSettings,
        jobs: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None,
        firing: Callable[[], list[tuple[str, str]]] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.jobs = jobs
        self.firing = firing

    def collect(self) -> Iterator[Metric]:
        yield from self._request_metrics()
        yield from self._pipeline_metrics()
        yield from self._stream_metrics()
        yield from self._collector_metrics()
        if self.jobs is not None:
            runs = CounterMetricFamily("otel_redis_job_runs", "Completed runs of a periodic job", labels=["job"])
            fails = CounterMetricFamily("otel_redis_job_failures", "Failed runs of a periodic job", labels=["job"])
            for name, status in sorted(self.jobs().items()):
                runs.add_metric([name], status["runs"])
                fails.add_metric([name], status["failures"])
            yield runs
            yield fails
        if self.firing is not None:
            g = GaugeMetricFamily("otel_redis_alerts_firing", "Alert conditions firing now", labels=["rule", "scope"])
            for rule, scope in self.firing():
                g.add_metric([rule, scope], 1)
            yield g

    def _request_metrics(self) -> Iterator[Metric]:
        labels = ["window", "hostname"]
        fams = {
            "requests": GaugeMetricFamily("otel_redis_window_requests", "Requests in the window", labels=labels),
            "requests_per_second": GaugeMetricFamily(
                "otel_redis_requests_per_second", "Requests per second over the window", labels=labels
            ),
            "error_rate": GaugeMetricFamily(
                "otel_redis_error_rate", "Share of 4xx and 5xx responses over the window", labels=labels
            ),
            "server_error_rate": GaugeMetricFamily(
                "otel_redis_server_error_rate", "Share of 5xx responses over the window", labels=labels
            ),
            "unique_visitors": GaugeMetricFamily(
                "otel_redis_unique_visitors", "Distinct client IPs in the hours the window touches", labels=labels
            ),
        }
        rt = GaugeMetricFamily(
            "otel_redis_response_time_ms",
            "Response-time percentile over the window (histogram, within 1 %)",
            labels=[*labels, "quantile"],
        )
        for seconds in self.settings.windows:
            got = metrics.compute(self.client, seconds)
            scopes = [("", got.overall), *sorted(got.hostnames.items())]
            for host, scope in scopes:
                values = [str(seconds), host]
                for name, fam in fams.items():
                    fam.add_metric(values, getattr(scope, name))
                for q, value in ((0.5, scope.p50_ms), (0.95, scope.p95_ms), (0.99, scope.p99_ms)):
                    if value is not None:
                        rt.add_metric([*values, str(q)], value)
        yield from fams.values()
        yield rt

    def _pipeline_metrics(self) -> Iterator[Metric]:
        # this process's live counters plus every other live process's (prefork workers publish
        # theirs in Redis: otel_redis/counters.py CounterPublisher), so one scrape sees them all
        published = counters.published_processes(self.client)
        local = otel_redis.stats()
        stats = counters.summed(local, published)
        per_process = CounterMetricFamily(
            "otel_redis_process_records", "Pipeline counters of each live process (host:pid)",
            labels=["process", "counter"],
        )
        mine = counters.process_name()
        for process, values in sorted({**published, mine: local}.items()):
            for key in ("emitted", "exported", "dropped"):
                per_process.add_metric([process, key], values.get(key, 0))
        yield per_process
        for name, key, doc in (
            ("otel_redis_records_emitted", "emitted", "Log records accepted by the pipeline"),
            ("otel_redis_records_exported", "exported", "Log records written to Redis"),
            ("otel_redis_export_retries", "retried", "Retried Redis round trips"),
            ("otel_redis_export_failed_batches", "failed_batches", "Batches dropped after the retries"),
            ("otel_redis_internal_errors", "internal_errors", "Internal errors in log calls or exports"),
            ("otel_redis_stream_unread_trimmed", "stream_unread_trimmed",
             "Stream entries trimmed before a consumer group (the forwarder) read them"),
            ("otel_redis_index_errors", "index_errors", "Index or stats updates of stored records that Redis refused"),
        ):
            yield CounterMetricFamily(name, doc, value=stats.get(key, 0))
        dropped = CounterMetricFamily("otel_redis_records_dropped", "Log records dropped", labels=["reason"])
        for reason in DROP_REASONS:
            dropped.add_metric([reason], stats.get(f"dropped_{reason}", 0))
        yield dropped
        yield GaugeMetricFamily("otel_redis_queue_length", "Log records waiting for export", value=stats.get("queue_length", 0))
        yield SummaryMetricFamily(
            "otel_redis_export_seconds",
            "Time spent writing batches to Redis",
            count_value=stats.get("export_batches", 0),
            sum_value=stats.get("export_seconds_total", 0.0),
        )

    def _stream_metrics(self) -> Iterator[Metric]:
        length = GaugeMetricFamily("otel_redis_stream_length", "Entries in the stream", labels=["stream"])
        pending = GaugeMetricFamily(
            "otel_redis_stream_group_pending", "Entries delivered to the group and not acknowledged",
            labels=["stream", "group"],
        )
        lag_s = GaugeMetricFamily(
            "otel_redis_stream_group_lag_seconds",
            "Newest stream entry time minus the group's last delivered entry time (forwarder lag)",
            labels=["stream", "group"],
        )
        shards = read_layout(self.client)
        for stream in schema.STREAMS:
            # on a Cluster a stream is S parts: lengths and pending entries add up, the lag is the
            # largest of the parts' (each part is in time order on its own)
            parts = schema.sharded(stream, shards)
            pipe = self.client.pipeline(transaction=False)
            for part in parts:
                pipe.xlen(part)
                pipe.xrevrange(part, count=1)
                pipe.xinfo_groups(part)
            replies = pipe.execute(raise_on_error=False)
            total = 0
            group_pending: dict[str, int] = {}
            group_lag: dict[str, float] = {}
            for i in range(len(parts)):
                n, newest, groups = replies[3 * i : 3 * i + 3]
                total += int(n) if not isinstance(n, Exception) else 0
                if isinstance(groups, Exception) or isinstance(newest, Exception):
                    continue  # no such stream (part) yet
                newest_ms = _id_ms(newest[0][0]) if newest else 0
                for group in groups:
                    g = {_s(k): v for k, v in group.items()}
                    name = _s(g.get("name", ""))
                    group_pending[name] = group_pending.get(name, 0) + int(g.get("pending") or 0)
                    delivered = _id_ms(g.get("last-delivered-id", "0-0"))
                    group_lag[name] = max(group_lag.get(name, 0.0), max(0, newest_ms - delivered) / 1000.0)
            length.add_metric([stream], total)
            for name, count in group_pending.items():
                pending.add_metric([stream, name], count)
                lag_s.add_metric([stream, name], group_lag[name])
        yield length
        yield pending
        yield lag_s

    def _collector_metrics(self) -> Iterator[Metric]:
        from collector.config import load_forwarder_settings
        from collector.counters import collector_stats, forwarder_backlog, published_forwarders

        backlog = GaugeMetricFamily(
            "otel_redis_forwarder_backlog", "Entries the forwarding group has not been given yet", labels=["stream"]
        )
        for stream, info in forwarder_backlog(self.client, load_forwarder_settings().group).items():
            if info.get("lag") is not None:
                backlog.add_metric([stream], info["lag"])
        yield backlog
        for name, value in collector_stats()["receiver"].items():
            yield CounterMetricFamily(f"otel_redis_receiver_{name}", f"OTLP receiver of this process: {name}", value=value)
        published = published_forwarders(self.client)
        names = sorted({k for counters in published.values() for k, v in counters.items() if isinstance(v, int)})
        for name in names:
            if name.endswith("_ms"):
                continue
            fam = CounterMetricFamily(f"otel_redis_forwarder_{name}", f"Forwarder counter {name}", labels=["consumer"])
            for consumer, counters in sorted(published.items()):
                if isinstance(counters.get(name), int):
                    fam.add_metric([consumer], counters[name])
            yield fam
