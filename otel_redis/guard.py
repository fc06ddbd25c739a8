"""The guarded part of a batch: what must not be applied twice when a round trip is resent.

A round trip whose replies were lost (timeout, dropped connection) is resent whole by the client's
Retry, and a copy that already reached Redis still runs (a stopped Redis reads it when it resumes).
Record hashes, expiries and index members come out the same however often they run; stream entries,
counters, histogram and aggregate increments do not. Those go into one script call
(``lua/guarded_batch.lua``) that first sets the batch's marker (:func:`schema.batch_marker`) with
``SET NX``: the first copy to run applies them, every later copy finds the marker and applies
nothing. The call touches the marker and the keys of its ops only, so on a Redis Cluster the batch's
ops are split by hash slot (:func:`split`): one call per slot, each under a marker tagged with that
slot (:func:`schema.slot_tag`), so every copy of a call runs on the master owning its keys and finds
its own marker there. Standalone the batch is one call (one group, an untagged marker).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable, Sequence

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

    def call(self, ttl_s: int, token: str | None = None, tag: str | None = None,
             keys: Sequence[Any] = ()) -> tuple[Any, ...]:
        """The script call (``EVALSHA``) applying every op once under a new (or the given) marker.

        ``keys`` (a Cluster's call: its ops' keys) are declared after the marker, so that while
        their slot migrates Redis runs the call where all of them are, or answers ASK (none on the
        old owner) or TRYAGAIN (split between the two), rather than running it on a node that
        would create a second copy of a key the other node holds."""
        marker = schema.batch_marker(token or secrets.token_hex(10), tag)
        return ("EVALSHA", SHA, 1 + len(keys), marker, *keys, ttl_s, *self.argv)

    def plain(self) -> list[tuple[Any, ...]]:
        """Every op as the plain command it stands for (a call Redis cannot run while its slot
        migrates is sent so, once: at-least-once, as any plain command)."""
        out: list[tuple[Any, ...]] = []
        for op in self.ops():
            kind = op[0]
            if kind == "X":
                out.append(("XADD", op[1], "*", "k", op[2]))
            elif kind == "H":
                out.append(("HINCRBY", *op[1:]))
            elif kind == "C":
                out.append(tuple(op[2:]))
            elif kind == "P":
                out.append(("EVALSHA", scripts.HINCRBY_PAIRS_SHA, 1, op[1], *op[3:]))
            else:  # "I", "S": key cap ttl n pairs
                sha = aggregates.CAPPED_INCR_SHA if kind == "I" else aggregates.CAPPED_SET_SHA
                out.append(("EVALSHA", sha, 1, op[1], op[2], op[3], *op[5:]))
        return out


def op_key(op: Sequence[Any]) -> Any:
    """The key op ``op`` (an item of :meth:`Guarded.ops`) writes: after the count of a ``C`` op."""
    return op[3] if op[0] == "C" else op[1]


@dataclass(frozen=True)
class SlotCall:
    """One guarded call of a batch: the batch's ops ``ops`` (their indexes in the batch's
    :class:`Guarded`) as ``guarded``, sent as ``command`` (its marker fixed: a resend of the call
    as it is finds the marker a first copy set)."""

    ops: Sequence[int]
    guarded: Guarded
    command: tuple[Any, ...]


def split(guarded: Guarded, ttl_s: int, slot_of: Callable[[Any], int] | None = None,
          only: Sequence[int] | None = None) -> list[SlotCall]:
    """The calls applying ``guarded``'s ops (or the ops ``only``, under new markers): one call
    without ``slot_of`` (a standalone server), else one per hash slot of the ops' keys, in the
    order each slot first appears, each op keeping its order within its slot."""
    if slot_of is None and only is None:
        return [SlotCall(range(guarded.count), guarded, guarded.call(ttl_s))]
    every = guarded.ops()
    chosen = range(guarded.count) if only is None else only
    groups: dict[int, tuple[list[int], Guarded]] = {}
    for index in chosen:
        op = every[index]
        slot = -1 if slot_of is None else slot_of(op_key(op))
        group = groups.get(slot)
        if group is None:
            group = groups[slot] = ([], Guarded())
        indexes, part = group
        if index in guarded.partial:
            part.partial.add(part.count)
        indexes.append(index)
        part.argv += op
        part.count += 1
    out = []
    for slot, (indexes, part) in groups.items():
        command = part.call(ttl_s) if slot < 0 else part.call(ttl_s, tag=schema.slot_tag(slot), keys=_keys(part))
        out.append(SlotCall(indexes, part, command))
    return out


def _keys(part: Guarded) -> list[Any]:
    """The distinct keys of ``part``'s ops, in order."""
    return list(dict.fromkeys(op_key(op) for op in part.ops()))


def expand_calls(calls: Sequence[SlotCall], replies: Sequence[Any], count: int) -> tuple[list[Any], bool]:
    """The per-op replies of a batch's calls (one reply each), at the ops' indexes in the batch
    (``count`` ops; an op no call carries keeps ``None``), and whether any call was a replay."""
    if len(calls) == 1 and isinstance(calls[0].ops, range):  # standalone: the one call is the batch
        return expand(replies[0], count)
    out: list[Any] = [None] * count
    replayed = False
    for call, reply in zip(calls, replies):
        ops, again = expand(reply, call.guarded.count)
        replayed = replayed or again
        for index, op_reply in zip(call.ops, ops):
            out[index] = op_reply
    return out, replayed


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
