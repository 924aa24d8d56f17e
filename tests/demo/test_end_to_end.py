"""Issue 5's "done when", without the view: the sample app through the real API server, the webhook and
the pod runner. What runs is what the API server stored, so this is also the test that the injected
spec works: 3 replicas, exactly one leader named by all, the leader deleted, a new leader within seconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from demo.observe import agreed_leader, describe, observe, wait_for
from podrunner import PodRunner, PodView

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "examples" / "leader-app"
CLIENTS = REPO / "examples" / "clients"
NONROOT = 65532


def _running(runner: PodRunner, count: int) -> list[PodView] | None:
    pods = [p for p in runner.pods() if p.phase == "Running" and not p.terminating]
    ready = [p for p in pods if all(c.ready for c in p.containers.values())]
    return ready if len(ready) == count else None


def _proc(pid: int) -> tuple[int, bool]:
    """(uid, root mounted read-only) of a running process."""
    uid = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("Uid:"))
    root = next(line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
                if line.split()[4] == "/")
    return uid, "ro" in root[5].split(",")


@pytest.mark.parametrize("runner", ["process", "podman"], indirect=True)
def test_three_replicas_one_leader_and_a_handover_when_it_is_deleted(control_plane, api, namespace, webhook, runner):
    def state() -> str:
        stored = api.get(f"/api/v1/namespaces/{namespace}/pods").json()["items"]
        api_view = "\n".join(f"api: {p['metadata']['name']} node={p['spec'].get('nodeName')} "
                             f"phase={p.get('status', {}).get('phase')} deleting={bool(p['metadata'].get('deletionTimestamp'))}"
                             for p in stored)
        events = api.get(f"/api/v1/namespaces/{namespace}/events").json()["items"]
        warnings = "\n".join(f"event: {e['reason']}: {e['message']}" for e in events if e.get("type") == "Warning")
        return f"{describe(observe(runner))}\n{api_view}\n{warnings}"

    control_plane.kubectl("apply", "-k", str(APP), "-n", namespace)

    # 3 pods Running, and every elector names the same leader, which alone says is_leader.
    leader = wait_for(lambda: _running(runner, 3) and agreed_leader(observe(runner)), timeout=60,
                      message="3 pods Running with one agreed leader", detail=state)
    # What kubectl shows: the status the runner patched (coalesced, so it may trail its own view a little).
    def reported_running() -> list[dict] | None:
        pods = api.get(f"/api/v1/namespaces/{namespace}/pods").json()["items"]
        ok = len(pods) == 3 and all(
            p.get("status", {}).get("phase") == "Running"
            and [s["started"] for s in p["status"].get("initContainerStatuses", [])] == [True]
            and all(s["ready"] and "running" in s["state"] for s in p["status"].get("containerStatuses", []))
            and {c["type"]: c["status"] for c in p["status"].get("conditions", [])}.get("Ready") == "True"
            for p in pods)
        return pods if ok else None

    for pod in wait_for(reported_running, timeout=10, message="the API shows 3 pods Running and Ready", detail=state):
        sidecar = pod["spec"]["initContainers"][0]
        assert (sidecar["name"], sidecar.get("restartPolicy")) == ("elector", "Always")

    # The app saw the env the webhook added, and logs its role.
    def roles_logged() -> bool:
        return all(("leader" if o.name == leader else "follower") in o.app for o in observe(runner))

    wait_for(roles_logged, timeout=10, message="every app logs its role")
    for pod in runner.pods():
        log = pod.log("app")
        assert f"{pod.name}: starting; ELECTOR_SSE_URL=http://localhost:4040/sse " \
               "ELECTOR_GET_URL=http://localhost:4040/ ELECTOR_PATH=localhost:4040" in log
        # As the securityContexts ask: non-root, read-only root file system (for podman: inside the image).
        for name in ("elector", "app"):
            pid = wait_for(lambda: next(p for p in runner.pods() if p.name == pod.name).containers[name].pid,
                           timeout=10, message=f"{pod.name}/{name} has a pid")
            assert _proc(pid) == (NONROOT, True), (pod.name, name)

    # Delete the leader: another pod leads within seconds (the old one releases the Lease on SIGTERM).
    deleted = time.monotonic()
    assert api.delete(f"/api/v1/namespaces/{namespace}/pods/{leader}").status_code == 200
    new = wait_for(lambda: next((o.name for o in observe(runner) if o.is_leader and o.name != leader), None),
                   timeout=10, interval=0.05, message="a new leader", detail=state)
    handover = time.monotonic() - deleted
    assert handover < 5, f"handover took {handover:.2f} s"
    print(f"\nhandover: {leader} -> {new} in {handover:.2f} s")

    # The ReplicaSet's replacement joins; all three agree on the new leader.
    wait_for(lambda: _running(runner, 3) and agreed_leader(observe(runner)) == new, timeout=30,
             message="3 pods agree on the new leader", detail=state)
    old = next(p for p in runner.stopped_pods() if p.name == leader)
    assert old.times["exited:app"] < old.times["exited:elector"], "the app stops before its sidecar"
    assert "SIGTERM: stopping" in old.log("app")
    wait_for(lambda: api.get(f"/api/v1/namespaces/{namespace}/pods/{leader}").status_code == 404, timeout=10,
             message="the deleted pod's object is gone (deleted with grace 0 once stopped)")
    wait_for(lambda: "leader" in next(o.app for o in observe(runner) if o.name == new), timeout=5,
             message="the new leader's app logs it")


def _one_pod(api, namespace: str) -> str:
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "clients", "annotations": {"elector.dev/inject": "true"}, "labels": {"app": "clients"}},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [
            {"name": "app", "image": "python:3.12-slim", "command": ["python3", "-c", "import time; time.sleep(600)"]}]},
    }
    assert api.post(f"/api/v1/namespaces/{namespace}/pods", json=pod).status_code == 201
    return "clients"


def test_client_snippets_work_against_the_injected_elector(api, namespace, webhook, runner):
    name = _one_pod(api, namespace)
    wait_for(lambda: _running(runner, 1) and agreed_leader(observe(runner, app_container="none")), timeout=30,
             message="the pod runs and leads")
    pod = runner.pods()[0]
    env = {"PATH": "/usr/bin:/bin", "HOSTNAME": name, "ELECTOR_PATH": "localhost:4040",
           "ELECTOR_GET_URL": "http://localhost:4040/", "ELECTOR_SSE_URL": "http://localhost:4040/sse",
           "FOLLOW_SECONDS": "1"}

    def in_pod(*argv: str) -> str:
        done = subprocess.run(["ip", "netns", "exec", pod.netns, *argv], env=env, capture_output=True, text=True,
                              timeout=60, cwd=CLIENTS)
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = in_pod("sh", "curl.sh")
    assert json.loads(out.splitlines()[0])["name"] == name
    assert "I am the leader" in out
    assert json.loads(out.splitlines()[-1])["is_leader"] is True  # the SSE event
    assert in_pod(shutil.which("python3") or "python3", "poll.py", "--once").strip() == f"{name}: leader"
    assert in_pod(shutil.which("python3") or "python3", "sse.py", "--events", "1").startswith(f"leader: leader={name}")
    if shutil.which("java") is None:
        pytest.skip("no java here: LeaderClient.java not run")
    out = in_pod("java", "LeaderClient.java", "get")
    assert "I am the leader" in out and name in out
    assert f'"name":"{name}"' in in_pod("java", "LeaderClient.java", "sse", "1")


def test_a_plain_pod_runs_to_completion_with_its_env_and_volumes(api, namespace, runner):
    """The runner is a kubelet for any pod: downward API env, $(VAR) expansion, a ConfigMap volume, phase Succeeded."""
    config = {"metadata": {"name": "greeting"}, "data": {"text": "hello"}}
    assert api.post(f"/api/v1/namespaces/{namespace}/configmaps", json=config).status_code == 201
    script = 'import os; print(os.environ["GREETING"], open("/etc/greeting/text").read(), os.uname().nodename)'
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": "python:3.12-slim", "command": ["python3", "-c", script],
            "env": [{"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "GREETING", "value": "$(ME) says"}],
            "volumeMounts": [{"name": "greeting", "mountPath": "/etc/greeting"}]}],
            "volumes": [{"name": "greeting", "configMap": {"name": "greeting"}}]},
    }
    assert api.post(f"/api/v1/namespaces/{namespace}/pods", json=pod).status_code == 201

    def phase() -> str | None:
        found = api.get(f"/api/v1/namespaces/{namespace}/pods/plain").json()
        return found.get("status", {}).get("phase") if found.get("status", {}).get("phase") in ("Succeeded", "Failed") else None

    assert wait_for(phase, timeout=30, message="the pod completes") == "Succeeded"
    view = next(p for p in runner.pods() if p.name == "plain")
    assert view.log("main").strip() == "plain says hello plain"
