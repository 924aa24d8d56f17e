"""charts/kube-elector without a cluster: lint, no drift from manifests/, values checked by the schema."""

from __future__ import annotations

import pytest

from tests.helm import charts


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
        "podDisruptionBudget.enabled": False, "commonLabels": {"team": "platform"},
    }, namespace="elector-system"))
    objects = {o["kind"]: o for o in rendered}
    assert "PodDisruptionBudget" not in objects and "Issuer" not in objects
    assert objects["Certificate"]["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"}
    assert all(o["metadata"]["labels"]["team"] == "platform" for o in rendered)
    deployment = objects["Deployment"]["spec"]
    (container,) = deployment["template"]["spec"]["containers"]
    assert deployment["replicas"] == 3 and "priorityClassName" not in deployment["template"]["spec"]
    assert (container["image"], container["imagePullPolicy"]) == ("registry.example/webhook:1.2.3", "Always")
    assert {"name": "KUBE_ELECTOR_IMAGE", "value": "ghcr.io/kube-elector/elector:1.2.3"} in container["env"]
    settings = charts.normalized(objects["ConfigMap"])["data"]["config.yaml"]
    assert settings["election"]["lease_duration"] == "20s" and settings["native_sidecar"] is False
    assert settings["excluded_namespaces"] == ["kube-system", "monitoring", "elector-system"]
    for hook in objects["MutatingWebhookConfiguration"]["webhooks"]:
        assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 10)
        assert hook["clientConfig"]["service"]["namespace"] == "elector-system"
        excluded = {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                    "values": ["kube-system", "monitoring", "elector-system"]}
        assert excluded in hook["namespaceSelector"]["matchExpressions"]
        assert hook["objectSelector"]["matchExpressions"][-1]["key"] == "tier"


def test_a_changed_setting_rolls_the_webhook_pods(helm):
    def checksum(values):
        deployment = next(o for o in charts.documents(helm.template(values)) if o["kind"] == "Deployment")
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
])
def test_a_wrong_value_fails_and_names_it(helm, value, named):
    done = helm.run("template", charts.RELEASE, str(charts.CHART), "--set", value, check=False)
    assert done.returncode != 0
    assert named in done.stderr, done.stderr
