"""A whole local cluster: the control plane with a scheduler, the node's network, a real node,
our images on it, and kube-elector installed from the shipped manifests as users install it.

    with Cluster.start(workdir) as cluster:
        cluster.install_kube_elector()
        cluster.kubectl("apply", "-k", "localplane/overlays/leader-app", "-n", "demo")

`stop()` undoes everything in reverse; what it leaves is checked by tests/node/test_cleanup.py.
"""

from __future__ import annotations

import atexit
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localplane.controlplane import coredns, plane
from localplane.node import images, kube_proxy, machine, network, node
from localplane.process import binaries as binaries_
from localplane.process import component

__all__ = ["Cluster", "OVERLAYS", "NAMESPACE"]

OVERLAYS = binaries_.ROOT / "localplane" / "overlays"
NAMESPACE = "kube-elector"  # where manifests/ installs the webhook
_WEBHOOK = "kube-elector-webhook"
_CONTROLLER = "kube-elector-controller"


class Cluster:
    """Use `Cluster.start(workdir)`, as a context manager or followed by `.stop()`."""

    def __init__(self, control_plane: plane.ControlPlane, net: network.NodeNetwork | None,
                 the_node: node.Node | None) -> None:
        self.lock = machine.MachineLock()
        self.plane = control_plane
        self.network = net
        self.node = the_node
        self.proxy: kube_proxy.KubeProxy | None = None
        self.dns: coredns.CoreDNS | None = None
        self.timings: dict[str, float] = {}

    @classmethod
    def start(cls, workdir: Path, *, with_node: bool = True, bins: binaries_.Binaries | None = None,
              timeout: float = 120.0, machine_wait: float = 1800.0, apiserver_args: Sequence[str] = ()) -> Cluster:
        """Start the plane, then (with_node) the network, containerd + kubelet, and import the images.

        With a node, first waits (up to machine_wait s) for another local node on this machine to stop.
        Raises BinariesMissing, ImagesMissing (run `make binaries` / `make images`), ControlPlaneError,
        NetworkError, NodeError or MachineBusy, after stopping whatever had started.
        """
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        if with_node and (absent := images.missing()):
            raise images.ImagesMissing(f"images not built: {', '.join(absent)}; run `make images`")
        lock = machine.MachineLock()
        if with_node:
            lock.acquire(timeout=machine_wait)
        started = time.monotonic()
        try:
            the_plane = plane.ControlPlane.start(workdir, bins=bins, timeout=timeout, scheduler=with_node,
                                                 apiserver_args=apiserver_args)
        except BaseException:
            lock.release()
            raise
        cluster = cls(the_plane, None, None)
        cluster.lock = lock
        atexit.register(cluster.stop)
        cluster.timings["control plane"] = time.monotonic() - started
        if not with_node:
            return cluster
        try:
            step = time.monotonic()
            cluster.network = network.NodeNetwork(workdir / "node", api_port=the_plane.api_port).start()
            with the_plane.client() as api:
                api.post("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                         json=network.kubernetes_endpoint_slice()).raise_for_status()
            cluster.dns = coredns.CoreDNS(workdir / "coredns", the_plane, address=network.NODE_IP).start(timeout=timeout)
            cluster.node = node.Node(workdir / "node", the_plane, cluster.network, cluster_dns=coredns.DNS_SERVICE_IP)
            cluster.node.start_runtime(timeout=timeout)
            cluster.timings["network + coredns + containerd"] = time.monotonic() - step
            step = time.monotonic()
            images.load_into(cluster.node.ctr, workdir)
            cluster.timings["image import"] = time.monotonic() - step
            step = time.monotonic()
            cluster.node.start_kubelet(timeout=timeout)
            cluster.timings["kubelet to node Ready"] = time.monotonic() - step
            step = time.monotonic()
            cluster.proxy = kube_proxy.KubeProxy(workdir / "node", the_plane, node.NODE_NAME).start(timeout=timeout)
            cluster.timings["kube-proxy"] = time.monotonic() - step
        except BaseException:
            cluster.stop()
            raise
        cluster.timings["total"] = time.monotonic() - started
        component.say("cluster ready in {:.1f} s ({})".format(
            cluster.timings["total"],
            ", ".join(f"{k} {v:.1f} s" for k, v in cluster.timings.items() if k != "total")))
        return cluster

    def stop(self) -> None:
        """Node, kube-proxy, DNS, network, plane, in that order. Safe to call twice."""
        # Pods first, while kube-proxy's rules still carry their connections to a clean close. Every
        # step runs even if one before it failed; the first error is raised at the end.
        steps = [self.node.stop if self.node else None, self.proxy.stop if self.proxy else None,
                 self.dns.stop if self.dns else None, self.network.stop if self.network else None,
                 self.plane.stop, self.lock.release]
        errors = []
        for step in filter(None, steps):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                errors.append(exc)
        atexit.unregister(self.stop)
        if errors:
            raise errors[0]

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.plane.kubectl(*args, **kwargs)

    def dump_logs(self, lines: int = 40) -> str:
        return self.plane.dump_logs(lines) + ("\n" + self.node.dump_logs(lines) if self.node else "")

    # --- kube-elector, as users install it

    def install_kube_elector(self, *, timeout: float = 120.0) -> float:
        """`kubectl apply -k localplane/overlays/kube-elector` (manifests/ with local images); seconds
        until both webhook and both controller replicas are Ready and the API server calls the webhook
        through its Service."""
        started = time.monotonic()
        self.kubectl("apply", "--server-side", "-k", str(OVERLAYS / "kube-elector"), timeout=timeout)
        for deployment in (_WEBHOOK, _CONTROLLER):
            self.kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{deployment}",
                         f"--timeout={int(timeout)}s", timeout=timeout + 10)
        self.wait_webhook_serving(timeout=timeout)
        seconds = time.monotonic() - started
        component.say(f"kube-elector installed from manifests/ and serving in {seconds:.1f} s")
        return seconds

    def wait_webhook_serving(self, *, timeout: float = 60.0) -> None:
        """Until a server-side dry run of an opted-in pod comes back injected (caBundle set, endpoints up)."""
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "probe", "annotations": {"elector.dev/inject": "true"}},
               "spec": {"containers": [{"name": "app", "image": images.PUBLIC_APP_IMAGE}]}}
        deadline = time.monotonic() + timeout
        last = ""
        with self.plane.client() as api:
            while time.monotonic() < deadline:
                reply = api.post("/api/v1/namespaces/default/pods", params={"dryRun": "All"}, json=pod)
                if reply.status_code == 201 and _injected(reply.json()):
                    return
                last = reply.text[:300]
                time.sleep(0.5)
        raise component.ComponentError(f"the webhook did not inject a dry-run pod in {timeout:.0f} s: {last}")


def _injected(pod: dict[str, Any]) -> bool:
    return any(c.get("name") == "elector" for c in pod.get("spec", {}).get("initContainers", []))
