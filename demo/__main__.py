"""`make demo` (`python -m demo`): kube-elector end to end on a local cluster with a real node.

Builds what is missing, starts etcd + kube-apiserver + kube-controller-manager + kube-scheduler and a
node (kubelet + containerd + runc), installs kube-elector with `kubectl apply -k` from manifests/ (local
images), applies the sample app (3 replicas, one annotation), shows who leads, deletes the leader pod
and measures the handover. Then it stops everything; `--keep` leaves it up with a kubeconfig until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from demo.observe import Observation, agreed_leader, observe
from localplane import cluster
from localplane.controlplane import plane
from localplane.node import images, network, node, pods
from localplane.process import binaries, component

REPO = Path(__file__).resolve().parent.parent
APP = cluster.OVERLAYS / "leader-app"
NAMESPACE = "demo"
STEPS = 6


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start


def say(message: str = "") -> None:
    print(message, flush=True)


def step(n: int, title: str) -> float:
    say(f"\n[{n}/{STEPS}] {title}")
    return time.monotonic()


def done(since: float, what: str = "done") -> None:
    say(f"      {what} in {time.monotonic() - since:.1f} s")


# ---------------------------------------------------------------- the live view


class View:
    """Prints the pods' table whenever something in it changes."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.last: Any = None

    def show(self, observations: list[Observation], *, force: bool = False) -> None:
        rows = []
        for o in observations:
            phase = "Terminating" if o.terminating else o.phase
            containers = " ".join(f"{c.name}:{'ready' if c.ready else c.state}" for c in o.containers.values())
            if o.status is None:
                says = "-"
            elif not o.says_leader:
                says = "electing..."
            elif o.is_leader:
                says = f"LEADER (term {o.status.get('term')})"
            else:
                says = f"follower of {o.says_leader or '?'}"
            rows.append((o.name, phase, containers, says, o.app))
        if rows == self.last and not force:
            return
        self.last = rows
        leader = agreed_leader(observations)
        head = f"leader: {leader}" if leader else "no agreed leader yet"
        say(f"  +{self.clock():5.1f}s  {len(rows)} pod(s), {head}")
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(_HEADERS)]
        for row in [_HEADERS, *rows]:
            say("           " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


_HEADERS = ("POD", "PHASE", "CONTAINERS", "ELECTOR SAYS", "APP LOG SAYS")


def follow(api: httpx.Client, view: View, until: Any, *, timeout: float, interval: float = 0.1) -> Any:
    """Show the view until `until(observations)` returns something truthy (returned)."""
    deadline = time.monotonic() + timeout
    while True:
        observations = observe(api, NAMESPACE)
        view.show(observations)
        result = until(observations)
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {timeout:.0f} s")
        time.sleep(interval)


# ---------------------------------------------------------------- steps


def check_injection(api: httpx.Client) -> str:
    """One line per pod: what the API server stored (the webhook's mutation)."""
    lines = []
    for pod in api.get(f"/api/v1/namespaces/{NAMESPACE}/pods").raise_for_status().json()["items"]:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        init = {c["name"]: c for c in pod["spec"].get("initContainers") or []}
        sidecar = init.get("elector")
        app = next(c for c in pod["spec"]["containers"] if c["name"] == "app")
        env = sorted(e["name"] for e in app.get("env") or [] if e["name"].startswith("ELECTOR_"))
        if sidecar:
            lines.append(f"      {pod['metadata']['name']}: initContainer elector (restartPolicy: "
                         f"{sidecar.get('restartPolicy')}, image {sidecar['image']}), app env {', '.join(env)}")
        else:
            lines.append(f"      {pod['metadata']['name']}: NOT injected")
    return "\n".join(lines)


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def handover(api: httpx.Client, view: View, leader: str) -> dict[str, Any]:
    """Delete the leader pod; measure until another pod leads and every live pod agrees."""
    pod = api.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{leader}").raise_for_status().json()
    say(f"      $ kubectl delete pod {leader} -n {NAMESPACE}   (the same DELETE, sent by the demo: times count "
        "from its reply)")
    watch = pods.ExitWatch(pod)
    watch.start()
    api.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/{leader}").raise_for_status()
    deleted = time.monotonic()
    watch.started = deleted
    result: dict[str, Any] = {}
    while True:
        observations = observe(api, NAMESPACE, with_logs="agreed" in result)
        view.show(observations)
        now = time.monotonic() - deleted
        others = [o for o in observations if o.name != leader]
        if "first" not in result:
            new = next((o for o in others if o.is_leader), None)
            if new is not None:
                result["first"], result["leader"] = now, new.name
        agreed = agreed_leader(others)
        if agreed and agreed != leader and "agreed" not in result:
            result["agreed"] = now
        running = [o for o in others if o.phase == "Running" and o.status is not None]
        if "agreed" in result and len(running) >= 3 and agreed_leader(others):
            result["all3"] = now
            break
        if now > 60:
            raise TimeoutError("no new leader agreed by 3 pods within 60 s of the deletion")
        time.sleep(0.05)
    watch.join(10)
    result.update({f"exited:{name}": when for name, when in watch.exited.items()})
    return result


def lease(api: httpx.Client, name: str) -> dict[str, Any]:
    found = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{name}")
    return found.json().get("spec", {}) if found.status_code == 200 else {}


# ---------------------------------------------------------------- main


def run(args: argparse.Namespace, workdir: Path) -> int:
    clock = Clock()
    t = step(1, "binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, containerd) "
                "and images")
    try:
        bins = binaries.find()
        say("      binaries cached in .cache/bin")
    except binaries.BinariesMissing:
        say("      not built yet: building from the Go module proxy (first time only; many minutes, progress below)")
        bins = binaries.ensure()
        done(t, "built")
    if absent := images.missing():
        raise images.ImagesMissing(f"images not built: {', '.join(absent)}; run `make images`")
    say(f"      images built by `make images`: {', '.join(images.names().all())}")

    t = step(2, "local cluster: control plane on loopback, and a node (kubelet + containerd + runc + CNI bridge)")
    the_cluster = cluster.Cluster.start(workdir / "cluster", bins=bins)
    try:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in the_cluster.timings.items() if k != "total")
        done(t, f"node {node.NODE_NAME} Ready ({parts}); up")
        say(_indent(the_cluster.kubectl("get", "nodes", "-o", "wide").stdout))

        t = step(3, "kube-elector: kubectl apply -k localplane/overlays/kube-elector  (manifests/ with the local "
                    "images)")
        the_cluster.install_kube_elector()
        say(_indent(the_cluster.kubectl("get", "pods", "-n", cluster.NAMESPACE, "-o", "wide").stdout))
        done(t, "2 webhook replicas Ready on the node, called by the API server through their Service:")

        t = step(4, f"sample app: kubectl apply -k localplane/overlays/leader-app -n {NAMESPACE}  (examples/leader-app, "
                    "3 replicas, annotation elector.dev/inject: \"true\")")
        the_cluster.kubectl("create", "namespace", NAMESPACE)
        view = View(clock)
        applied = time.monotonic()
        the_cluster.kubectl("apply", "-k", str(APP), "-n", NAMESPACE)
        with the_cluster.plane.client() as api:
            def three_and_a_leader(observations: list[Observation]) -> str | None:
                running = [o for o in observations if o.phase == "Running" and "leader" in o.app]
                return agreed_leader(observations) if len(running) == 3 else None

            leader = follow(api, view, three_and_a_leader, timeout=120)
            first_leader = time.monotonic() - applied
            say(f"      $ kubectl get pods -n {NAMESPACE} -o wide")
            say(_indent(the_cluster.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide").stdout))
            say("      what the API server stored (the webhook's mutation):")
            say(check_injection(api))
            say(f"      $ kubectl logs -n {NAMESPACE} {leader} -c app")
            say(_indent(the_cluster.kubectl("logs", "-n", NAMESPACE, leader, "-c", "app").stdout))
            done(applied, f"3 pods Running, leader {leader}, everyone agrees:")

            step(5, "handover: delete the leader pod (the ReplicaSet replaces it)")
            took = handover(api, view, leader)
            view.show(observe(api, NAMESPACE), force=True)
            spec = lease(api, "leader-app")

        step(6, "summary")
        say("== kube-elector demo: summary ==")
        say(f"  3/3 pods got the elector sidecar from the in-cluster webhook (native sidecar, image "
            f"{images.names().elector}), and run on node {node.NODE_NAME}")
        say(f"  first leader: {leader}, {first_leader:.1f} s after kubectl apply (pods scheduled, images started by "
            "the kubelet, sidecar started, elected)")
        if "exited:app" in took and "exited:elector" in took:
            say(f"  deleting {leader}: the kubelet stopped its app first (exited at +{took['exited:app']:.2f} s), "
                f"then its elector, which released the Lease naming a Ready successor "
                f"(exited at +{took['exited:elector']:.2f} s)")
        say(f"  handover: {took['leader']} is leader {took['first']:.2f} s after the delete; all pods agree after "
            f"{took['agreed']:.2f} s; 3 pods (with the replacement) agree after {took['all3']:.2f} s")
        say(f"  Lease {NAMESPACE}/leader-app: holder {spec.get('holderIdentity')}, "
            f"transitions {spec.get('leaseTransitions')}")
        say(f"  demo run time: {clock():.1f} s")
        say(f"HANDOVER_SECONDS={took['first']:.3f}")

        if args.keep:
            keep(the_cluster, view, workdir)
        return 0
    finally:
        say("\nstopping: node (kube-proxy and its rules, kubelet, containerd, pods), network, control plane ...")
        the_cluster.stop()
        left = [network.POD_BRIDGE] if Path(f"/sys/class/net/{network.POD_BRIDGE}").exists() else []
        say(f"      left behind: {', '.join(left) if left else 'nothing'}")


def keep(the_cluster: cluster.Cluster, view: View, workdir: Path) -> None:
    kubectl_dir = the_cluster.plane.binaries.kubectl.parent
    say(f"""
The demo stays up (--keep). In another terminal:
  export KUBECONFIG={the_cluster.kubeconfig}
  export PATH={kubectl_dir}:$PATH
  kubectl get pods,lease -n {NAMESPACE} -o wide
  kubectl logs -n {NAMESPACE} deployment/leader-app -c app
  kubectl delete pod -n {NAMESPACE} <the leader>     # and watch the handover here
  kubectl scale deployment/leader-app -n {NAMESPACE} --replicas=5
Logs: {workdir}/cluster/*.log and {workdir}/cluster/node/. Ctrl-C stops everything.
""")
    with the_cluster.plane.client() as api:
        while True:
            view.show(observe(api, NAMESPACE))
            time.sleep(0.25)


class _Tolerant:
    """A stdout/stderr that never raises: if the reader goes away (`make demo | head`), output is
    dropped and the demo still stops everything it started."""

    def __init__(self, stream: Any):
        self._stream = stream
        self._broken = False

    def write(self, text: str) -> int:
        if not self._broken:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self._broken = True
        return len(text)

    def flush(self) -> None:
        if not self._broken:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._broken = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    sys.stdout, sys.stderr = _Tolerant(sys.stdout), _Tolerant(sys.stderr)  # type: ignore[assignment]
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep everything running (with a kubeconfig) until Ctrl-C")
    parser.add_argument("--workdir", type=Path, help="where the cluster keeps its files "
                        "(default: a new temporary directory, removed at the end unless --keep or a failure)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        say("make demo: needs root (a kubelet, containerd and a bridge for the pods); try: sudo make demo")
        return 1
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="kube-elector-demo-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    component.exit_on_signals()
    ok = False
    try:
        code = run(args, workdir)
        ok = code == 0
        return code
    except KeyboardInterrupt:
        ok = args.keep  # Ctrl-C is how --keep ends
        return 0 if ok else 130
    except (binaries.BinariesMissing, images.ImagesMissing, plane.ControlPlaneError, network.NetworkError,
            RuntimeError, TimeoutError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
        say(f"\nmake demo failed: {exc}")
        return 1
    finally:
        if ok and args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"files kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
