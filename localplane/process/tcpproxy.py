"""A loopback TCP proxy for tests: stands in for a Service in front of replicas, and cuts links on demand.

Each new connection goes to the first backend that accepts it (so a dead replica is skipped,
as a Service's endpoints would skip it). `cut()` drops every open connection and refuses
new ones until `restore()`: a network partition between a client and its server.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Sequence

__all__ = ["TcpProxy"]


class TcpProxy:
    def __init__(self, backends: Sequence[tuple[str, int]], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.backends = list(backends)
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._cut = False
        self.connections = 0
        self._thread = threading.Thread(target=self._run, name=f"tcpproxy-{self.port}", daemon=True)
        self._started = threading.Event()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> TcpProxy:
        self._thread.start()
        self._started.wait(5)
        return self

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def cut(self) -> None:
        """Drop all open connections and refuse new ones."""
        self._cut = True
        self._loop.call_soon_threadsafe(self._drop_all)

    def restore(self) -> None:
        self._cut = False

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, sock=self._sock))
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._drop_all()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        for host, port in self.backends:
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port)
                break
            except OSError:
                continue
        else:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except asyncio.CancelledError:
            pass  # stop(): a cancelled handler would be logged as an error by asyncio's stream callback
        self._writers.difference_update((writer, up_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
