"""Network namespaces for pods: create/delete, sockets inside them, and the API server relay.

A socket belongs to the network namespace of the thread that created it, not of the thread that
uses it. So a short-lived thread that `setns()`s into a pod's namespace can create a socket there and
hand it back: the runner listens on the pod's 127.0.0.1:<apiserver port> and bridges each connection
to the API server on the host's 127.0.0.1 (the serving certificate covers 127.0.0.1). That is the
relay: no helper process per pod and no route out of the namespace; it stops with the runner. The
same trick lets the runner probe containers and the demo read each pod's localhost:4040.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import http.client
import os
import socket
import ssl
import subprocess
import threading
from pathlib import Path

__all__ = ["NetNS", "NetNSError", "socket_in", "http_get", "Relay", "stale", "RUN_NETNS"]

RUN_NETNS = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetNSError(RuntimeError):
    pass


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def socket_in(name: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A new socket in network namespace `name` (from `ip netns add`)."""
    result: dict[str, object] = {}

    def work() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(RUN_NETNS / name, os.O_RDONLY)
            try:
                _setns(target)
                try:
                    result["socket"] = socket.socket(family, kind)
                finally:
                    _setns(own)
            finally:
                os.close(target)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc
        finally:
            os.close(own)

    thread = threading.Thread(target=work, name=f"setns-{name}")
    thread.start()
    thread.join()
    if "error" in result:
        raise NetNSError(f"socket in netns {name}: {result['error']}")
    return result["socket"]  # type: ignore[return-value]


class _Connection(http.client.HTTPConnection):
    def __init__(self, netns: str, host: str, port: int, timeout: float, tls: bool):
        super().__init__(host, port, timeout=timeout)
        self._netns = netns
        self._tls = tls

    def connect(self) -> None:
        sock = socket_in(self._netns)
        sock.settimeout(self.timeout)
        try:
            sock.connect(("127.0.0.1" if self.host == "localhost" else self.host, self.port))
            if self._tls:  # as the kubelet's HTTPS probes: no certificate verification
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(sock)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def http_get(netns: str, port: int, path: str = "/", *, host: str = "127.0.0.1", timeout: float = 1.0,
             tls: bool = False) -> tuple[int, bytes]:
    """GET http(s)://host:port/path from inside the namespace; (status, body). Raises OSError when unreachable."""
    conn = _Connection(netns, host, port, timeout, tls)
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{port}", "Accept": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def tcp_connect(netns: str, port: int, *, host: str = "127.0.0.1", timeout: float = 1.0) -> None:
    """Open and close a TCP connection inside the namespace (a tcpSocket probe); raises OSError on failure."""
    sock = socket_in(netns)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    finally:
        sock.close()


class NetNS:
    """`ip netns add NAME` with loopback up; `delete()` removes it (safe to call twice)."""

    def __init__(self, name: str, ip: str = "ip"):
        self.name = name
        self.ip = ip
        self.path = RUN_NETNS / name

    def create(self) -> NetNS:
        self._ip("netns", "add", self.name)
        try:
            self._ip("-n", self.name, "link", "set", "lo", "up")
        except NetNSError:
            self.delete()
            raise
        return self

    def delete(self) -> None:
        if self.path.exists():
            self._ip("netns", "delete", self.name, check=False)

    def _ip(self, *args: str, check: bool = True) -> None:
        done = subprocess.run([self.ip, *args], capture_output=True, text=True)
        if check and done.returncode != 0:
            raise NetNSError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def stale(prefix: str) -> list[str]:
    """Namespaces named `<prefix><pid>-...` whose runner pid no longer exists (left by a killed runner)."""
    names = []
    with contextlib.suppress(FileNotFoundError):
        for entry in RUN_NETNS.iterdir():
            rest = entry.name.removeprefix(prefix)
            if rest == entry.name or "-" not in rest:
                continue
            pid = rest.split("-", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                names.append(entry.name)
    return names


class Relay:
    """Listens on 127.0.0.1:<port> inside a namespace; bridges each connection to 127.0.0.1:<port> on the host."""

    def __init__(self, netns: str, port: int, *, target_host: str = "127.0.0.1", target_port: int | None = None):
        self.netns = netns
        self.port = port
        self.target = (target_host, target_port or port)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        listener = await asyncio.to_thread(socket_in, self.netns)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.setblocking(False)
        self._server = await asyncio.start_server(self._handle, sock=listener)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except OSError:
            pass
        finally:
            for each in (writer, up_writer):
                if each is not None:
                    each.close()
            self._tasks.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close; on an error close the writer (the other direction then ends too)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()
