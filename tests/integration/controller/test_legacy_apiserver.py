"""controller.legacy against the real API server: 0.1's RoleBindings, as its webhook made them, are swept."""
from __future__ import annotations

from controller import kube, legacy


def test_the_sweep_deletes_0_1_bindings_of_accounts_without_0_1_pods_and_nothing_else(control_plane, api, namespace,
                                                                                      tmp_path):
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"
    for suffix, role in (("", "kube-elector-election"), ("-rollout", "kube-elector-rollout"),
                         ("-leader-label", "kube-elector-leader-label")):
        for account in ("web", "batch"):
            api.post(rbac, json={
                "metadata": {"name": f"kube-elector-{account}{suffix}",
                             "labels": {"app.kubernetes.io/managed-by": "kube-elector"}},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]}
            ).raise_for_status()
    api.post(rbac, json={"metadata": {"name": "someone-elses", "labels": {"app.kubernetes.io/managed-by": "kube-elector"}},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                         "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": namespace}]}
             ).raise_for_status()
    still_0_1 = {"metadata": {"namespace": namespace, "annotations": {"elector.dev/injected": "0.1.0"}},
                 "spec": {"serviceAccountName": "batch"}}
    client = kube.Api(kube.connect(control_plane.write_kubeconfig(tmp_path / "admin.kubeconfig")))
    assert legacy.sweep(client, [still_0_1]) == 3
    left = sorted(b["metadata"]["name"] for b in api.get(rbac).json()["items"])
    assert left == ["kube-elector-batch", "kube-elector-batch-leader-label", "kube-elector-batch-rollout",
                    "someone-elses"]
