"""Private redis-server processes for tests that must kill, stall or cluster them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
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

    def __init__(self, directory: Path, *options: str, durable: bool = True) -> None:
        self.port = free_port()
        self.directory = directory / f"redis-{self.port}"
        self.directory.mkdir(parents=True)
        aof = (
            ("--appendonly", "yes", "--appendfsync", "always")
            if durable
            else ("--appendonly", "no")
        )
        self.options = ("--save", "", *aof, *options)
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), *self.options],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        for line in self.process.stdout:  # its own word that it is ready; no polling
            if "Ready to accept connections" in line:
                break
        else:
            raise RuntimeError(f"redis-server on port {self.port} did not start")
        # Keep reading its log, so that a full pipe never blocks it.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

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
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            self.process.wait(timeout=10)


class RedisClusterNodes:
    """Three masters on free ports, joined with ``redis-cli --cluster create``."""

    def __init__(self, directory: Path) -> None:
        self.nodes = [
            RedisServer(directory, "--cluster-enabled", "yes", "--cluster-node-timeout", "5000")
            for _ in range(3)
        ]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        # `create` waits for the nodes to agree on the configuration; then every node must
        # report the cluster healthy. Each check is a round trip, so this loop paces itself.
        for _ in range(10_000):
            states = [node.client().cluster("info")["cluster_state"] for node in self.nodes]
            if all(state == "ok" for state in states):
                return
        raise RuntimeError("the cluster did not become healthy")

    @property
    def first_port(self) -> int:
        return self.nodes[0].port

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
