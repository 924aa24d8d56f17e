"""controller.reconcile against an in-memory API: what one election's pods and Lease lead to."""
from __future__ import annotations

import datetime

from controller import observed, reconcile
from tests.unit.controller.fake_api import FakeApi
from tests.unit.controller.test_candidates import T1, T2, pod

NS = "shop"
ROLE = "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles/kube-elector-lease-web"
BINDING = "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings/kube-elector-lease-web"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/shop/leases/web"
SLICE = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/web-leader-leader"
SERVICE = "/api/v1/namespaces/shop/services/web-leader"
WALL = datetime.datetime(2026, 12, 4, 12, tzinfo=datetime.timezone.utc)


def candidate(name: str, *, created: str = T1, owner=("ReplicaSet", "web-aaa"), ip: str = "", **notes: str) -> dict:
    p = pod(name, created=created, owner=owner)
    p["metadata"].update(namespace=NS, uid=f"uid-{name}", annotations=dict(notes))
    p["spec"] = {"serviceAccountName": "web"}
    if ip:
        p["status"]["podIP"] = ip
    return p


def run(api: FakeApi, election: reconcile.Election, pods: list, seen=None, now: float = 1000.0, *,
        lease_cached: bool = True):
    """One reconcile with what the informers would hold: the objects as they are in the API."""
    cached = reconcile.Cached(pods, lease=api.get(LEASE) if lease_cached else None, role=api.get(ROLE),
                              binding=api.get(BINDING), seen=seen)
    return election.reconcile(api, cached, now=now, wall=lambda: WALL)


def hold(api: FakeApi, holder: str, transitions: int = 1) -> dict:
    lease = api.objects[LEASE]
    lease["spec"] = {"holderIdentity": holder, "leaseDurationSeconds": 15, "leaseTransitions": transitions,
                     "renewTime": f"t{transitions}"}
    return lease


def test_a_new_election_gets_its_role_binding_and_free_lease_once():
    api, election = FakeApi(), reconcile.Election(NS, "web", identity="ctl-0")
    pods = [candidate("web-aaa-1"), candidate("web-aaa-2")]
    assert run(api, election, pods) is None
    assert [m for m, _ in api.writes()] == ["POST", "POST", "POST"]
    assert api.objects[ROLE]["rules"][0]["resourceNames"] == ["web"]
    assert api.objects[BINDING]["subjects"] == [{"kind": "ServiceAccount", "name": "web", "namespace": NS}]
    assert api.objects[LEASE]["metadata"]["ownerReferences"][0]["uid"] == api.objects[ROLE]["metadata"]["uid"]
    api.calls.clear()
    run(api, election, pods)
    assert api.calls == []  # nothing changed: nothing written, nothing read (the caches have it all)


def test_a_role_or_binding_deleted_by_hand_is_made_again_and_the_lease_owned_by_the_new_role():
    api, election = FakeApi(), reconcile.Election(NS, "web", identity="ctl-0")
    pods = [candidate("web-aaa-1")]
    run(api, election, pods)
    del api.objects[BINDING]
    run(api, election, pods)
    assert BINDING in api.objects
    del api.objects[ROLE], api.objects[BINDING], api.objects[LEASE]  # as the garbage collector does after it
    run(api, election, pods, lease_cached=False)
    role_uid = api.objects[ROLE]["metadata"]["uid"]
    assert api.objects[LEASE]["metadata"]["ownerReferences"][0]["uid"] == role_uid
    assert api.objects[BINDING]["metadata"]["ownerReferences"][0]["uid"] == role_uid


def test_hints_follow_the_holder_and_a_rollout():
    api, election = FakeApi(), reconcile.Election(NS, "web", identity="ctl-0")
    pods = [candidate("web-aaa-1"), candidate("web-aaa-2")]
    run(api, election, pods)
    seen = observed.sight(None, hold(api, "web-aaa-1"), 1000.0).seen
    run(api, election, pods, seen)
    notes = api.objects[LEASE]["metadata"]["annotations"]
    assert notes == {"elector.dev/next-leader": "web-aaa-2"}
    new = candidate("web-bbb-1", created=T2, owner=("ReplicaSet", "web-bbb"))
    run(api, election, [*pods, new], seen)
    assert api.objects[LEASE]["metadata"]["annotations"]["elector.dev/hand-over-to"] == "web-bbb-1"


