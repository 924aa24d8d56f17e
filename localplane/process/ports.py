"""Free loopback ports, for everything the tests, the demo and the benchmarks start."""

from __future__ import annotations

import socket
import threading

__all__ = ["free_port", "free_ports"]

# Ports already handed out by this process. A port is free when asked for, but its owner binds it later:
# the kernel may hand the same port out again in between, and two electors started together then share
# one probe port (one fails to start, and the other answers for both: a bench once measured a dead one).
_GIVEN: set[int] = set()
_LOCK = threading.Lock()
_FORGET_AFTER = 10_000  # a long session's first ports are bound or gone by then


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out for 127.0.0.1 right now, distinct, and none this process handed out before."""
    held: list[socket.socket] = []
    ports: list[int] = []
    with _LOCK:
        if len(_GIVEN) > _FORGET_AFTER:
            _GIVEN.clear()
        try:
            while len(ports) < count:  # held together, so the kernel does not repeat one within a call
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
                if port not in _GIVEN:
                    ports.append(port)
        finally:
            for sock in held:
                sock.close()
        _GIVEN.update(ports)
    return ports


def free_port() -> int:
    return free_ports(1)[0]
