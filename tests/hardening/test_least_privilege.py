"""What the shipped RBAC really grants, asked of the real API server with real ServiceAccount tokens."""

from __future__ import annotations

import httpx
import pytest

from localplane import webhook_install
from webhook import handler, kube


@pytest.fixture(scope="module")
def installed(control_plane):
    webhook_install.apply_manifests(control_plane)
    yield
    with control_plane.client() as api:
        api.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}")


def as_account(plane, namespace, account) -> httpx.Client:
    token = plane.token(namespace, account)
    import ssl
    ctx = ssl.create_default_context(cadata=plane.ca_pem.decode())
    return httpx.Client(base_url=plane.server, verify=ctx, trust_env=False,
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})


def can(client: httpx.Client, verb, resource, namespace, *, group="", name=None) -> bool:
    attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace}
    if name:
        attrs["name"] = name
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attrs}}
    r = client.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review).raise_for_status()
    return bool(r.json()["status"]["allowed"])


def rules(client: httpx.Client, namespace: str) -> list[str]:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": namespace}}
    status = client.post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", json=review).raise_for_status().json()["status"]
    return sorted(f"{','.join(r.get('apiGroups') or [''])}/{','.join(r['resources'] or [])}"
                  f"{'/' + ','.join(r['resourceNames']) if r.get('resourceNames') else ''}: {','.join(sorted(r['verbs']))}"
                  for r in status["resourceRules"] if r.get("resources"))


def bound_account(plane, api, namespace, account, role) -> httpx.Client:
    """A new ServiceAccount bound (RoleBinding, as the webhook makes it) to `role`; a client with its token."""
    api.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", json={"metadata": {"name": account}}).raise_for_status()
    binding = kube.role_binding(handler.Binding(namespace, account), role)
    api.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", json=binding).raise_for_status()
    return as_account(plane, namespace, account)


def test_elector_account_can_run_its_election_and_nothing_more(installed, control_plane, api, namespace):
    with bound_account(control_plane, api, namespace, "app", "kube-elector-election") as elector:
        granted = rules(elector, namespace)
        print("elector rules:", granted)
        assert "coordination.k8s.io/leases: create,get,list,update,watch" in granted
        assert "events.k8s.io/events: create,patch" in granted
        for verb in ("get", "list", "watch", "create", "update"):
            assert can(elector, verb, "leases", namespace, group="coordination.k8s.io")
        assert not can(elector, "delete", "leases", namespace, group="coordination.k8s.io")
        assert not can(elector, "patch", "leases", namespace, group="coordination.k8s.io")
        # Events on its Lease: create one per change of leader, patch the count of a repeat; nothing else
        assert can(elector, "create", "events", namespace, group="events.k8s.io")
        assert can(elector, "patch", "events", namespace, group="events.k8s.io")
        for verb in ("get", "list", "delete", "update"):
            assert not can(elector, verb, "events", namespace, group="events.k8s.io")
        assert not can(elector, "create", "events", namespace)  # the core API's events: not used
        assert not can(elector, "get", "secrets", namespace)
        assert not can(elector, "get", "pods", namespace)  # its own Pod (the Lease's owner): downward API
        assert not can(elector, "list", "pods", namespace)
        assert not can(elector, "patch", "pods", namespace)
        other = "kube-elector"  # any other namespace
        assert not can(elector, "get", "leases", other, group="coordination.k8s.io")
        assert not can(elector, "create", "events", other, group="events.k8s.io")
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "steal"}}
        assert elector.post(f"/apis/coordination.k8s.io/v1/namespaces/{other}/leases", json=lease).status_code == 403
        assert elector.get(f"/api/v1/namespaces/{namespace}/secrets").status_code == 403


