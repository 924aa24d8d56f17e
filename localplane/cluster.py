"""A whole local cluster: the control plane with a scheduler, the network, one or more real nodes,
our images on them, and kube-elector installed from the shipped manifests as users install it.

    with Cluster.start(workdir, nodes=2) as cluster:
        cluster.install_kube_elector()
        cluster.kubectl("apply", "-k", "localplane/overlays/leader-app", "-n", "demo")

Node 0 is the host itself; `add_node()` starts another in namespaces of its own (localplane.node.layout),
`remove_node()` takes it away (its Node object and pods too). `stop()` undoes everything in reverse;
that it leaves nothing is checked around every cluster the suite starts (tests/node/machine.py).
"""

from __future__ import annotations

import atexit
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localplane.controlplane import coredns, plane
from localplane.node import images, kube_proxy, layout, machine, network, node
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
        self.node = the_node  # node 0, the host's
        self.extra_nodes: list[node.Node] = []
        self.proxy: kube_proxy.KubeProxy | None = None
        self._proxies: dict[str, kube_proxy.KubeProxy] = {}  # of the extra nodes, by node name
        self.dns: coredns.CoreDNS | None = None
        self.timings: dict[str, float] = {}
        self._images_archive: Path | None = None

    @classmethod
    def start(cls, workdir: Path, *, with_node: bool = True, nodes: int = 1, bins: binaries_.Binaries | None = None,
              timeout: float = 120.0, machine_wait: float = 1800.0, apiserver_args: Sequence[str] = ()) -> Cluster:
        """Start the plane, then (with_node) the network, containerd + kubelet, and import the images;
        then nodes - 1 more nodes (add_node).

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
            cluster.node = node.Node(workdir / "node", the_plane, layout.host_node(), cluster_dns=coredns.DNS_SERVICE_IP)
            cluster.node.start_runtime(timeout=timeout)
            cluster.timings["network + coredns + containerd"] = time.monotonic() - step
            step = time.monotonic()
            cluster._images_archive = images.save(workdir / "images.tar")
            images.import_archive(cluster.node.ctr, cluster._images_archive)
            cluster.timings["image import"] = time.monotonic() - step
            step = time.monotonic()
            cluster.node.start_kubelet(timeout=timeout)
            cluster.timings["kubelet to node Ready"] = time.monotonic() - step
            step = time.monotonic()
            cluster.proxy = kube_proxy.KubeProxy(workdir / "node", the_plane, layout.host_node()).start(timeout=timeout)
            cluster.timings["kube-proxy"] = time.monotonic() - step
            for _ in range(nodes - 1):
                step = time.monotonic()
                added = cluster.add_node(timeout=timeout)
                cluster.timings[added.name] = time.monotonic() - step
        except BaseException:
            cluster.stop()
            raise
        cluster.timings["total"] = time.monotonic() - started
        component.say("cluster ready in {:.1f} s ({})".format(
            cluster.timings["total"],
            ", ".join(f"{k} {v:.1f} s" for k, v in cluster.timings.items() if k != "total")))
        return cluster

    @property
    def workdir(self) -> Path:
        """The cluster's directory: the plane's, with one sub-directory per node."""
        return self.plane.workdir

    @property
    def nodes(self) -> list[node.Node]:
        """Every running node, node 0 first."""
        return [*([self.node] if self.node else []), *self.extra_nodes]

    def add_node(self, *, timeout: float = 120.0) -> node.Node:
        """One more node, in namespaces of its own (the next free index): containerd, the images (from the
        archive node 0 imported), the kubelet until Ready, its kube-proxy. Stopped again if it fails."""
        if self.node is None or self._images_archive is None:
            raise component.ComponentError("add_node needs a cluster started with a node")
        used = {n.layout.index for n in self.nodes}
        index = min(i for i in range(layout.MAX_NODES) if i not in used)
        where = layout.NodeLayout(index)
        started = time.monotonic()
        added = node.Node(self.workdir / where.name, self.plane, where, cluster_dns=coredns.DNS_SERVICE_IP)
        self.extra_nodes.append(added)
        try:
            added.start_runtime(timeout=timeout)
            images.import_archive(added.ctr, self._images_archive)
            added.start_kubelet(timeout=timeout)
            kubeconfig = added.api_kubeconfig("kube-proxy", user="system:kube-proxy", groups=[])
            self._proxies[added.name] = kube_proxy.KubeProxy(
                added.workdir / "kube-proxy", self.plane, where, enter=added.enter(), kubeconfig=kubeconfig,
            ).start(timeout=timeout)
        except BaseException:
            self.remove_node(added)
            raise
        component.say(f"node {added.name} added in {time.monotonic() - started:.1f} s")
        return added

    def remove_node(self, gone: node.Node) -> None:
        """Stop a node added by add_node and delete its Node object and its pods from the API (force: no
        kubelet is left to confirm), as a cloud provider does for a deleted machine."""
        proxy = self._proxies.pop(gone.name, None)
        try:
            gone.stop()
        finally:
            if proxy is not None:
                proxy.component.stop()  # its rules went with the node's namespace
            if gone in self.extra_nodes:
                self.extra_nodes.remove(gone)
            with self.plane.client() as api:
                api.delete(f"/api/v1/nodes/{gone.name}")
                pods = api.get("/api/v1/pods", params={"fieldSelector": f"spec.nodeName={gone.name}"}).json()
                for pod in pods.get("items", []):
                    meta = pod["metadata"]
                    api.delete(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                               params={"gracePeriodSeconds": 0})

    def stop(self) -> None:
        """Extra nodes, node 0, kube-proxy, DNS, network, plane, in that order. Safe to call twice."""
        # Pods first, while kube-proxy's rules still carry their connections to a clean close. Every
        # step runs even if one before it failed; the first error is raised at the end.
        steps = [*[lambda n=n: self.remove_node(n) for n in reversed(self.extra_nodes)],
                 self.node.stop if self.node else None, self.proxy.stop if self.proxy else None,
                 self.dns.stop if self.dns else None, self.network.stop if self.network else None,
                 lambda: self._images_archive.unlink(missing_ok=True) if self._images_archive else None,
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
        return "\n".join([self.plane.dump_logs(lines), *(n.dump_logs(lines) for n in self.nodes)])

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
