"""kube-apiserver: its serving certificate (also valid for the `kubernetes` Service IP that pods
verify), its identity towards kubelets, the ServiceAccount signing key, and its flags."""

from __future__ import annotations

from pathlib import Path

from certs import pki

__all__ = ["argv", "SERVICE_CIDR", "API_SERVICE_IP", "DAYS"]

SERVICE_CIDR = "10.0.0.0/24"
API_SERVICE_IP = "10.0.0.1"  # the `kubernetes` Service: pods reach and verify the API server there
DAYS = 365  # every certificate of the plane


def argv(binary: Path, ca: pki.KeyPair, pki_dir: Path, *, etcd_url: str, port: int) -> list[str]:
    cert, key = pki.make_serving_cert(
        ca,
        dns_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                   "kubernetes.default.svc.cluster.local"],
        ip_addresses=["127.0.0.1", API_SERVICE_IP],
        days=DAYS,
    ).write(pki_dir, "kube-apiserver")
    # The API server's identity towards kubelets (logs, exec, port-forward).
    kubelet_client_cert, kubelet_client_key = pki.make_client_cert(
        ca, user="kube-apiserver-kubelet-client", groups=["system:masters"], days=DAYS
    ).write(pki_dir, "kube-apiserver-kubelet-client")
    signing = pki.make_rsa_keypair()
    sa_key, sa_pub = pki_dir / "sa.key", pki_dir / "sa.pub"
    sa_key.write_bytes(signing.key_pem)
    sa_key.chmod(0o600)
    sa_pub.write_bytes(signing.public_pem)
    return [
        str(binary),
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",  # no default route here; without it the apiserver refuses to start
        f"--secure-port={port}",
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        f"--client-ca-file={pki_dir / 'ca.crt'}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--kubelet-client-certificate={kubelet_client_cert}",
        f"--kubelet-client-key={kubelet_client_key}",
        "--kubelet-preferred-address-types=InternalIP",  # node names do not resolve here
        f"--service-account-issuer=https://127.0.0.1:{port}",
        f"--service-account-key-file={sa_pub}",
        f"--service-account-signing-key-file={sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",  # so that PodSecurity, not this flag, is what rejects a privileged pod
        f"--cert-dir={pki_dir / 'kube-apiserver-generated'}",
        # Loopback may not be an Endpoints address: the default reconciler would log an error every 10 s.
        "--endpoint-reconciler-type=none",
        # Without a grace period, SIGTERM waits for open watches (the KCM holds dozens) until
        # their timeout; with one, the apiserver ends them and a restart takes seconds.
        "--shutdown-watch-termination-grace-period=2s",
        "--profiling=false",
    ]
