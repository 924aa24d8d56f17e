"""The webhook's shipped RBAC (manifests/rbac-webhook.yaml, read as a file): its TLS Secret and its caBundle,
nothing else. The webhook writes nothing for the pods it injects (issue 20); the controller holds those rights.

tests/security/test_least_privilege.py asks the real API server the same with the webhook's own token.
"""

from pathlib import Path

import yaml

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests"


def webhook_rules():
    """(kind, namespace, rule) of every rule bound to the ServiceAccount kube-elector-webhook."""
    docs = [o for o in yaml.safe_load_all((MANIFESTS / "rbac-webhook.yaml").read_text()) if o]
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
             for o in docs if o["kind"] in ("Role", "ClusterRole")}
    out = []
    for binding in (o for o in docs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if {"kind": "ServiceAccount", "name": "kube-elector-webhook", "namespace": "kube-elector"} not in binding["subjects"]:
            continue
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], namespace, ref["name"])]
        out += [(binding["kind"], namespace, rule) for rule in role["rules"]]
    return out


def test_the_webhook_account_keeps_its_tls_secret_and_its_ca_bundle_and_nothing_more():
    granted = sorted(
        (kind, namespace, ",".join(rule.get("apiGroups", [])), ",".join(rule["resources"]), ",".join(sorted(rule["verbs"])),
         ",".join(rule.get("resourceNames", [])))
        for kind, namespace, rule in webhook_rules()
    )
    assert granted == [
        ("ClusterRoleBinding", None, "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get,patch",
         "kube-elector"),
        ("RoleBinding", "kube-elector", "", "secrets", "create", ""),  # the first replica makes it
        ("RoleBinding", "kube-elector", "", "secrets", "get,update", "kube-elector-webhook-tls"),
    ], granted


def test_no_rule_of_the_webhook_touches_rbac_or_pods_or_leases():
    for _, _, rule in webhook_rules():
        assert "rbac.authorization.k8s.io" not in rule.get("apiGroups", []), rule
        assert not {"bind", "escalate", "impersonate", "*"} & set(rule["verbs"]), rule
        assert not {"pods", "leases", "endpointslices", "events", "*"} & set(rule["resources"]), rule
