"""Fault rounds for the election chaos run: each injects one fault and undoes it.

Every elector reaches the API server through its own loopback TCP proxy, so a link can be
cut for one elector alone (a partition), as well as the whole API server or etcd stopped.
"""

from __future__ import annotations

import datetime
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from localplane.process import tcpproxy
from localplane.kube_elector.electors import LEASE, RENEW, Elector, leaders, wait_for

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}"


@dataclass
class Member:
    """One candidate: its process and the proxy that is its only link to the API server."""

    elector: Elector
    proxy: tcpproxy.TcpProxy


@dataclass
class Cluster:
    plane: Any
    api: Any
    namespace: str
    election: str
    members: list[Member]
    restart: Callable[[Member], None]
    log: list[str] = field(default_factory=list)

    @property
    def electors(self) -> list[Elector]:
        return [m.elector for m in self.members]

    def leader(self, timeout: float = 20.0) -> Member:
        found = wait_for(lambda: leaders(self.electors), timeout)
        assert found, "no leader: " + " | ".join(e.logs()[-800:] for e in self.electors)
        return next(m for m in self.members if m.elector is found[0])

    def lease_path(self) -> str:
        return LEASES.format(ns=self.namespace, name=self.election)


def kubeconfig_via(plane: Any, proxy: tcpproxy.TcpProxy, token: str, path: Path) -> Path:
    """A token kubeconfig whose server is the proxy (the apiserver cert names 127.0.0.1)."""
    plane.write_kubeconfig(path, token=token)
    doc = json.loads(path.read_text())
    doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path.write_text(json.dumps(doc))
    return path


def sigkill(c: Cluster) -> None:
    m = c.leader()
    m.elector.signal(signal.SIGKILL)
    m.elector.proc.wait(5)
    c.restart(m)  # the kubelet restarts the container


def sigterm(c: Cluster) -> None:
    m = c.leader()
    m.elector.signal(signal.SIGTERM)
    m.elector.proc.wait(10)
    c.restart(m)


def sigstop(c: Cluster) -> None:
    m = c.leader()
    m.elector.signal(signal.SIGSTOP)
    time.sleep(LEASE + 1.0)
    m.elector.signal(signal.SIGCONT)


def apiserver_restart(c: Cluster) -> None:
    part = c.plane.components["kube-apiserver"]
    part.stop()
    part.start()


def etcd_restart(c: Cluster) -> None:
    part = c.plane.components["etcd"]
    part.stop()
    part.start()


def apiserver_paused(c: Cluster) -> None:
    part = c.plane.components["kube-apiserver"]
    part.pause()
    time.sleep(RENEW + 1.0)
    part.resume()


def leader_partitioned(c: Cluster) -> None:
    m = c.leader()
    m.proxy.cut()
    time.sleep(LEASE + 1.0)
    m.proxy.restore()


def lease_deleted(c: Cluster) -> None:
    c.leader()
    c.api.delete(c.lease_path()).raise_for_status()


def lease_stolen(c: Cluster) -> None:
    """Someone edits the Lease by hand to another holder (who then never renews)."""
    c.leader()
    for _ in range(5):
        lease = c.api.get(c.lease_path()).raise_for_status().json()
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease["spec"].update(holderIdentity="intruder", renewTime=now, acquireTime=now,
                             leaseTransitions=lease["spec"].get("leaseTransitions", 0) + 1)
        if c.api.put(c.lease_path(), json=lease).status_code == 200:
            return
    raise AssertionError("could not edit the Lease")


FAULTS: dict[str, Callable[[Cluster], None]] = {
    "sigkill": sigkill,
    "sigterm": sigterm,
    "sigstop>lease": sigstop,
    "apiserver-restart": apiserver_restart,
    "etcd-restart": etcd_restart,
    "apiserver-paused>renew": apiserver_paused,
    "leader-link-cut": leader_partitioned,
    "lease-deleted": lease_deleted,
    "lease-edited": lease_stolen,
}


def longest_gap(history: list[tuple[float, Any]], since: float) -> float:
    """The longest stretch with no leader since `since`, from a checker's (when, who says leader) changes."""
    longest, gap_start = 0.0, None
    for when, saying in history:
        if when < since:
            gap_start = None if saying else when
            continue
        if not saying and gap_start is None:
            gap_start = max(when, since)
        elif saying and gap_start is not None:
            longest, gap_start = max(longest, when - gap_start), None
    if gap_start is not None:
        longest = max(longest, time.monotonic() - gap_start)
    return longest
