"""kube-scheduler: binds the pods of a cluster with a node (a plane without nodes needs none)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["argv"]


def argv(binary: Path, *, kubeconfig: Path, port: int) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",  # self-signed serving cert; /healthz is always allowed
        "--profiling=false",
    ]
