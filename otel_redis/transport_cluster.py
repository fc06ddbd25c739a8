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
from redis.exceptions import ClusterDownError, RedisClusterException


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

        A node that fails while its commands are read is handled by redis-py: its commands are sent
        again one by one (new slot map, its own retry); an error left after that stands in that
        command's slot. A node that cannot even be connected to fails the whole pipeline before
        anything is written: then the client's Retry (its backoff, :mod:`otel_redis.connection`)
        sends the whole batch again, which repeats nothing, so a failover that ends within the
        retries loses no batch. Once they are used up, ``redis.ConnectionError`` is raised, as the
        standalone sender does."""
        if not self.args:
            return []
        return self._client.retry.call_with_retry(self._attempt, lambda _error: None)

    def _attempt(self) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in self.args:
            pipe.execute_command(*command)
        try:
            return list(pipe.execute(raise_on_error=False))
        except (RedisClusterException, ClusterDownError) as exc:  # no slot map or no node for a slot
            raise redis.ConnectionError(str(exc)) from exc
        finally:
            pipe.reset()


__all__ = ["ClusterSend", "as_is"]
