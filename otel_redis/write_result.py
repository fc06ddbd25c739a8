"""What one written batch did, record by record: the result object the store returns.

A record counts as exported only when its own commands (its hash, its expiry and its stream entry)
were accepted by Redis. Each reply is mapped back to the record it carries; a record whose own
commands still fail after the retry is dropped under ``dropped_redis_error_{kind}``, and a failed
index or stats update of a stored record is counted as an index error. Returned to the caller
(never kept on the store) so that concurrent batches never see each other's errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import redis
from redis import exceptions

#: the kinds of Redis error a record can be dropped for (``dropped_redis_error_{kind}``)
ERROR_KINDS = ("oom", "readonly", "wrongtype", "noscript", "moved", "timeout", "other")

#: reply prefixes Redis uses, for errors redis-py leaves as a plain ResponseError
_PREFIXES = {"OOM": "oom", "READONLY": "readonly", "WRONGTYPE": "wrongtype", "NOSCRIPT": "noscript",
             "MOVED": "moved", "ASK": "moved"}
#: the error reply a script call wraps (Redis 6.2)
_IN_SCRIPT = re.compile(r"-(OOM|READONLY|WRONGTYPE|NOSCRIPT|MOVED|ASK)\b")
#: redis-py's classes for the replies it recognises (their text loses the prefix)
_CLASSES: tuple[tuple[type[BaseException], str, str], ...] = (
    (exceptions.OutOfMemoryError, "oom", "OOM"),
    (exceptions.ReadOnlyError, "readonly", "READONLY"),
    (exceptions.NoScriptError, "noscript", "NOSCRIPT"),
    (exceptions.AskError, "moved", "ASK"),
    (exceptions.MovedError, "moved", "MOVED"),
    (redis.TimeoutError, "timeout", ""),
)


def error_kind(error: BaseException) -> str:
    """The drop-counter kind of one error reply (see :data:`ERROR_KINDS`)."""
    for cls, kind, _prefix in _CLASSES:
        if isinstance(error, cls):
            return kind
    text = str(error)
    head = text.split(" ", 1)[0].upper()
    if head in _PREFIXES:
        return _PREFIXES[head]
    # an error raised inside a script: Redis 7 passes the reply through, Redis 6.2 wraps it
    # ("Error running script (call to f_...): @user_script:12: -OOM command not allowed ...")
    inner = _IN_SCRIPT.search(text)
    return _PREFIXES[inner.group(1)] if inner else "other"


def error_text(error: BaseException) -> str:
    """Redis's own error text (redis-py strips the prefix of the replies it classifies)."""
    text = str(error)
    for cls, _kind, prefix in _CLASSES:
        if isinstance(error, cls) and prefix and not text.startswith(prefix):
            return f"{prefix} {text}"
    return text


@dataclass
class WriteResult:
    """The outcome of one batch (:meth:`otel_redis.store.PendingWrite.complete`)."""

    #: every record key of the batch, in the order of its entries (stored or not)
    keys: list[str] = field(default_factory=list)
    #: positions (in ``keys``) of the records Redis did not accept, with the kind of error
    failed: dict[int, str] = field(default_factory=dict)
    #: kind -> Redis's text of the first error of that kind
    error_texts: dict[str, str] = field(default_factory=dict)
    #: index/stats commands of stored records that failed after the retry
    index_errors: int = 0
    #: commands that failed at first and were sent again
    resent: int = 0
    #: the batch's guarded part (stream entries, counters) had been applied by an earlier copy of
    #: the same round trip (a resend after lost replies): nothing was applied twice
    replayed: bool = False
    #: stream entries not yet read by a consumer group that a length trim removed
    unread_trimmed: int = 0

    @property
    def exported(self) -> int:
        return len(self.keys) - len(self.failed)

    def dropped_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for kind in self.failed.values():
            out[kind] = out.get(kind, 0) + 1
        return out

    def stored_keys(self) -> list[str]:
        failed = self.failed
        return [key for i, key in enumerate(self.keys) if i not in failed]

    def note(self, error: BaseException) -> str:
        """Remember the text of ``error`` (the first of its kind); returns its kind."""
        kind = error_kind(error)
        self.error_texts.setdefault(kind, error_text(error))
        return kind

    def summary(self) -> str:
        """One line for the warning: the true counts and Redis's own words."""
        parts = [f"{n} records {kind}: {self.error_texts.get(kind, '')}" for kind, n in self.dropped_by_kind().items()]
        if self.index_errors:
            parts.append(f"{self.index_errors} index/stats updates failed")
        return "; ".join(parts)