def test_the_leader_label_and_the_leader_slice_follow_the_valid_holder():
    api, election = FakeApi(), reconcile.Election(NS, "web", identity="ctl-0")
    options = {"elector.dev/leader-label": "true", "elector.dev/leader-service": "web-leader"}
    pods = [candidate("web-aaa-1", ip="10.0.0.1", **options), candidate("web-aaa-2", ip="10.0.0.2", **options)]
    for p in pods:
        api.objects[f"/api/v1/namespaces/shop/pods/{p['metadata']['name']}"] = p
    api.objects[SERVICE] = {"metadata": {"name": "web-leader", "namespace": NS, "uid": "svc"},
                            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    run(api, election, pods)
    seen = observed.sight(None, hold(api, "web-aaa-1"), 1000.0).seen
    again = run(api, election, pods, seen, now=1001.0)
    assert again == 1015.05  # look again when the claim would expire
    labels = api.objects["/api/v1/namespaces/shop/pods/web-aaa-1"]["metadata"]["labels"]
    assert labels["elector.dev/leader"] == "true"
    assert api.objects[SLICE]["endpoints"][0]["addresses"] == ["10.0.0.1"]
    # the claim ran out without a renewal seen: no label, an empty slice
    pods = [api.objects[f"/api/v1/namespaces/shop/pods/{n}"] for n in ("web-aaa-1", "web-aaa-2")]
    run(api, election, pods, seen, now=1016.0)
    assert "elector.dev/leader" not in api.objects["/api/v1/namespaces/shop/pods/web-aaa-1"]["metadata"]["labels"]
    assert api.objects[SLICE]["endpoints"] == []


def test_a_change_of_holder_is_one_event_and_the_last_pod_gone_removes_everything():
    api, election = FakeApi(), reconcile.Election(NS, "web", identity="ctl-0")
    pods = [candidate("web-aaa-1")]
    run(api, election, pods)
    sighting = observed.sight(observed.sight(None, api.objects[LEASE], 999.0).seen, hold(api, "web-aaa-1"), 1000.0)
    election.pending_events.append(sighting.event)
    run(api, election, pods, sighting.seen)
    (event,) = [o for path, o in api.objects.items() if "/events/" in path]
    assert event["note"] == "web-aaa-1 became leader (term 1): the Lease was free"
    assert event["regarding"]["name"] == "web" and event["reportingInstance"] == "ctl-0"
    run(api, election, [], sighting.seen)
    assert ROLE not in api.objects and BINDING not in api.objects and LEASE not in api.objects


def test_a_lease_made_by_0_1_electors_is_adopted_not_replaced():
    api, election = FakeApi(), reconcile.Election(NS, "web", identity="ctl-0")
    api.objects[LEASE] = {"metadata": {"name": "web", "namespace": NS, "uid": "old", "resourceVersion": "5",
                                       "ownerReferences": [{"kind": "Pod", "name": "web-aaa-1", "uid": "p1"}]},
                          "spec": {"holderIdentity": "web-aaa-1", "leaseDurationSeconds": 15}}
    api.objects[LEASE]["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "kube-elector"}  # as 0.1 wrote it
    # unlabelled for elections, it is not in the controller's Lease cache: the reconcile reads it
    run(api, election, [candidate("web-aaa-1")], lease_cached=False)
    lease = api.objects[LEASE]
    assert lease["metadata"]["uid"] == "old" and lease["spec"]["holderIdentity"] == "web-aaa-1"
    assert {r["kind"] for r in lease["metadata"]["ownerReferences"]} == {"Pod", "Role"}
    assert lease["metadata"]["labels"]["elector.dev/election"] == "web"


def test_another_components_lease_of_the_same_name_is_never_written_nor_deleted():
    api, election = FakeApi(), reconcile.Election(NS, "web", identity="ctl-0")
    foreign = {"metadata": {"name": "web", "namespace": NS, "uid": "theirs", "resourceVersion": "5"},
               "spec": {"holderIdentity": "some-operator_1234", "leaseDurationSeconds": 15}}
    api.objects[LEASE] = foreign
    pods = [candidate("web-aaa-1")]
    run(api, election, pods, lease_cached=False)
    run(api, election, [], observed.sight(None, foreign, 1.0).seen)
    assert api.objects[LEASE] == foreign
    assert not [c for c in api.writes() if c[1] == LEASE]
