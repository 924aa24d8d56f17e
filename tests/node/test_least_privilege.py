"""Least privilege on the real node: what the token an app container really holds may do, asked of the
API server (SelfSubjectAccessReview), after the controller made its election's RBAC (docs/security.md)."""
from __future__ import annotations

import pytest

from demo import observe
from tests.node import apps, rights

LEASES = "coordination.k8s.io"


def _elected_pod(node_cluster, node_api, namespace: str, name: str, *, account: str = "default",
                 election: str | None = None) -> str:
    """An opted-in bare pod whose app container keeps the automounted token; returns its leader's name."""
    if account != "default":
        node_api.post(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                      json={"metadata": {"name": account}}).raise_for_status()
    notes = {"elector.dev/election": election} if election else {}
    pod = apps.bare_pod(name, command=apps.SLEEP, annotations=notes, serviceAccountName=account)
    node_api.post(f"/api/v1/namespaces/{namespace}/pods", json=pod).raise_for_status()
    apps.wait_pod_ready(node_api, namespace, name)
    return apps.wait_agreed_leader(node_api, namespace, count=1, selector=f"app={name}")


def test_the_app_containers_token_may_touch_its_own_lease_and_nothing_else(node_cluster, node_api, node_namespace):
    assert _elected_pod(node_cluster, node_api, node_namespace, "solo") == "solo"
    token = rights.container_token(node_cluster, node_namespace, "solo", "app")
    other_ns = "kube-elector"
    with rights.as_token(node_cluster, token) as app:
        assert rights.whoami(app)["username"] == f"system:serviceaccount:{node_namespace}:default"
        granted, denied = [], []
        matrix = [
            # (verb, resource, group, namespace, name, expected)
            ("get", "leases", LEASES, node_namespace, "solo", True),
            ("update", "leases", LEASES, node_namespace, "solo", True),
            ("watch", "leases", LEASES, node_namespace, "solo", True),
            ("create", "leases", LEASES, node_namespace, "", False),
            ("list", "leases", LEASES, node_namespace, "", False),
            ("delete", "leases", LEASES, node_namespace, "solo", False),
            ("patch", "leases", LEASES, node_namespace, "solo", False),
            ("get", "leases", LEASES, node_namespace, "another", False),
            ("update", "leases", LEASES, node_namespace, "another", False),
            ("get", "leases", LEASES, other_ns, "solo", False),
            ("update", "leases", LEASES, other_ns, "kube-elector-controller", False),
            *[(verb, "pods", "", ns, "", False) for verb in ("get", "list", "watch", "patch")
              for ns in (node_namespace, other_ns)],
            *[(verb, "secrets", "", ns, "", False) for verb in ("get", "list") for ns in (node_namespace, other_ns)],
            *[(verb, "endpointslices", "discovery.k8s.io", node_namespace, "", False)
              for verb in ("get", "create", "update")],
            ("create", "events", "events.k8s.io", node_namespace, "", False),
            ("create", "events", "", node_namespace, "", False),
            ("create", "rolebindings", "rbac.authorization.k8s.io", node_namespace, "", False),
            ("get", "services", "", node_namespace, "", False),
        ]
        for verb, resource, group, ns, name, expected in matrix:
            allowed = rights.can(app, verb, resource, ns, group=group, name=name)
            (granted if allowed else denied).append(f"{verb} {group}/{resource} {ns}/{name or '*'}")
            assert allowed == expected, (verb, resource, ns, name)
        print("\nRBAC matrix from the app container's token:\n  allowed: " + "\n           ".join(granted)
              + f"\n  denied:  {len(denied)} checks ({', '.join(sorted({d.split()[1] for d in denied}))})")
        # and the API server itself agrees, not only the review: a real read of a Secret and a Lease create
        assert app.get(f"/api/v1/namespaces/{node_namespace}/secrets").status_code == 403
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "squat"}}
        assert app.post(f"/apis/coordination.k8s.io/v1/namespaces/{node_namespace}/leases",
                        json=lease).status_code == 403


def test_two_service_accounts_in_one_namespace_cannot_touch_each_others_lease(node_cluster, node_api,
                                                                              node_namespace):
    _elected_pod(node_cluster, node_api, node_namespace, "alpha", account="alpha-sa")
    _elected_pod(node_cluster, node_api, node_namespace, "beta", account="beta-sa")
    path = f"/apis/coordination.k8s.io/v1/namespaces/{node_namespace}/leases"
    for me, other in (("alpha", "beta"), ("beta", "alpha")):
        token = rights.container_token(node_cluster, node_namespace, me, "app")
        with rights.as_token(node_cluster, token) as app:
            assert app.get(f"{path}/{me}").status_code == 200
            theirs = app.get(f"{path}/{other}")
            assert theirs.status_code == 403, theirs.text
            stolen = node_api.get(f"{path}/{other}").json()
            stolen["spec"]["holderIdentity"] = me
            assert app.put(f"{path}/{other}", json=stolen).status_code == 403
    assert node_api.get(f"{path}/alpha").json()["spec"]["holderIdentity"] == "alpha"
    assert node_api.get(f"{path}/beta").json()["spec"]["holderIdentity"] == "beta"


@pytest.mark.parametrize("container", ["elector"])
def test_the_elector_token_is_the_same_account_with_the_same_rights(node_cluster, node_api, node_namespace,
                                                                      container):
    """The elector's projected token (its own volume) is the pod's ServiceAccount: nothing more."""
    _elected_pod(node_cluster, node_api, node_namespace, "pair")
    pod = apps.get_pod(node_api, node_namespace, "pair")
    assert any(c["name"] == container for c in pod["spec"]["initContainers"])
    events = observe.list_pods(node_api, node_namespace, "app=pair")
    assert events  # the pod is there
    binding = node_api.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{node_namespace}/rolebindings/"
                           "kube-elector-lease-pair").json()
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "default", "namespace": node_namespace}]
    role = node_api.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{node_namespace}/roles/"
                        "kube-elector-lease-pair").json()
    assert [r["uid"] for r in role["metadata"]["ownerReferences"]] == [pod["metadata"]["uid"]]
    # no other RoleBinding anywhere names this account
    everywhere = node_api.get("/apis/rbac.authorization.k8s.io/v1/rolebindings").json()["items"]
    naming = [b["metadata"]["name"] for b in everywhere
              if any(s.get("name") == "default" and s.get("namespace") == node_namespace
                     for s in b.get("subjects") or [])]
    assert naming == ["kube-elector-lease-pair"]
