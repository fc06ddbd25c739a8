"""The write path's sender, chosen once per client: the standalone one or the cluster one.

Both take the batch as a list of commands in :attr:`Sender.args` and return one reply per command,
in command order, with error replies as exception objects, so the store maps replies to records
the same way whichever is used. Standalone: :class:`otel_redis.resp.EarlySend` (commands packed
as they are planned, slices sent while planning goes on). Cluster:
:class:`otel_redis.transport_cluster.ClusterSend` (argument tuples, one ``RedisCluster``
pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Protocol, Sequence

from . import resp
from .connection import is_cluster_client


class Sender(Protocol):
    """One batch's round trip: the planner appends to ``args``, calls ``flush`` now and then."""

    args: list[Any]

    def flush(self) -> None: ...

    def finish(self) -> list[Any]: ...


@dataclass(frozen=True)
class Transport:
    """How one client's batches are built and sent."""

    #: a new, empty sender for one round trip
    new: Callable[[], Sender]
    #: one command (argument tuple) as the planner appends it to ``Sender.args``
    pack: Callable[[Sequence[Any]], Any]
    #: True on a Redis Cluster (hot keys are then written under their sharded names)
    cluster: bool


def for_client(client: Any) -> Transport:
    """The transport for ``client``: ``RedisCluster`` -> the cluster sender, else EarlySend."""
    if is_cluster_client(client):
        from .transport_cluster import ClusterSend, as_is

        return Transport(new=partial(ClusterSend, client), pack=as_is, cluster=True)
    return Transport(new=partial(resp.EarlySend, client, packed=True), pack=resp.pack, cluster=False)


def shard_order(client: Any, shards: int) -> list[int]:
    """The order a writer's slices visit the ``shards`` parts in: on a Cluster one part of each
    master in turn (:func:`otel_redis.transport_cluster.shard_order`), else the plain order."""
    if shards > 1 and is_cluster_client(client):
        from .transport_cluster import shard_order as by_master

        return by_master(client, shards)
    return list(range(shards))


__all__ = ["Sender", "Transport", "for_client", "shard_order"]