def test_webhook_account_may_bind_only_our_role(installed, control_plane, namespace):
    with as_account(control_plane, "kube-elector", "kube-elector-webhook") as hook:
        print("webhook rules in a user namespace:", rules(hook, namespace))
        assert can(hook, "create", "rolebindings", namespace, group="rbac.authorization.k8s.io")
        assert can(hook, "bind", "clusterroles", "", group="rbac.authorization.k8s.io", name="kube-elector-election")
        assert not can(hook, "bind", "clusterroles", "", group="rbac.authorization.k8s.io", name="cluster-admin")
        assert not can(hook, "escalate", "clusterroles", "", group="rbac.authorization.k8s.io")
        assert not can(hook, "get", "secrets", namespace)
        assert can(hook, "get", "secrets", "kube-elector", name="kube-elector-webhook-tls")
        assert not can(hook, "get", "secrets", "kube-elector", name="something-else")
        assert not can(hook, "update", "leases", namespace, group="coordination.k8s.io")
        assert not can(hook, "list", "pods", namespace)

        def bind(role):
            body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": f"try-{role}"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}]}
            return hook.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", json=body)

        assert bind("cluster-admin").status_code == 403
        assert bind("kube-elector-status").status_code == 403  # read-only view: for people, not pods
        # The election, rollout awareness (bound unless a pod opts out), and the two routing features
        # a pod may ask for by annotation.
        for role in ("kube-elector-election", "kube-elector-rollout", "kube-elector-leader-label",
                     "kube-elector-leader-service"):
            assert bind(role).status_code == 201, role


def test_the_status_view_role_only_reads(installed, control_plane, api, namespace):
    with bound_account(control_plane, api, namespace, "oncall", "kube-elector-status") as viewer:
        granted = rules(viewer, namespace)
        print("status view rules:", granted)
        assert "coordination.k8s.io/leases: get,list,watch" in granted
        assert "/pods: get,list,watch" in granted and "/events: list" in granted
        for verb in ("create", "update", "patch", "delete"):
            assert not can(viewer, verb, "leases", namespace, group="coordination.k8s.io")
            assert not can(viewer, verb, "pods", namespace)
        assert not can(viewer, "create", "events", namespace, group="events.k8s.io")
        assert not can(viewer, "get", "secrets", namespace)
        assert not can(viewer, "list", "leases", "kube-elector", group="coordination.k8s.io")


def test_the_leader_service_role_keeps_endpoint_slices_and_nothing_more(installed, control_plane, api, namespace):
    with bound_account(control_plane, api, namespace, "router", "kube-elector-leader-service") as router:
        print("leader-service rules:", rules(router, namespace))
        assert can(router, "get", "services", namespace)
        for verb in ("get", "create", "update"):
            assert can(router, verb, "endpointslices", namespace, group="discovery.k8s.io")
        for verb in ("delete", "list", "watch", "patch"):
            assert not can(router, verb, "endpointslices", namespace, group="discovery.k8s.io")
        assert not can(router, "update", "services", namespace)
        assert not can(router, "list", "services", namespace)
        assert not can(router, "get", "pods", namespace)
        assert not can(router, "create", "endpointslices", "kube-elector", group="discovery.k8s.io")


def test_the_rollout_role_lists_and_watches_pods_and_nothing_more(installed, control_plane, api, namespace):
    with bound_account(control_plane, api, namespace, "roller", "kube-elector-rollout") as roller:
        granted = rules(roller, namespace)
        print("rollout rules:", granted)
        own = [r for r in granted if not r.startswith(("authentication.k8s.io/", "authorization.k8s.io/"))]
        assert own == ["/pods: list,watch"]  # beside what every user has (asking about itself)
        assert can(roller, "list", "pods", namespace) and can(roller, "watch", "pods", namespace)
        for verb in ("get", "create", "update", "patch", "delete"):
            assert not can(roller, verb, "pods", namespace)
        assert not can(roller, "get", "pods", namespace, name="any-pod")
        assert not can(roller, "list", "pods", "kube-elector")  # its own namespace only
        assert not can(roller, "get", "secrets", namespace)
        assert not can(roller, "update", "leases", namespace, group="coordination.k8s.io")
