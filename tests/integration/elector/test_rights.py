"""What an opted-in app's ServiceAccount may do once the kube-elector controller made its election's RBAC,
asked of the real API server with that account's own token (TokenRequest, as the kubelet mounts it):
SelfSubjectAccessReview for a matrix of verbs x resources in its namespace and others, and real requests.
It may get, update and watch its own election's Lease, by name, and nothing else; two ServiceAccounts
with different elections in one namespace cannot touch each other's Lease (docs/security.md)."""
from __future__ import annotations

import contextlib
import ssl
import uuid
from typing import Any, Iterator

import httpx
import pytest

from localplane.kube_elector.electors import wait_for
from localplane.kube_elector.election_objects import get_binding, get_lease, make_pods

pytestmark = pytest.mark.controlplane
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


@contextlib.contextmanager
def as_token(control_plane: Any, token: str) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cadata=control_plane.ca_pem.decode())
    with httpx.Client(base_url=control_plane.server, verify=context, trust_env=False, timeout=10,
                      headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}) as client:
        yield client


def can(client: httpx.Client, verb: str, resource: str, namespace: str, *, group: str = "", name: str = "",
        subresource: str = "") -> bool:
    attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace}
    if name:
        attrs["name"] = name
    if subresource:
        attrs["subresource"] = subresource
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attrs}}
    reply = client.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review)
    assert reply.status_code == 201, reply.text
    return bool(reply.json()["status"]["allowed"])


def whoami(client: httpx.Client) -> str:
    reply = client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert reply.status_code == 201, reply.text
    return reply.json()["status"]["userInfo"]["username"]


