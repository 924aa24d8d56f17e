"""controller.rbac: the per-election Role, RoleBinding and Lease, as plain dicts."""
from __future__ import annotations

from controller import rbac


def pod(name: str, uid: str, account: str | None = None) -> dict:
    spec = {"serviceAccountName": account} if account else {}
    return {"metadata": {"name": name, "uid": uid}, "spec": spec}


PODS = [pod("web-2", "u2", "web"), pod("web-1", "u1", "web"), pod("batch-1", "u3")]


def test_the_role_allows_the_one_lease_by_name_and_nothing_else():
    role = rbac.role("shop", "web", PODS)
    assert role["metadata"]["name"] == "kube-elector-lease-web" and role["metadata"]["namespace"] == "shop"
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "update", "watch"], "resourceNames": ["web"]}]
    # owned by every candidate pod, so the garbage collector removes it after the last one
    assert [(r["kind"], r["uid"]) for r in role["metadata"]["ownerReferences"]] == [
        ("Pod", "u3"), ("Pod", "u1"), ("Pod", "u2")]
    assert not any(r.get("controller") or r.get("blockOwnerDeletion") for r in role["metadata"]["ownerReferences"])


def test_the_binding_names_each_service_account_of_the_pods_once_and_is_owned_by_the_role():
    role = {**rbac.role("shop", "web", PODS), "metadata": {"name": "kube-elector-lease-web", "uid": "r1"}}
    binding = rbac.role_binding("shop", "web", rbac.service_accounts(PODS), role)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "kube-elector-lease-web"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "default", "namespace": "shop"},
                                   {"kind": "ServiceAccount", "name": "web", "namespace": "shop"}]
    assert binding["metadata"]["ownerReferences"] == [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "name": "kube-elector-lease-web", "uid": "r1"}]


def test_the_lease_is_created_free_labelled_and_owned_by_the_role():
    lease = rbac.lease("shop", "web", {"metadata": {"name": "kube-elector-lease-web", "uid": "r1"}})
    assert lease["spec"] == {} and lease["metadata"]["labels"]["elector.dev/election"] == "web"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "r1"


def test_differs_sees_new_subjects_owners_and_rules_but_not_server_fields():
    role = rbac.role("shop", "web", PODS)
    stored = {**role, "metadata": {**role["metadata"], "uid": "r1", "resourceVersion": "7",
                                   "managedFields": [{}]}}
    assert not rbac.differs(stored, role)
    assert rbac.differs(stored, rbac.role("shop", "web", PODS[:2]))  # a pod went: one owner less
    binding = rbac.role_binding("shop", "web", ["web"], stored)
    assert rbac.differs(binding, rbac.role_binding("shop", "web", ["web", "default"], stored))


def test_a_0_1_binding_goes_once_no_pod_injected_by_0_1_of_its_account_is_left():
    from controller import legacy

    def binding(ns, name, role, account):
        return {"metadata": {"namespace": ns, "name": name},
                "roleRef": {"kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}]}

    def injected(ns, account, version):
        return {"metadata": {"namespace": ns, "annotations": {"elector.dev/injected": version}},
                "spec": {"serviceAccountName": account}}

    bindings = [binding("a", "kube-elector-web", "kube-elector-election", "web"),
                binding("a", "kube-elector-web-rollout", "kube-elector-rollout", "web"),
                binding("a", "kube-elector-batch", "kube-elector-election", "batch"),
                binding("a", "kube-elector-lease-x", "kube-elector-lease-x", "web") | {"roleRef": {"kind": "Role"}},
                binding("b", "kube-elector-default", "kube-elector-election", "default")]
    pods = [injected("a", "web", "0.1.0"), injected("a", "batch", "0.2.0"), injected("b", "other", "0.1.0")]
    assert legacy.stale(bindings, pods) == [("a", "kube-elector-batch"), ("b", "kube-elector-default")]
