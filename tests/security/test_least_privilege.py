"""What the shipped RBAC really grants, asked of the real API server with real ServiceAccount tokens.

The webhook's account: its TLS Secret and caBundle only (it writes nothing for the pods it injects).
The elections' per-Lease rights are the controller's to grant and are tested with it
(tests/unit/controller/); the 0.1 ClusterRoles kept for the upgrade (manifests/rbac-legacy.yaml) and the
read-only status view are checked here.
"""

from __future__ import annotations

import ssl

import httpx
import pytest

from localplane.kube_elector import webhook as webhook_install

RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def installed(control_plane):
    webhook_install.apply_manifests(control_plane)
    yield
    with control_plane.client() as api:
        api.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}")


def as_account(plane, namespace, account) -> httpx.Client:
    token = plane.token(namespace, account)
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
    """A new ServiceAccount bound (a RoleBinding in `namespace`) to the ClusterRole `role`; a client with its token."""
    api.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", json={"metadata": {"name": account}}).raise_for_status()
    binding = {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": f"{account}-{role}"},
               "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
               "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]}
    api.post(f"/apis/{RBAC}/v1/namespaces/{namespace}/rolebindings", json=binding).raise_for_status()
    return as_account(plane, namespace, account)


#: Every ClusterRole a 0.1 webhook could bind, and the roles of a cluster.
ROLES = ("kube-elector-election", "kube-elector-rollout", "kube-elector-leader-label", "kube-elector-leader-service",
         "kube-elector-status", "kube-elector-controller", "cluster-admin", "admin", "edit", "view")


def test_webhook_account_keeps_its_tls_and_writes_nothing_else(installed, control_plane, namespace):
    """From the webhook ServiceAccount's real token: no RBAC writes, no bind, no pods, no Leases anywhere;
    get/patch its own MutatingWebhookConfiguration, create/get/update its own TLS Secret."""
    own = webhook_install.NAMESPACE
    with as_account(control_plane, own, webhook_install.SERVICE_ACCOUNT) as hook:
        print("webhook rules in a user namespace:", rules(hook, namespace))
        print("webhook rules in its own namespace:", rules(hook, own))
        # What its self-managed TLS needs.
        assert can(hook, "get", "mutatingwebhookconfigurations", "", group="admissionregistration.k8s.io",
                   name=webhook_install.CONFIGURATION)
        assert can(hook, "patch", "mutatingwebhookconfigurations", "", group="admissionregistration.k8s.io",
                   name=webhook_install.CONFIGURATION)
        assert can(hook, "get", "secrets", own, name="kube-elector-webhook-tls")
        assert can(hook, "update", "secrets", own, name="kube-elector-webhook-tls")
        assert can(hook, "create", "secrets", own)  # the first replica makes it (create has no name)
        # Not another webhook configuration, nor any other Secret.
        for verb in ("get", "patch", "update", "delete"):
            assert not can(hook, verb, "mutatingwebhookconfigurations", "", group="admissionregistration.k8s.io",
                           name="someone-else"), verb
        assert not can(hook, "create", "mutatingwebhookconfigurations", "", group="admissionregistration.k8s.io")
        assert not can(hook, "list", "mutatingwebhookconfigurations", "", group="admissionregistration.k8s.io")
        assert not can(hook, "patch", "validatingwebhookconfigurations", "", group="admissionregistration.k8s.io")
        assert not can(hook, "delete", "secrets", own, name="kube-elector-webhook-tls")
        assert not can(hook, "get", "secrets", own, name="something-else")
        assert not can(hook, "list", "secrets", own)

        everywhere = (namespace, own, "kube-system", "default", "")  # "": cluster-wide
        for where in everywhere:
            # RBAC: no writes, no bind, no escalate, anywhere.
            for resource in ("rolebindings", "roles", "clusterrolebindings", "clusterroles"):
                for verb in ("create", "update", "patch", "delete"):
                    assert not can(hook, verb, resource, where, group=RBAC), (verb, resource, where)
            for resource in ("roles", "clusterroles"):
                assert not can(hook, "bind", resource, where, group=RBAC), (resource, where)
                assert not can(hook, "escalate", resource, where, group=RBAC), (resource, where)
            for role in ROLES:
                assert not can(hook, "bind", "clusterroles", where, group=RBAC, name=role), (role, where)
            # Nothing the elections use.
            for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
                assert not can(hook, verb, "leases", where, group="coordination.k8s.io"), (verb, where)
                assert not can(hook, verb, "endpointslices", where, group="discovery.k8s.io"), (verb, where)
            for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
                assert not can(hook, verb, "pods", where), (verb, where)
            assert not can(hook, "create", "events", where, group="events.k8s.io"), where
            assert not can(hook, "create", "serviceaccounts/token", where), where
            assert not can(hook, "impersonate", "serviceaccounts", where), where
            if where != own:
                assert not can(hook, "get", "secrets", where), where
                assert not can(hook, "create", "secrets", where), where

        # And a real attempt, as a stolen token would make it: refused.
        for role in ("kube-elector-election", "kube-elector-rollout", "kube-elector-leader-label", "cluster-admin"):
            body = {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": f"try-{role}"},
                    "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
                    "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}]}
            r = hook.post(f"/apis/{RBAC}/v1/namespaces/{namespace}/rolebindings", json=body)
            assert r.status_code == 403, (role, r.status_code, r.text[:300])
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "steal"}}
        assert hook.post(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", json=lease).status_code == 403


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


# The 0.1 ClusterRoles, kept in 0.2 for pods injected by 0.1 (manifests/rbac-legacy.yaml): still no more than before.
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
