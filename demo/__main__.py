"""`make demo` (`python -m demo`): kube-elector end to end on a local control plane.

Builds what is missing, starts etcd + kube-apiserver + kube-controller-manager, installs the webhook
from manifests/, starts the pod runner (the scheduler and kubelet a local plane lacks), applies the
sample app (3 replicas, one annotation), shows who leads, deletes the leader pod and measures the
handover. Then it stops everything; `--keep` leaves it up with a kubeconfig until Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from demo.observe import Observation, agreed_leader, observe
from demo.stack import IMAGE, PODMAN_ALIASES, install_webhook, missing_podman_images, remove_webhook
from localplane import binaries
from localplane import plane as plane_
from podrunner import PodRunner
from podrunner.podman import Podman
from podrunner.runner import NETNS_PREFIX

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "examples" / "leader-app"
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
            phase = "Terminating" if o.pod.terminating else o.pod.phase
            containers = " ".join(f"{c.name}:{'ready' if c.ready else c.state}" for c in o.pod.containers.values())
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


def follow(runner: PodRunner, view: View, until: Any, *, timeout: float, interval: float = 0.1) -> Any:
    """Show the view until `until(observations)` returns something truthy (returned)."""
    deadline = time.monotonic() + timeout
    while True:
        observations = observe(runner)
        view.show(observations)
        result = until(observations)
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {timeout:.0f} s")
        time.sleep(interval)


# ---------------------------------------------------------------- steps


def check_injection(plane: plane_.ControlPlane) -> str:
    """One line per pod: what the API server stored (the webhook's mutation)."""
    with plane.client() as api:
        pods = api.get(f"/api/v1/namespaces/{NAMESPACE}/pods").raise_for_status().json()["items"]
    lines = []
    for pod in pods:
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


def lease(plane: plane_.ControlPlane, name: str) -> dict[str, Any]:
    with plane.client() as api:
        found = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{name}")
    return found.json().get("spec", {}) if found.status_code == 200 else {}


def handover(plane: plane_.ControlPlane, runner: PodRunner, view: View, leader: str) -> dict[str, float | str]:
    """Delete the leader pod; measure until another pod leads and every live pod agrees."""
    say(f"      $ kubectl delete pod {leader} -n {NAMESPACE}")
    deleted = time.monotonic()
    plane.kubectl("delete", "pod", leader, "-n", NAMESPACE, "--wait=false")
    result: dict[str, float | str] = {}
    while True:
        observations = observe(runner)
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
        running = [o for o in others if o.pod.phase == "Running" and o.status is not None]
        if "agreed" in result and len(running) >= 3 and agreed_leader(others):
            result["all3"] = now
            break
        if now > 60:
            raise TimeoutError("no new leader agreed by 3 pods within 60 s of the deletion")
        time.sleep(0.05)
    for final in runner.stopped_pods():
        if final.name == leader:
            for key in ("terminating", "exited:app", "exited:elector"):
                if key in final.times:
                    result[key] = final.times[key] - deleted
    return result


# ---------------------------------------------------------------- main


def run(args: argparse.Namespace, workdir: Path) -> int:
    clock = Clock()
    t = step(1, "control-plane binaries (etcd, kube-apiserver, kube-controller-manager, kubectl)")
    try:
        bins = binaries.find()
        say("      cached in .cache/bin")
    except binaries.BinariesMissing:
        say("      not built yet: building from the Go module proxy (first time only; many minutes, progress below)")
        bins = binaries.ensure()
        done(t, "built")

    t = step(2, "local control plane on loopback")
    plane = plane_.ControlPlane.start(workdir / "plane", bins=bins)
    stack: list[Any] = [plane.stop]
    try:
        done(t, f"up at {plane.server}")

        t = step(3, "kube-elector webhook: kubectl apply -k manifests/, then `python -m webhook` behind the "
                    "MutatingWebhookConfiguration")
        hook = install_webhook(plane, workdir / "webhook")
        stack.append(lambda: remove_webhook(plane, hook))
        done(t, f"serving at {hook.url}, called by the API server")

        t = step(4, "pod runner: the scheduler + kubelet a local plane lacks (a network namespace per pod)")
        plane.kubectl("create", "namespace", NAMESPACE)
        podman = Podman(PODMAN_ALIASES) if args.podman else None
        runner = PodRunner(plane.kubeconfig, workdir / "pods", namespaces=[NAMESPACE], node="podrunner",
                           podman=podman)
        runner.start()
        stack.append(runner.stop)
        how = "podman containers from local images" if podman else "containers as local processes"
        done(t, f"node 'podrunner' serving namespace {NAMESPACE}, {how}")

        t = step(5, f"sample app: kubectl apply -k examples/leader-app -n {NAMESPACE}  (3 replicas, annotation "
                    "elector.dev/inject: \"true\")")
        view = View(clock)
        applied = time.monotonic()
        plane.kubectl("apply", "-k", str(APP), "-n", NAMESPACE)

        def three_and_a_leader(observations: list[Observation]) -> str | None:
            running = [o for o in observations if o.pod.phase == "Running" and "leader" in o.app]
            return agreed_leader(observations) if len(running) == 3 else None

        leader = follow(runner, view, three_and_a_leader, timeout=120)
        first_leader = time.monotonic() - applied
        say(f"      $ kubectl get pods -n {NAMESPACE} -o wide")
        say(_indent(plane.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide").stdout))
        say("      what the API server stored (the webhook's mutation):")
        say(check_injection(plane))
        done(applied, f"3 pods Running, leader {leader}, everyone agrees:")

        step(6, "handover: delete the leader pod (the ReplicaSet replaces it)")
        took = handover(plane, runner, view, leader)
        view.show(observe(runner), force=True)
        spec = lease(plane, "leader-app")

        say("\n== kube-elector demo: summary ==")
        say(f"  3/3 pods got the elector sidecar from the webhook (native sidecar, image {IMAGE})")
        say(f"  first leader: {leader}, {first_leader:.1f} s after kubectl apply (pods created, sidecar started, "
            "elected)")
        if "exited:app" in took and "exited:elector" in took:
            say(f"  deleting {leader}: its app got SIGTERM and exited at +{took['exited:app']:.2f} s, then its "
                f"elector released the Lease and exited at +{took['exited:elector']:.2f} s")
        say(f"  handover: {took['leader']} is leader {took['first']:.2f} s after the delete; all pods agree after "
            f"{took['agreed']:.2f} s; 3 pods (with the replacement) agree after {took['all3']:.2f} s")
        say(f"  Lease {NAMESPACE}/leader-app: holder {spec.get('holderIdentity')}, "
            f"transitions {spec.get('leaseTransitions')}")
        say(f"  demo run time: {clock():.1f} s")
        say(f"HANDOVER_SECONDS={took['first']:.3f}")

        if args.keep:
            keep(plane, runner, view, workdir)
        return 0
    finally:
        say("\nstopping: pods (app first, then sidecar), pod runner, webhook, control plane ...")
        for stop in reversed(stack):
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                say(f"      while stopping: {exc}")
        left = [n.name for n in Path("/run/netns").glob(f"{NETNS_PREFIX}{os.getpid()}-*")]
        say(f"      left running: {', '.join(left) if left else 'nothing'}")


def keep(plane: plane_.ControlPlane, runner: PodRunner, view: View, workdir: Path) -> None:
    kubectl_dir = plane.binaries.kubectl.parent
    say(f"""
The demo stays up (--keep). In another terminal:
  export KUBECONFIG={plane.kubeconfig}
  export PATH={kubectl_dir}:$PATH
  kubectl get pods,lease -n {NAMESPACE} -o wide
  kubectl delete pod -n {NAMESPACE} <the leader>     # and watch the handover here
  kubectl scale deployment/leader-app -n {NAMESPACE} --replicas=5
Logs: {workdir}/pods/*/logs, {workdir}/plane/*.log, {workdir}/webhook/webhook.log. Ctrl-C stops everything.
""")
    while True:
        view.show(observe(runner))
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
    parser.add_argument("--podman", action="store_true",
                        help=f"run the containers from images with podman ({IMAGE} and the sample app's stand-in "
                             f"{PODMAN_ALIASES['python']} must be built first)")
    parser.add_argument("--workdir", type=Path, help="where the plane, webhook and pods keep their files "
                        "(default: a new temporary directory, removed at the end unless --keep or a failure)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        say("make demo: needs root (the pod runner makes a network namespace per pod); try: sudo make demo")
        return 1
    missing = [tool for tool in ("ip", "unshare", "setpriv", "nsenter", "mount") if shutil.which(tool) is None]
    if missing:
        say(f"make demo: missing tools: {', '.join(missing)} (Debian: apt-get install iproute2 util-linux mount)")
        return 1
    if args.podman:
        missing = missing_podman_images()
        if missing:
            say(f"make demo --podman: images not built here: {', '.join(missing)} (see elector/Dockerfile and "
                "../shared notes: podman build; nothing can be pulled)")
            return 1
    logging.basicConfig(level=logging.WARNING, format="      [%(name)s] %(message)s")
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="kube-elector-demo-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    file_log = logging.FileHandler(workdir / "podrunner.log")
    file_log.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("podrunner").addHandler(file_log)
    logging.getLogger("podrunner").setLevel(logging.INFO)
    logging.getLogger("podrunner").propagate = False
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda n, _: sys.exit(128 + n))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the caller ignored it (a `&` job)
    ok = False
    try:
        code = run(args, workdir)
        ok = code == 0
        return code
    except KeyboardInterrupt:
        ok = args.keep  # Ctrl-C is how --keep ends
        return 0 if ok else 130
    except (binaries.BinariesMissing, plane_.ControlPlaneError, RuntimeError, TimeoutError,
            subprocess.CalledProcessError) as exc:
        say(f"\nmake demo failed: {exc}")
        return 1
    finally:
        if ok and args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"files kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
