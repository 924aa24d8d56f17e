"""The succession rules (candidates.py) on Pod dicts as the API server returns them."""
from __future__ import annotations

from typing import Any

from controller import candidates


def pod(name: str, *, created: str, owner: tuple[str, str] | None = ("ReplicaSet", "web-aaa"),
        labels: dict[str, str] | None = None, ready: bool = True, deleting: bool = False) -> dict[str, Any]:
    if labels is None:
        labels = {"pod-template-hash": owner[1].rpartition("-")[2]} if owner and owner[0] == "ReplicaSet" else {}
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created, "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True, "uid": "u"}]
    if deleting:
        meta["deletionTimestamp"] = "2026-12-02T10:00:00Z"
    return {"metadata": meta, "status": {"phase": "Running",
                                         "conditions": [{"type": "Ready", "status": str(ready)}]}}


def view(*pods: dict[str, Any]) -> dict[str, candidates.Candidate]:
    found = [candidates.from_pod(p) for p in pods]
    return {c.name: c for c in found}


T1, T2, T3, T4 = (f"2026-12-02T09:0{m}:00Z" for m in range(1, 5))


def sts_pod(index: int, revision: str, created: str, **kw: Any) -> dict[str, Any]:
    return pod(f"db-{index}", created=created, owner=("StatefulSet", "db"),
               labels={"controller-revision-hash": revision, "apps.kubernetes.io/pod-index": str(index)}, **kw)


def test_a_deployments_pods_share_one_workload_across_replicasets():
    old = candidates.from_pod(pod("web-aaa-1", created=T1, owner=("ReplicaSet", "web-aaa")))
    new = candidates.from_pod(pod("web-bbb-1", created=T2, owner=("ReplicaSet", "web-bbb")))
    assert old.workload == new.workload == "Deployment/web"
    assert (old.revision, new.revision) == ("aaa", "bbb")
    assert old.viable and old.index is None


def test_bare_pods_and_jobs_have_no_revision():
    bare = candidates.from_pod(pod("one", created=T1, owner=None, labels={"pod-template-hash": "x"}))
    job = candidates.from_pod(pod("job-x", created=T1, owner=("Job", "job")))
    assert (bare.workload, bare.revision) == ("", "")
    assert (job.workload, job.revision) == ("Job/job", "")


def test_a_statefulset_pod_has_its_ordinal_and_revision():
    c = candidates.from_pod(sts_pod(2, "db-7f", T1))
    assert (c.workload, c.revision, c.index) == ("StatefulSet/db", "db-7f", 2)
    no_label = candidates.from_pod(pod("db-11", created=T1, owner=("StatefulSet", "db"),
                                       labels={"controller-revision-hash": "r"}))
    assert no_label.index == 11


def test_not_ready_and_deleting_pods_are_not_viable():
    assert not candidates.from_pod(pod("a", created=T1, ready=False)).viable
    assert not candidates.from_pod(pod("a", created=T1, deleting=True)).viable


def test_the_newest_revision_is_the_one_born_last():
    pods = view(pod("web-aaa-1", created=T1), pod("web-bbb-1", created=T3, owner=("ReplicaSet", "web-bbb")))
    assert candidates.newest_revision(pods.values(), "Deployment/web") == "bbb"


def test_a_replacement_pod_of_the_old_revision_does_not_make_it_newest():
    pods = view(pod("web-aaa-1", created=T1), pod("web-bbb-1", created=T2, owner=("ReplicaSet", "web-bbb")),
                pod("web-aaa-2", created=T4))  # an old pod crashed mid-rollout and was replaced
    assert candidates.newest_revision(pods.values(), "Deployment/web") == "bbb"


def test_a_rollback_is_newest_once_it_has_pods_born_after_the_current_ones():
    pods = view(pod("web-bbb-1", created=T2, owner=("ReplicaSet", "web-bbb")), pod("web-aaa-9", created=T3))
    assert candidates.newest_revision(pods.values(), "Deployment/web") == "aaa"


def test_revisions_born_in_the_same_second_have_no_newest():
    pods = view(pod("web-aaa-1", created=T1), pod("web-bbb-1", created=T1, owner=("ReplicaSet", "web-bbb")))
    assert candidates.newest_revision(pods.values(), "Deployment/web") is None


def test_the_successor_is_a_ready_pod_of_the_newest_revision_not_one_about_to_go():
    pods = view(pod("web-aaa-1", created=T1), pod("web-aaa-2", created=T1),
                pod("web-bbb-1", created=T2, owner=("ReplicaSet", "web-bbb"), deleting=True),
                pod("web-bbb-2", created=T3, owner=("ReplicaSet", "web-bbb"), ready=False),
                pod("web-bbb-3", created=T3, owner=("ReplicaSet", "web-bbb")))
    assert candidates.successor("web-aaa-1", pods) == "web-bbb-3"
    assert candidates.handover_target("web-aaa-1", pods) == "web-bbb-3"


def test_without_a_newer_pod_the_successor_is_the_oldest_other_and_no_handover_is_due():
    pods = view(pod("web-aaa-1", created=T1), pod("web-aaa-2", created=T2), pod("web-aaa-3", created=T3))
    assert candidates.successor("web-aaa-3", pods) == "web-aaa-1"
    assert candidates.handover_target("web-aaa-3", pods) == ""


def test_a_leader_of_the_newest_revision_keeps_leading():
    pods = view(pod("web-aaa-1", created=T1), pod("web-bbb-1", created=T2, owner=("ReplicaSet", "web-bbb")))
    assert candidates.handover_target("web-bbb-1", pods) == ""


def test_another_workload_in_the_same_election_never_takes_over_by_revision():
    pods = view(pod("web-aaa-1", created=T1), pod("api-ccc-1", created=T4, owner=("ReplicaSet", "api-ccc")))
    assert candidates.handover_target("web-aaa-1", pods) == ""
    pods = view(pod("web-aaa-1", created=T1), pod("web-aaa-2", created=T2),
                pod("api-ccc-1", created=T1, owner=("ReplicaSet", "api-ccc")))
    assert candidates.successor("web-aaa-1", pods) == "web-aaa-2"  # our workload before an older stranger


def test_a_statefulset_leader_on_the_highest_ordinal_passes_to_the_lowest_which_is_updated_last():
    pods = view(sts_pod(0, "r1", T1), sts_pod(1, "r1", T1), sts_pod(2, "r1", T1, deleting=True))
    assert candidates.successor("db-2", pods) == "db-0"
    pods = view(sts_pod(0, "r1", T1), sts_pod(1, "r1", T1), sts_pod(2, "r2", T3))
    assert candidates.handover_target("db-0", pods) == "db-2"


def test_bare_pods_hand_over_only_on_release_to_the_oldest_ready_one():
    pods = view(pod("b", created=T2, owner=None), pod("a", created=T3, owner=None),
                pod("c", created=T1, owner=None, ready=False))
    assert candidates.handover_target("a", pods) == ""
    assert candidates.successor("a", pods) == "b"


def test_succession_over_a_live_view():
    current: dict[str, candidates.Candidate] | None = None
    s = candidates.Succession("web-aaa-1", lambda: current)
    assert (s.successor(), s.handover_target(), s.leaving(), s.viable("x")) == ("", "", False, True)
    current = view(pod("web-aaa-1", created=T1, deleting=True), pod("web-aaa-2", created=T2))
    assert s.leaving() and s.successor() == "web-aaa-2"
    assert s.viable("web-aaa-2") and not s.viable("web-aaa-1") and not s.viable("gone")
