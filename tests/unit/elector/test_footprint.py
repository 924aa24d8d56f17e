"""What the sidecar keeps out of its process, for its RSS (issue 24.3, bench/elector_rss.py): no worker
thread to resolve the injected `--http=localhost:...`, and no module that only a rare path needs."""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from elector.serve import httpserver

pytestmark = pytest.mark.timeout(30)


async def _route(request: httpserver.Request) -> httpserver.Reply:
    return httpserver.text_reply("ok\n")


async def test_listening_on_a_name_needs_no_executor_thread(monkeypatch):
    loop = asyncio.get_running_loop()

    def no_executor(*args, **kwargs):
        raise AssertionError("the listener resolved its host in the loop's executor (a thread for good)")

    monkeypatch.setattr(loop, "run_in_executor", no_executor)
    server = await httpserver.serve("localhost", 0, _route)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 200 OK")
        writer.close()
    finally:
        server.close()


def test_listen_addresses_are_numeric_and_unique():
    assert httpserver.listen_addresses("127.0.0.1", 80) == ["127.0.0.1"]
    named = httpserver.listen_addresses("localhost", 80)
    assert named and len(named) == len(set(named)) and "127.0.0.1" in named
    assert set(httpserver.listen_addresses("", 80)) <= {"0.0.0.0", "::"}


def test_the_sidecar_does_not_import_what_only_rare_paths_use():
    # client certificates only (kubeconfig._context): tempfile, and shutil, bz2, lzma that it brings
    rare = ("tempfile", "shutil", "bz2", "lzma", "concurrent.futures.thread", "queue")
    done = subprocess.run([sys.executable, "-c", "import sys, elector.__main__\n"
                           f"print(' '.join(m for m in {rare!r} if m in sys.modules))"],
                          capture_output=True, text=True, check=True, timeout=20)
    assert done.stdout.strip() == "", f"imported at start: {done.stdout.strip()}"


def test_the_image_runs_as_its_bytecode_was_compiled():
    """rootfs.py compiles the stdlib and checks the image with RUNTIME_ENV; the Dockerfile's ENV must match."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    spec = importlib.util.spec_from_file_location("rootfs", root / "tools" / "elector-image" / "rootfs.py")
    rootfs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rootfs)
    final = (root / "elector" / "Dockerfile").read_text().rsplit("FROM scratch", 1)[1]
    env = dict(line.strip().rstrip("\\").strip().removeprefix("ENV ").split("=", 1)
               for line in final.split("USER")[0].splitlines() if "=" in line and not line.startswith("#"))
    assert rootfs.RUNTIME_ENV["elector"] and rootfs.RUNTIME_ENV["elector"].items() <= env.items(), env
