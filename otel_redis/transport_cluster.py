"""The write path's round trip on a Redis Cluster: one redis-py ``RedisCluster`` pipeline per batch.

The standalone sender (:class:`otel_redis.resp.EarlySend`) packs every command onto one server's
connection, which a Cluster would answer with MOVED for most keys. This sender keeps the same
shape (the planner appends to :attr:`ClusterSend.args`, calls :meth:`~ClusterSend.flush` now and
then, and :meth:`~ClusterSend.finish` returns one reply per command, in command order, errors as
exception objects), but the commands stay argument tuples and go out through
``pipeline(transaction=False)``: redis-py groups them per node, sends each node its share,
follows MOVED/ASK one command at a time and refreshes its slot map, so the store's per-record
accounting reads the replies exactly as on a standalone server.
"""

from __future__ import annotations

from typing import Any, Sequence

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException


def as_is(command: Sequence[Any]) -> Sequence[Any]:
    """The cluster planner's "pack": the argument tuple itself (redis-py packs it per node)."""
    return command


class ClusterSend:
    """One batch's commands (argument tuples), sent as one non-transactional cluster pipeline.

    :meth:`flush` sends nothing: a cluster pipeline is sent and read in one call, and sending each
    slice as its own pipeline would make planning wait for a round trip per slice."""

    __slots__ = ("args", "_client")

    def __init__(self, client: RedisCluster) -> None:
        self.args: list[Any] = []
        self._client = client

    def flush(self) -> None:
        """Nothing to do before :meth:`finish` (see the class docstring)."""

    def finish(self) -> list[Any]:
        """Send every command and return the replies in command order (errors as exceptions).

        A node that cannot be reached is retried by redis-py (new slot map, the failed node's
        commands sent again one by one); once its retries are used up the error reply stands in
        each of that node's slots. A cluster that cannot be reached at all raises
        ``redis.ConnectionError``, as the standalone sender does."""
        if not self.args:
            return []
        pipe = self._client.pipeline(transaction=False)
        for command in self.args:
            pipe.execute_command(*command)
        try:
            return list(pipe.execute(raise_on_error=False))
        except RedisClusterException as exc:  # no node answered the slot map: a connection failure
            raise redis.ConnectionError(str(exc)) from exc
        finally:
            pipe.reset()


__all__ = ["ClusterSend", "as_is"]
