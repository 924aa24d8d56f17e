"""controller.succession: the hints published on the Lease, from Pod dicts (rules: candidates.py)."""
from __future__ import annotations

from controller import succession
from tests.unit.controller.test_candidates import T1, T2, pod


def lease(holder: str = "", successor: str = "", **notes: str) -> dict:
    annotations = {**notes, **({succession.SUCCESSOR: successor} if successor else {})}
    return {"spec": {"holderIdentity": holder}, "metadata": {"annotations": annotations}}


OLD = [pod(f"web-aaa-{i}", created=T1) for i in (1, 2, 3)]
NEW = pod("web-bbb-1", created=T2, owner=("ReplicaSet", "web-bbb"))


def test_a_steady_election_names_the_next_leader_and_asks_no_handover():
    hints = succession.hints_for(lease("web-aaa-1"), OLD)
    assert hints == succession.Hints(next_leader="web-aaa-2")


def test_a_ready_pod_of_a_newer_revision_is_handed_over_to():
    assert succession.hints_for(lease("web-aaa-1"), [*OLD, NEW]) == succession.Hints("web-bbb-1", "web-bbb-1")
    not_ready = pod("web-bbb-1", created=T2, owner=("ReplicaSet", "web-bbb"), ready=False)
    assert succession.hints_for(lease("web-aaa-1"), [*OLD, not_ready]).hand_over_to == ""


def test_a_pod_that_opts_out_of_rollout_awareness_is_never_asked_to_hand_over():
    leader = pod("web-aaa-1", created=T1)
    leader["metadata"]["annotations"] = {"elector.dev/rollout-aware": "false"}
    hints = succession.hints_for(lease("web-aaa-1"), [leader, *OLD[1:], NEW])
    assert hints.hand_over_to == "" and hints.next_leader == "web-bbb-1"


def test_failed_nominees_and_unknown_holders():
    assert succession.hints_for(lease("web-aaa-1"), [*OLD, NEW], exclude={"web-bbb-1"}).hand_over_to == ""
    assert succession.hints_for(lease("client-go-peer"), OLD) == succession.Hints()


def test_a_released_leases_nominee_is_replaced_only_when_it_cannot_lead():
    assert succession.hints_for(lease(successor="web-bbb-1"), [*OLD, NEW]).successor is None  # fine as it is
    gone = succession.hints_for(lease(successor="web-bbb-1"), OLD, exclude={"web-aaa-1"})
    assert gone.successor == "web-aaa-2"  # the releaser sits out: the next oldest
    deleting = pod("web-bbb-1", created=T2, owner=("ReplicaSet", "web-bbb"), deleting=True)
    assert succession.hints_for(lease(successor="web-bbb-1"), [deleting], exclude=()).successor == ""


def test_the_patch_changes_only_what_differs_and_removes_with_null():
    current = lease("web-aaa-1", **{succession.NEXT_LEADER: "web-aaa-2", succession.HAND_OVER_TO: "web-bbb-1"})
    assert succession.annotation_patch(current, succession.Hints("web-aaa-2", "web-bbb-1")) == {}
    assert succession.annotation_patch(current, succession.Hints("web-aaa-3")) == {
        succession.NEXT_LEADER: "web-aaa-3", succession.HAND_OVER_TO: None}
    assert succession.annotation_patch(lease(successor="x"), succession.Hints(successor="")) == {
        succession.SUCCESSOR: None}