@pytest.fixture
def other_namespace(api: Any) -> Iterator[str]:
    """A second namespace with an election of the same name, made by the controller for its own `app`."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    assert api.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
    yield name
    api.delete(f"/api/v1/namespaces/{name}")


def made_for(api: Any, namespace: str, election: str, account: str) -> bool:
    binding = get_binding(api, namespace, election)
    return (binding is not None and get_lease(api, namespace, election) is not None
            and binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": namespace}])


def test_the_app_account_may_get_update_and_watch_its_own_lease_by_name_and_nothing_else(
        controller: Any, pods: Any, api: Any, namespace: str, other_namespace: str, control_plane: Any) -> None:
    pods("app-0", "app-1")  # election `app`, ServiceAccount `app`
    make_pods(api, other_namespace, ["app-0"])  # the same names in another namespace
    for ns in (namespace, other_namespace):
        assert wait_for(lambda: made_for(api, ns, "app", "app"), 10), controller.logs()[-3000:]
    leases = "coordination.k8s.io"
    with as_token(control_plane, control_plane.token(namespace, "app", seconds=600)) as app:
        assert whoami(app) == f"system:serviceaccount:{namespace}:app"
        assert wait_for(lambda: can(app, "get", "leases", namespace, group=leases, name="app"), 5)  # RBAC cache
        allowed = [("get", "leases", leases, "app"), ("update", "leases", leases, "app"),
                   ("watch", "leases", leases, "app")]
        denied = [
            ("create", "leases", leases, ""), ("list", "leases", leases, ""), ("watch", "leases", leases, ""),
            ("delete", "leases", leases, "app"), ("patch", "leases", leases, "app"),
            ("deletecollection", "leases", leases, ""),
            ("get", "leases", leases, "other"), ("update", "leases", leases, "other"),
            ("watch", "leases", leases, "other"),
            ("get", "pods", "", "app-0"), ("list", "pods", "", ""), ("watch", "pods", "", ""),
            ("patch", "pods", "", "app-0"), ("create", "pods", "", ""),
            ("get", "secrets", "", ""), ("list", "secrets", "", ""),
            ("create", "endpointslices", "discovery.k8s.io", ""), ("update", "endpointslices", "discovery.k8s.io", ""),
            ("create", "events", "events.k8s.io", ""), ("patch", "events", "events.k8s.io", ""),
            ("create", "events", "", ""),
            ("update", "roles", "rbac.authorization.k8s.io", "kube-elector-lease-app"),
            ("create", "rolebindings", "rbac.authorization.k8s.io", ""),
            ("list", "serviceaccounts", "", ""),
        ]
        table = {}
        for verb, resource, group, name in allowed + denied:
            table[(verb, resource, group, name, "own")] = can(app, verb, resource, namespace, group=group, name=name)
        for verb, resource, group, name in allowed + denied:  # in another namespace: nothing at all
            table[(verb, resource, group, name, "other")] = can(app, verb, resource, other_namespace, group=group,
                                                                name=name)
        for row in [("get", "leases", leases, "kube-elector-controller", "kube-elector"),
                    ("list", "pods", "", "", "kube-system"), ("create", "events", "events.k8s.io", "", "default")]:
            table[row] = can(app, row[0], row[1], row[4], group=row[2], name=row[3])
        want = {key: key[:4] in allowed and key[4] == "own" for key in table}
        print("\nSelfSubjectAccessReview, token of ServiceAccount app (election app):")
        for key, value in table.items():
            print(f"  {'ALLOW' if value else 'deny ':5}  {key[0]:<16} {(key[2] + '/' if key[2] else '') + key[1]:<38}"
                  f" {key[3] or '*':<26} {key[4]}")
        assert table == want

        # the same, as real requests
        own = f"{LEASES.format(ns=namespace)}/app"
        lease = app.get(own)
        assert lease.status_code == 200, lease.text
        assert app.put(own, json=lease.json()).status_code == 200  # update: the electors' write
        with app.stream("GET", LEASES.format(ns=namespace),
                        params={"watch": "true", "fieldSelector": "metadata.name=app", "timeoutSeconds": "1"}) as w:
            assert w.status_code == 200
        forbidden = [
            app.get(LEASES.format(ns=namespace)),  # list
            app.post(LEASES.format(ns=namespace), json={"metadata": {"name": "mine"}, "spec": {}}),
            app.patch(own, content=b'{"metadata":{"labels":{"x":"y"}}}',
                      headers={"Content-Type": "application/merge-patch+json"}),
            app.delete(own),
            app.get(f"{LEASES.format(ns=other_namespace)}/app"),
            app.get(f"/api/v1/namespaces/{namespace}/pods"),
            app.get(f"/api/v1/namespaces/{namespace}/secrets"),
            app.post(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", json={"metadata": {"name": "x"}}),
            app.post(f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
                     json={"metadata": {"name": "x"}, "addressType": "IPv4", "endpoints": []}),
        ]
        assert [reply.status_code for reply in forbidden] == [403] * len(forbidden), \
            [(r.request.method, r.request.url.path, r.status_code) for r in forbidden]
    assert get_lease(api, namespace, "app") is not None


def test_two_service_accounts_of_one_namespace_cannot_touch_each_others_lease(
        controller: Any, pods: Any, api: Any, namespace: str, control_plane: Any) -> None:
    pods("web-0", election="web", service_account="web")
    pods("batch-0", election="batch", service_account="batch")
    for election in ("web", "batch"):
        assert wait_for(lambda: made_for(api, namespace, election, election), 10), controller.logs()[-3000:]
    group = "coordination.k8s.io"
    with as_token(control_plane, control_plane.token(namespace, "web", seconds=600)) as web, \
            as_token(control_plane, control_plane.token(namespace, "batch", seconds=600)) as batch:
        for me, mine, theirs in ((web, "web", "batch"), (batch, "batch", "web")):
            assert wait_for(lambda: can(me, "update", "leases", namespace, group=group, name=mine), 5)
            for verb in ("get", "update", "watch", "patch", "delete"):
                assert not can(me, verb, "leases", namespace, group=group, name=theirs), (mine, verb, theirs)
            path = f"{LEASES.format(ns=namespace)}/{theirs}"
            assert me.get(path).status_code == 403
            stolen = get_lease(api, namespace, theirs)  # as read by someone who may
            stolen["spec"] = {"holderIdentity": f"{mine}-0", "leaseDurationSeconds": 3600}
            assert me.put(path, json=stolen).status_code == 403
            own = me.get(f"{LEASES.format(ns=namespace)}/{mine}")
            assert own.status_code == 200 and me.put(own.request.url.path, json=own.json()).status_code == 200
    for election in ("web", "batch"):
        assert get_lease(api, namespace, election)["spec"].get("holderIdentity") in (None, "")  # nobody took one
