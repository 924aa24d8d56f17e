"""charts/kube-elector without a cluster: lint, no drift from manifests/, values checked by the schema."""

from __future__ import annotations

import pytest

from tests.helm import charts
from webhook import settings


def test_helm_lint_is_clean(helm):
    done = helm.run("lint", "--strict", str(charts.CHART))
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


def test_with_defaults_the_chart_renders_the_objects_of_manifests(helm):
    shipped = [o for o in charts.kustomize(charts.MANIFESTS) if o["kind"] != "Namespace"]
    differences = charts.differences(charts.documents(helm.template()), shipped)
    assert differences == [], (
        "charts/kube-elector and manifests/ differ; change both alike:\n  " + "\n  ".join(differences))


def test_cert_manager_and_prometheus_rule_render_the_components(helm, tmp_path):
    overlay = charts.overlay(tmp_path / "overlay", ["cert-manager", "prometheus-rule"])
    shipped = [o for o in charts.kustomize(overlay) if o["kind"] != "Namespace"]
    rendered = helm.template({"certManager.enabled": True, "prometheusRule.enabled": True})
    differences = charts.differences(charts.documents(rendered), shipped)
    assert differences == [], (
        "charts/kube-elector and manifests/components differ; change both alike:\n  " + "\n  ".join(differences))


def test_values_reach_the_objects(helm):
    rendered = charts.documents(helm.template({
        "webhook.image": {"repository": "registry.example/webhook", "tag": "1.2.3", "pullPolicy": "Always"},
        "elector.image.tag": "1.2.3",
        "webhook.replicas": 3, "webhook.failurePolicy": "Ignore", "webhook.timeoutSeconds": 10,
        "webhook.priorityClassName": "", "webhook.excludedNamespaces": ["kube-system", "monitoring"],
        "webhook.objectSelector.matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]}],
        "elector.leaseDuration": "20s", "elector.nativeSidecar": False,
        "certManager": {"enabled": True, "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}},
        "controller.replicas": 3, "controller.priorityClassName": "",
        "controller.resources": {"requests": {"cpu": "50m", "memory": "80Mi"}, "limits": {"memory": "256Mi"}},
        "podDisruptionBudget.enabled": False, "commonLabels": {"team": "platform"},
    }, namespace="elector-system"))
    objects = {(o["kind"], o["metadata"]["name"]): o for o in rendered}
    kinds = {kind for kind, _ in objects}
    assert "PodDisruptionBudget" not in kinds and "Issuer" not in kinds
    issuer = objects["Certificate", "kube-elector-webhook"]["spec"]["issuerRef"]
    assert issuer == {"name": "corp-ca", "kind": "ClusterIssuer"}
    assert all(o["metadata"]["labels"]["team"] == "platform" for o in rendered)
    deployment = objects["Deployment", "kube-elector-webhook"]["spec"]
    (container,) = deployment["template"]["spec"]["containers"]
    assert deployment["replicas"] == 3 and "priorityClassName" not in deployment["template"]["spec"]
    assert (container["image"], container["imagePullPolicy"]) == ("registry.example/webhook:1.2.3", "Always")
    assert {"name": "KUBE_ELECTOR_IMAGE", "value": "ghcr.io/kube-elector/elector:1.2.3"} in container["env"]
    # With cert-manager's certificate the webhook calls no API: no token, no RBAC of its own.
    assert deployment["template"]["spec"]["automountServiceAccountToken"] is False
    assert not [name for kind, name in objects if name == "kube-elector-webhook" and "Role" in kind]
    # The controller runs the webhook's image, with its own replicas and resources.
    controller = objects["Deployment", "kube-elector-controller"]["spec"]
    (container,) = controller["template"]["spec"]["containers"]
    assert controller["replicas"] == 3 and "priorityClassName" not in controller["template"]["spec"]
    assert (container["image"], container["imagePullPolicy"]) == ("registry.example/webhook:1.2.3", "Always")
    assert container["resources"] == {"requests": {"cpu": "50m", "memory": "80Mi"}, "limits": {"memory": "256Mi"}}
    assert objects["ClusterRoleBinding", "kube-elector-controller"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "kube-elector-controller", "namespace": "elector-system"}]
    # The policies name the controller's account in the release namespace.
    for name in ("kube-elector-controller-rbac", "kube-elector-controller-pods"):
        (condition,) = objects["ValidatingAdmissionPolicy", name]["spec"]["matchConditions"]
        assert condition["expression"] == (
            "request.userInfo.username == 'system:serviceaccount:elector-system:kube-elector-controller'")
        assert objects["ValidatingAdmissionPolicyBinding", name]["spec"]["policyName"] == name
    settings = charts.normalized(objects["ConfigMap", "kube-elector-webhook"])["data"]["config.yaml"]
    assert settings["election"]["lease_duration"] == "20s" and settings["native_sidecar"] is False
    assert settings["excluded_namespaces"] == ["kube-system", "monitoring", "elector-system"]
    for hook in objects["MutatingWebhookConfiguration", "kube-elector"]["webhooks"]:
        assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 10)
        assert hook["clientConfig"]["service"]["namespace"] == "elector-system"
        excluded = {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                    "values": ["kube-system", "monitoring", "elector-system"]}
        assert excluded in hook["namespaceSelector"]["matchExpressions"]
        assert hook["objectSelector"]["matchExpressions"][-1]["key"] == "tier"


