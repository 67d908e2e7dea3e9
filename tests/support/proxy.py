"""A fault-injecting TCP proxy on loopback, between sesh and a real Redis.

It can add latency to every chunk, stall (hold traffic until released), drop traffic
(accept and discard), and reset every open connection. The latency is the simulated
network's, not a test waiting for time to pass.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from contextlib import suppress


class FaultProxy:
    def __init__(self, upstream_port: int, seed: int = 1) -> None:
        self.upstream_port = upstream_port
        self.latency = 0.0  # the most a chunk is delayed, in seconds (uniform from 0)
        self.drop = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._random = random.Random(seed)
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def stall(self) -> None:
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def reset_all(self) -> None:
        """Abort every open connection with a TCP reset."""
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.release()
        self.reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        for side in (writer, up_writer):
            self._writers.discard(side)
            side.transport.abort()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError, OSError):
            while chunk := await source.read(65536):
                await self._flowing.wait()
                if self.drop:
                    continue
                if self.latency:
                    await asyncio.sleep(self._random.random() * self.latency)
                sink.write(chunk)
                await sink.drain()
