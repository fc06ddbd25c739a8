"""The guarded part of a batch: what must not be applied twice when a round trip is resent.

A round trip whose replies were lost (timeout, dropped connection) is resent whole by the client's
Retry, and a copy that already reached Redis still runs (a stopped Redis reads it when it resumes).
Record hashes, expiries and index members come out the same however often they run; stream entries,
counters, histogram and aggregate increments do not. Those go into one script call
(``lua/guarded_batch.lua``) that first sets the batch's marker (:func:`schema.batch_marker`) with
``SET NX``: the first copy to run applies them, every later copy finds the marker and applies
nothing. The call touches the marker and the keys of its ops only, so a cluster sender can make one
per hash slot (a marker with that slot's hash tag).
"""

from __future__ import annotations

import secrets
from importlib import resources
from typing import Any

from redis.exceptions import ResponseError

from . import aggregates, schema, scripts

SCRIPT = resources.files(__package__).joinpath("lua/guarded_batch.lua").read_text(encoding="utf-8")
SHA = __import__("hashlib").sha1(SCRIPT.encode()).hexdigest()

#: marker TTL floor; the store adds the client's whole retry window
MIN_MARKER_TTL_S = 120


class ReplayedError(ResponseError):
    """An op that failed in the copy of the batch that ran first (a resend found its marker)."""


class Guarded:
    """The guarded ops of one batch, in order (each op's reply lands at ``base + its index``)."""

    __slots__ = ("argv", "count", "partial")

    def __init__(self) -> None:
        self.argv: list[Any] = []
        self.count = 0
        #: op indexes that can stop part-way (pairs ops): not sent again after an error
        self.partial: set[int] = set()

    def xadd(self, stream: str, key: str) -> None:
        self.argv += ("X", stream, key)
        self.count += 1

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self.argv += ("H", key, field, amount)
        self.count += 1

    def command(self, command: tuple[Any, ...]) -> None:
        """Any single command (``EVAL`` of an aggregate script and ``EVALSHA`` of the histogram
        script become their own op kinds: a script cannot call another)."""
        name = command[0]
        if name in ("EVAL", "EVALSHA"):
            self._script(command)
            return
        self.argv += ("C", len(command), *command)
        self.count += 1

    def _script(self, command: tuple[Any, ...]) -> None:
        body, key, rest = command[1], command[3], command[4:]
        if body == scripts.HINCRBY_PAIRS_SHA:
            self.argv += ("P", key, len(rest), *rest)
        elif body in (aggregates.CAPPED_INCR_SHA, aggregates.CAPPED_SET_SHA):
            cap, ttl, pairs = rest[0], rest[1], rest[2:]
            kind = "I" if body == aggregates.CAPPED_INCR_SHA else "S"
            self.argv += (kind, key, cap, ttl, len(pairs), *pairs)
        else:
            raise ValueError("a script the guarded batch cannot run")
        self.partial.add(self.count)
        self.count += 1

    def op_argv(self, index: int) -> list[Any]:
        """The arguments of op ``index`` (to send it again on its own); walks the ops, as only
        the rare resend needs it."""
        for n, op in enumerate(self.ops()):
            if n == index:
                return op
        raise IndexError(index)

    def ops(self) -> list[list[Any]]:
        """Every op as its kind and arguments, in order (a resend's, a test's or a reader's view)."""
        argv = self.argv
        out = []
        at = 0
        while at < len(argv):
            kind = argv[at]
            if kind == "X":
                size = 3
            elif kind == "H":
                size = 4
            elif kind == "C":
                size = 2 + int(argv[at + 1])
            elif kind == "P":
                size = 3 + int(argv[at + 2])
            else:  # "I", "S"
                size = 5 + int(argv[at + 4])
            out.append(argv[at : at + size])
            at += size
        return out

    def call(self, ttl_s: int, token: str | None = None, tag: str | None = None) -> tuple[Any, ...]:
        """The script call (``EVALSHA``) applying every op once under a new (or the given) marker."""
        marker = schema.batch_marker(token or secrets.token_hex(10), tag)
        return ("EVALSHA", SHA, 1, marker, ttl_s, *self.argv)


def expand(reply: Any, count: int) -> tuple[list[Any], bool]:
    """The per-op replies of one guarded call, and whether it was a replay (its marker was set by
    a copy that ran first: nothing applied now; the ops that copy saw fail are errors here)."""
    if isinstance(reply, Exception):  # the call did not run (NOSCRIPT, OOM, ...)
        return [reply] * count, False
    if reply and reply[0] == 0:
        raw = reply[1] or b""
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        out: list[Any] = [b"replayed"] * count
        for index in filter(None, text.split(",")):
            out[int(index)] = ReplayedError("failed in the first copy of this batch")
        return out, True
    return list(reply[1:]), False