def test_a_changed_setting_rolls_the_webhook_pods(helm):
    def checksum(values):
        deployment = next(o for o in charts.documents(helm.template(values))
                          if (o["kind"], o["metadata"]["name"]) == ("Deployment", "kube-elector-webhook"))
        return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum({}) == checksum({"webhook.replicas": 3})
    assert checksum({}) != checksum({"elector.retryPeriod": "3s"})


@pytest.mark.parametrize(("value", "named"), [
    ("webhook.replicas=two", "'/webhook/replicas': got string, want integer"),
    ("webhook.failurePolicy=Never", "'/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'"),
    ("webhook.timeoutSeconds=60", "'/webhook/timeoutSeconds': maximum"),
    ("webhook.replica=3", "'/webhook': additional properties 'replica' not allowed"),
    ("elector.image.pullPolicy=Sometimes", "'/elector/image/pullPolicy'"),
    ("elector.leaseDuration=15", "'/elector/leaseDuration': got number, want string"),
    ("elector.port=80", "'/elector/port': minimum"),
    ("elector.resources.limits.cpu=1", "'/elector/resources/limits': additional properties 'cpu'"),
    ("elector.probePort=4040", "elector.port and elector.probePort must differ"),
    ("controller.replicas=0", "'/controller/replicas': minimum"),
    ("controller.image.tag=1.2.3", "'/controller': additional properties 'image' not allowed"),
    ("elector.manageRoleBindings=no", "'/elector/manageRoleBindings': got string, want boolean"),
])
def test_a_wrong_value_fails_and_names_it(helm, value, named):
    done = helm.run("template", charts.RELEASE, str(charts.CHART), "--set", value, check=False)
    assert done.returncode != 0
    assert named in done.stderr, done.stderr


def test_a_setting_removed_in_0_2_is_accepted_ignored_and_named(helm):
    """Values kept from 0.1 (elector.manageRoleBindings) must not fail an upgrade: the chart renders as
    without them and its notes say to remove them."""
    def install(*sets):
        return helm.run("install", charts.RELEASE, str(charts.CHART), "--namespace", charts.NAMESPACE,
                        "--dry-run=client", *sets).stdout

    kept = install("--set", "elector.manageRoleBindings=false")
    assert "WARNING: elector.manageRoleBindings is ignored since 0.2" in kept
    assert "manageRoleBindings" not in install()
    assert helm.template({"elector.manageRoleBindings": True}) == helm.template()


def _security_table(heading: str) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of each row of the table under `heading` in docs/security.md."""
    text = (charts.ROOT / "docs" / "security.md").read_text()
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    groups = {"rbac": "rbac.authorization.k8s.io"}
    granted = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("resource", "---"):
            continue
        first, _, rest = cells[0].partition(" ")
        group, resources = (groups.get(first, first), rest) if "." in first or first in groups else ("", cells[0])
        granted |= {(group, resource, verb) for resource in resources.split(", ") for verb in cells[1].split(", ")}
    return granted


def test_the_controller_holds_exactly_the_rights_docs_security_md_lists(helm):
    objects = {(o["kind"], o["metadata"]["name"]): o for o in charts.documents(helm.template())}
    rules = objects["ClusterRole", "kube-elector-controller"]["rules"]
    granted = {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == _security_table("### `kube-elector-controller`")
    assert not any("resourceNames" in rule for rule in rules)


def test_the_webhook_may_write_no_rbac_and_causes_no_side_effects(helm):
    objects = {(o["kind"], o["metadata"]["name"]): o for o in charts.documents(helm.template())}
    rules = [rule for kind in ("ClusterRole", "Role") for rule in objects[kind, "kube-elector-webhook"]["rules"]]
    assert {group for rule in rules for group in rule["apiGroups"]} == {"", "admissionregistration.k8s.io"}
    assert not {"bind", "escalate", "*"} & {verb for rule in rules for verb in rule["verbs"]}
    assert {hook["sideEffects"] for hook in objects["MutatingWebhookConfiguration", "kube-elector"]["webhooks"]} == {
        "None"}


@pytest.mark.parametrize("values", [{}, {"certManager.enabled": True, "elector.leaseDuration": "20s",
                                         "elector.nativeSidecar": False, "elector.port": 5050, "elector.probePort": 5051,
                                         "webhook.excludedNamespaces": ["kube-system", "monitoring"]}])
def test_the_webhook_starts_with_the_settings_the_chart_renders(helm, tmp_path, values):
    """The rendered ConfigMap, the container's args and env, through webhook.settings.load as in the pod."""
    objects = {(o["kind"], o["metadata"]["name"]): o
               for o in charts.documents(helm.template(values, namespace="elector-system"))}
    config = tmp_path / "config.yaml"
    config.write_text(objects["ConfigMap", "kube-elector-webhook"]["data"]["config.yaml"])
    (container,) = objects["Deployment", "kube-elector-webhook"]["spec"]["template"]["spec"]["containers"]
    argv = [str(config) if arg == "/etc/kube-elector/config.yaml" else arg for arg in container["args"]]
    env = {var["name"]: var.get("value", "elector-system") for var in container["env"]}  # valueFrom: the namespace
    cfg = settings.load(argv, environ=env)
    assert cfg.namespace == "elector-system" and cfg.image.startswith("ghcr.io/kube-elector/elector:")
    assert cfg.cert_mode == ("files" if values else "self-managed") and cfg.removed_settings == {}
    assert (cfg.native_sidecar, cfg.port, cfg.election.lease_duration) == (
        (False, 5050, "20s") if values else (True, 4040, "15s"))
    assert "elector-system" in cfg.excluded_namespaces
