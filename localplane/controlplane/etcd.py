"""etcd: the plane's store, one member on loopback, no fsync (tests need speed, not durability)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["argv"]


def argv(etcd: Path, data_dir: Path, client_url: str, peer_url: str) -> list[str]:
    return [
        str(etcd),
        "--name=localplane",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=localplane={peer_url}",
        "--unsafe-no-fsync",  # tests need speed, not durability
        "--log-level=warn",
    ]
