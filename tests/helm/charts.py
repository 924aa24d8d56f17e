"""The chart and manifests/, rendered and compared; helm run with its state kept out of $HOME.

The chart (charts/kube-elector) is written by hand as an ordinary Helm chart, and manifests/ stays
the kustomize base; neither is generated from the other. What keeps them one source of truth is
`differences()`: both rendered, object by object, field by field, with only what Helm adds by
convention left out (see `normalized`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from localplane.process import binaries

ROOT = binaries.ROOT
CHART = ROOT / "charts" / "kube-elector"
MANIFESTS = ROOT / "manifests"
RELEASE = "kube-elector"
NAMESPACE = "kube-elector"

# What the chart adds to every object by Helm's conventions, and nothing else may differ.
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance",
               "app.kubernetes.io/version")
POD_TEMPLATE_ANNOTATIONS = ("checksum/config",)  # rolls the webhook's pods when its settings change
# Cluster-scoped kinds that kustomize up to v5.8.1 does not know as such: a kustomization's `namespace:`
# lands on them too, and the API server drops it (kubernetes-sigs/kustomize#6051).
CLUSTER_SCOPED_UNKNOWN_TO_KUSTOMIZE = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


class Helm:
    """The built helm (.cache/bin/helm-<version>), with HELM_*_HOME under `home`."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.env = {**os.environ, **{f"HELM_{part}_HOME": str(home / part.lower())
                                      for part in ("CACHE", "CONFIG", "DATA")}}

    def run(self, *args: str, kubeconfig: Path | None = None, check: bool = True,
            timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), *args, *([f"--kubeconfig={kubeconfig}"] if kubeconfig else [])]
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
        return done

    def template(self, values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE) -> str:
        """`helm template` of the chart; values as {"dotted.key": value} (--set-json)."""
        sets = [f"--set-json={key}={json.dumps(value)}" for key, value in (values or {}).items()]
        return self.run("template", RELEASE, str(CHART), "--namespace", namespace, *sets).stdout


def kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = binaries.find().kubectl
    done = subprocess.run([str(kubectl), "kustomize", str(directory)], capture_output=True, text=True, check=True)
    return documents(done.stdout)


def overlay(workdir: Path, components: list[str]) -> Path:
    """A kustomize overlay of manifests/ with these components, set up as the README says users do."""
    workdir.mkdir(parents=True, exist_ok=True)
    base = os.path.relpath(MANIFESTS, workdir)  # kustomize refuses absolute paths
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": NAMESPACE,
        "labels": [{"pairs": {"app.kubernetes.io/part-of": "kube-elector"}, "includeSelectors": False}],
        "resources": [base],
        "components": [f"{base}/components/{name}" for name in components],
    }))
    return workdir


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    namespace = "-" if obj["kind"] in CLUSTER_SCOPED_UNKNOWN_TO_KUSTOMIZE else meta.get("namespace", "-")
    return f"{obj['kind']} {namespace}/{meta['name']}"


def normalized(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as compared: without Helm's own labels and the pod template's checksum, without the
    namespace kustomize wrongly gives the policies, config.yaml parsed (comments do not count), and
    named lists (env, volumes, volumeMounts) sorted by name: a kustomize patch prepends to them,
    Kubernetes does not care."""
    obj = json.loads(json.dumps(obj))
    meta = obj["metadata"]
    if obj["kind"] in CLUSTER_SCOPED_UNKNOWN_TO_KUSTOMIZE:
        meta.pop("namespace", None)
    for label in HELM_LABELS:
        meta.get("labels", {}).pop(label, None)
    if obj["kind"] == "ConfigMap" and "config.yaml" in obj.get("data", {}):
        obj["data"]["config.yaml"] = yaml.safe_load(obj["data"]["config.yaml"])
    template = obj.get("spec", {}).get("template", {})
    annotations = template.get("metadata", {}).get("annotations", {})
    for name in POD_TEMPLATE_ANNOTATIONS:
        annotations.pop(name, None)
    if "annotations" in template.get("metadata", {}) and not annotations:
        del template["metadata"]["annotations"]
    pod = template.get("spec", {})
    for holder in (pod, *pod.get("containers", [])):
        for field in ("volumes", "env", "volumeMounts"):
            if isinstance(holder.get(field), list):
                holder[field] = sorted(holder[field], key=lambda item: item["name"])
    return obj


def differences(chart: list[dict[str, Any]], manifests: list[dict[str, Any]]) -> list[str]:
    """One line per object only one side has, and per field where the two differ; [] when the same."""
    ours = {key(o): normalized(o) for o in chart}
    theirs = {key(o): normalized(o) for o in manifests}
    lines = [f"only in manifests/: {k}" for k in sorted(theirs.keys() - ours.keys())]
    lines += [f"only in the chart: {k}" for k in sorted(ours.keys() - theirs.keys())]
    for k in sorted(ours.keys() & theirs.keys()):
        lines += [f"{k}: {path}: chart {a!r} != manifests {b!r}" for path, a, b in _diff(ours[k], theirs[k], "")]
    return lines


def _diff(a: Any, b: Any, path: str) -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(a.keys() | b.keys(), key=str)
                for d in _diff(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path or ".", a, b)]
