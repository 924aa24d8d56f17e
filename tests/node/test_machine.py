"""Start a whole local cluster with two nodes, install kube-elector, run the sample app, stop it all: the
machine is as it was. Runs first in the session (marker `machine`), before the shared node exists."""

from __future__ import annotations

import time

import pytest

from localplane import cluster
from tests.node import apps, machine


@pytest.mark.machine
def test_stopping_the_cluster_leaves_the_machine_as_it_was(tmp_path):
    before = machine.snapshot(tmp_path)
    started = time.monotonic()
    running = cluster.Cluster.start(tmp_path / "cluster", nodes=2)
    try:
        install = running.install_kube_elector()
        namespace = "machine"
        running.kubectl("create", "namespace", namespace)
        applied = time.monotonic()
        apps.deploy_sample_app(running, namespace)
        with running.plane.client() as api:
            apps.wait_agreed_leader(api, namespace, count=3)
            placed = {p["spec"]["nodeName"] for p in apps.observe.list_pods(api, namespace, apps.APP_SELECTOR)}
        leader_after = time.monotonic() - applied
        during = machine.snapshot(tmp_path)
    finally:
        running.stop()
    after = machine.snapshot(tmp_path)
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in running.timings.items())
    print(f"2-node cluster start: {parts}; kube-elector installed and "
          f"serving in {install:.1f} s, sample app: 3 pods Running with an agreed leader {leader_after:.1f} s "
          f"after kubectl apply (on {', '.join(sorted(placed))}); whole cycle {time.monotonic() - started:.1f} s")
    # The snapshot sees what the node makes (so an empty diff means something):
    assert during["processes"] != before["processes"] and during["links"] != before["links"]
    assert during["mounts"] != before["mounts"] and during["cgroups"] != before["cgroups"]
    for key in before:
        assert after[key] == before[key], f"{key} changed: before {before[key]!r}, after {after[key]!r}"
