"""Ports for the processes the suite starts: never the same one twice in a process, even when the kernel
offers it again (two electors once shared a probe port, and one answered for the other)."""

import socket

from localplane.process import ports


def test_a_port_the_kernel_offers_again_is_not_handed_out_twice(monkeypatch):
    offered = iter([40001, 40001, 40001, 40002])

    class Sock:
        def __init__(self, *args):
            self.port = 0

        def bind(self, address):
            self.port = next(offered)

        def getsockname(self):
            return ("127.0.0.1", self.port)

        def close(self):
            pass

    monkeypatch.setattr(ports, "_GIVEN", set())
    monkeypatch.setattr(socket, "socket", Sock)
    assert ports.free_port() == 40001
    assert ports.free_port() == 40002


def test_ports_are_distinct_and_bindable():
    given = ports.free_ports(50) + [ports.free_port() for _ in range(50)]
    assert len(set(given)) == 100
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", given[-1]))
