"""webhook/handshakes.py in one process on uvloop, as the webhook runs it: a handshake done hands the HTTP
protocol its TLS transport with the ClientHello intact; beyond the cap the oldest is closed; below it, the
deadline closes the rest. The process-level test with the API server is tests/security/test_webhook_server.py."""
from __future__ import annotations

import asyncio
import ssl
import time

import uvloop

from certs import pki
from webhook import handshakes, tls
from webhook.settings import Limits


class Echo(asyncio.Protocol):
    """Stands for the HTTP protocol: answers what it got, with whether its transport is TLS."""

    def __init__(self, **_: object) -> None:
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        tls_used = self.transport.get_extra_info("sslcontext") is not None
        self.transport.write(b"tls " + data if tls_used else b"plain " + data)


async def _closed(reader: asyncio.StreamReader, within: float) -> bool:
    """True if the server closed (or reset) the connection within `within` seconds."""
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except ConnectionResetError:
        return True
    except asyncio.TimeoutError:
        return False


def test_the_cap_closes_the_oldest_and_the_deadline_the_rest_while_a_handshake_goes_through(tmp_path):
    cert, key = pki.make_serving_cert(pki.make_ca("t", days=1), dns_names=["localhost"], ip_addresses=["127.0.0.1"],
                                      days=1).write(tmp_path, "tls")
    context = tls.server_context()
    context.load_cert_chain(cert, key)
    gate = handshakes.Gate(Echo, lambda: context, Limits(max_handshakes=10, handshake_timeout_seconds=2.0))
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(gate, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(30)]
        for _ in range(100):  # until the server accepted them all
            if gate.evicted + len(gate.pending) >= 30:
                break
            await asyncio.sleep(0.02)
        assert len(gate.pending) == 10 and gate.evicted == 20
        assert [await _closed(r, 0.2) for r, _ in silent[:20]] == [True] * 20  # closed now, not at the deadline
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)  # evicts one more
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.read(100), 2) == b"tls ping"
        started = time.monotonic()
        assert [await _closed(r, 5) for r, _ in silent[20:]] == [True] * 10
        assert time.monotonic() - started < 5 and gate.pending == {} and gate.failed >= 9
        writer.close()
        for _, w in silent:
            w.close()
        server.close()

    uvloop.run(main())
