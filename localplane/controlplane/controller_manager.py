"""kube-controller-manager: the controllers a node and kube-elector need, one identity in system:masters."""

from __future__ import annotations

from pathlib import Path

from certs import pki
from localplane.controlplane import apiserver

__all__ = ["argv", "CONTROLLERS"]

# Names as `kube-controller-manager --help` lists them (canonical since 1.28).
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "deployment-controller",
    "replicaset-controller",
    "root-ca-certificate-publisher-controller",
    # For a node: its Ready taint lifted, Service endpoints (the API server calls the webhook
    # through them), PodDisruptionBudget status, StatefulSets.
    "node-lifecycle-controller",
    "taint-eviction-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "disruption-controller",
    "statefulset-controller",
)


def argv(binary: Path, ca: pki.KeyPair, pki_dir: Path, *, kubeconfig: Path, port: int) -> list[str]:
    cert, key = pki.make_serving_cert(
        ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], days=apiserver.DAYS
    ).write(pki_dir, "kube-controller-manager-serving")
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        # No --authentication/authorization-kubeconfig: delegated auth wants the apiserver's front-proxy
        # CA (not configured here) and logs an error every few seconds; /healthz is always allowed anyway.
        # One identity in system:masters for all controllers, not kubeadm's per-controller
        # ServiceAccounts: a restarted apiserver serves requests before its RBAC cache is synced,
        # and the 403s it gives then push the KCM's watches into backoff for up to a minute.
        # system:masters is allowed without RBAC, so the KCM recovers as soon as the port opens.
        "--use-service-account-credentials=false",
        f"--controllers={','.join(CONTROLLERS)}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        f"--root-ca-file={pki_dir / 'ca.crt'}",
        f"--service-cluster-ip-range={apiserver.SERVICE_CIDR}",
        "--profiling=false",
        # A node whose kubelet stopped renewing its Lease (killed, cut off) is NotReady after 20 s, not the
        # default 50 s: the node-fault tests wait for it. The kubelet renews every 10 s.
        "--node-monitor-grace-period=20s",
        "--node-monitor-period=2s",
    ]
