"""The write path's round trip on a Redis Cluster: each master gets its share of the batch at once.

The standalone sender (:class:`otel_redis.resp.EarlySend`) packs every command onto one server's
connection, which a Cluster would answer with MOVED for most keys. This sender keeps the same
shape (the planner appends to :attr:`ClusterSend.args`, calls :meth:`~ClusterSend.flush` now and
then, and :meth:`~ClusterSend.finish` returns one reply per command, in command order, errors as
exception objects), so the store's per-record accounting reads the replies exactly as on a
standalone server.

:meth:`~ClusterSend.finish` groups the commands by the node that serves their key's slot
(redis-py's slot map), sends every node its share on that node's own connection (an
:class:`~otel_redis.resp.EarlySend` each: packed in C, all sent before any reply is read) and reads
the replies. redis-py's cluster pipeline spends several microseconds of Python on each command;
this is the same round trip without that. What this direct path cannot settle (a MOVED or ASK reply
after a reshard, a node that cannot be reached during a failover) goes through redis-py's
``RedisCluster`` pipeline (``pipeline(transaction=False)``, ``execute(raise_on_error=False)``),
which follows the redirections, refreshes the slot map and retries.
"""

from __future__ import annotations

from typing import Any, Sequence

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, MovedError, RedisClusterException, TryAgainError

from . import resp, schema

#: commands whose first key is not their first argument (numkeys, then the keys)
_SCRIPTS = frozenset({"EVAL", "EVALSHA"})
_UNKNOWN = object()
#: replies that mean "not here, or not now": the command did not run and goes to redis-py's pipeline
_REDIRECTED = (MovedError, AskError, TryAgainError, ClusterDownError, redis.ConnectionError, redis.TimeoutError)


def _split_keys(command: Sequence[Any], reply: Exception) -> bool:
    """TRYAGAIN for a script with several keys: its slot migrates and its keys are split between the
    two nodes. Retrying cannot help until the migration ends, so the reply stands (the store then
    sends that call's ops as plain commands, which follow ASK one by one)."""
    return isinstance(reply, TryAgainError) and command[0] in _SCRIPTS and int(command[2]) > 1


def shard_order(client: RedisCluster, shards: int) -> list[int]:
    """The order in which a writer's slices visit the ``shards`` parts: one part of each master in
    turn (by the slot map now), so consecutive slices go to different masters and a few slices
    already spread evenly over them; the plain order when the slot map cannot say."""
    columns: dict[str, list[int]] = {}
    try:
        for n, part in enumerate(schema.sharded(schema.STREAM_LOGS, shards)):  # the tag decides the slot
            columns.setdefault(client.get_node_from_key(part).name, []).append(n)
    except (RedisClusterException, redis.RedisError):
        return list(range(shards))
    lists = list(columns.values())
    return [parts[i] for i in range(max(map(len, lists), default=0)) for parts in lists if i < len(parts)]


def as_is(command: Sequence[Any]) -> Sequence[Any]:
    """The cluster planner's "pack": the argument tuple itself (its key decides the node; it is
    packed once its node is known)."""
    return command


