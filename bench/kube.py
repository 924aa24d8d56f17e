"""The local control plane for the benches that need only the API server."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence


def start_plane(workdir: Path, *, apiserver_args: Sequence[str] = ()) -> Any:
    """ControlPlane.start (binaries built if missing), with extra kube-apiserver flags (e.g. an audit log)."""
    from localplane.controlplane import plane as plane_
    from localplane.process import binaries

    return plane_.ControlPlane.start(workdir, bins=binaries.ensure(), apiserver_args=apiserver_args)


def make_namespace(api: Any, name: str, timeout: float = 30.0) -> str:
    """Create a namespace and wait for its default ServiceAccount (so Pods can be created)."""
    api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    deadline = time.monotonic() + timeout
    while api.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no default ServiceAccount in {name} after {timeout:.0f} s")
        time.sleep(0.1)
    return name