class ClusterSend:
    """One batch's commands (argument tuples), each node's share sent at once on its connection.

    :meth:`flush` sends nothing: the commands are grouped by node only once the batch is planned
    (a slice sent early to each node would need the slot map per slice and a reply read per node
    and slice)."""

    __slots__ = ("args", "_client")

    def __init__(self, client: RedisCluster) -> None:
        self.args: list[Any] = []
        self._client = client

    def flush(self) -> None:
        """Nothing to do before :meth:`finish` (see the class docstring)."""

    def finish(self) -> list[Any]:
        """Send every command and return the replies in command order (errors as exceptions).

        Each node's share goes out on its own connection; a command answered MOVED/ASK/TRYAGAIN, and
        the share of a node that could not be reached, are then sent through redis-py's cluster
        pipeline (:meth:`_through_pipeline`), whose replies take their slots. If that still fails,
        its error is the reply of each of those commands (the store counts their records as
        dropped and deletes what they left on the other nodes); only a batch of which no command
        reached Redis raises, as a lost connection does on a standalone server."""
        args = self.args
        if not args:
            return []
        replies: list[Any] = [None] * len(args)
        again: list[int] = []
        for positions, send in self._send_direct(again):
            try:
                answered = send.finish()
            except redis.RedisError:  # the node failed while answering: its share goes the slow way
                again.extend(positions)
                continue
            for position, reply in zip(positions, answered):
                if isinstance(reply, _REDIRECTED) and not _split_keys(args[position], reply):
                    again.append(position)
                replies[position] = reply
        if again:
            again.sort()
            try:
                late = self._through_pipeline([args[p] for p in again])
            except redis.RedisError as exc:
                if len(again) == len(args):
                    raise
                late = [exc] * len(again)
            for position, reply in zip(again, late):
                replies[position] = reply
        return replies

    def _send_direct(self, again: list[int]) -> list[tuple[list[int], resp.EarlySend]]:
        """Group the commands by node (one slot-map look-up per slot) and send each group without
        reading; the positions of a group whose node cannot be reached go to ``again``."""
        client = self._client
        by_node: dict[str, tuple[Any, list[int]]] = {}
        node_of_slot: dict[int, Any] = {}
        for position, command in enumerate(self.args):
            key = command[3] if command[0] in _SCRIPTS else command[1]
            slot = key_slot(key.encode("utf-8") if isinstance(key, str) else key)
            node = node_of_slot.get(slot, _UNKNOWN)
            if node is _UNKNOWN:
                try:
                    node = client.nodes_manager.get_node_from_slot(slot)
                except (RedisClusterException, redis.RedisError):  # a slot no node serves (yet)
                    node = None
                node_of_slot[slot] = node
            if node is None:
                again.append(position)
                continue
            group = by_node.get(node.name)
            if group is None:
                by_node[node.name] = (node, [position])
            else:
                group[1].append(position)
        sent: list[tuple[list[int], resp.EarlySend]] = []
        for node, positions in by_node.values():
            send = resp.EarlySend(client.get_redis_connection(node))
            send.args.extend(self.args[p] for p in positions)
            try:
                send.flush()
            except redis.RedisError:  # no connection to that node: nothing of its share was sent
                again.extend(positions)
                continue
            sent.append((positions, send))
        return sent

    def _through_pipeline(self, commands: list[Any]) -> list[Any]:
        """``commands`` through redis-py's cluster pipeline, under the client's Retry.

        A node that fails while its commands are read is handled by redis-py: its commands are sent
        again one by one (new slot map, its own retry); an error left after that stands in that
        command's slot. A node that cannot even be connected to fails the whole pipeline before
        anything is written, and commands answered CLUSTERDOWN (a master stopped or failing over:
        nothing ran) are sent again too: then the client's Retry (its backoff,
        :mod:`otel_redis.connection`) sends what is left, which repeats nothing (the guarded calls
        find their markers), so an outage that ends within the retries loses nothing. Once they are
        used up, the commands still refused keep their CLUSTERDOWN reply; ``redis.ConnectionError``
        is raised only when no attempt reached the cluster, as the standalone sender does."""
        replies: list[Any] = [None] * len(commands)
        todo = list(range(len(commands)))

        def attempt() -> list[Any]:
            nonlocal todo
            answered = self._attempt([commands[i] for i in todo])
            for i, reply in zip(todo, answered):
                replies[i] = reply
            todo = [i for i, reply in zip(todo, answered) if isinstance(reply, ClusterDownError)]
            if todo:
                raise redis.ConnectionError(f"the cluster is down for {len(todo)} commands")
            return replies

        try:
            return self._client.retry.call_with_retry(attempt, lambda _error: None)
        except redis.ConnectionError:
            if len(todo) < len(commands):  # some attempt was answered: its replies stand
                return replies
            raise

    def _attempt(self, commands: list[Any]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        try:
            return list(pipe.execute(raise_on_error=False))
        except (RedisClusterException, ClusterDownError) as exc:  # no slot map or no node for a slot
            raise redis.ConnectionError(str(exc)) from exc
        finally:
            pipe.reset()


__all__ = ["ClusterSend", "as_is", "shard_order"]
