"""The pod runner's kubelet rules, as pure functions (no control plane, no root)."""

from __future__ import annotations

import base64

import pytest

from podrunner import podspec
from podrunner.images import LocalImage, default_table, repository

POD = {
    "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web", "tier": "a b"},
                 "annotations": {"note": 'say "hi"'}},
    "spec": {"nodeName": "podrunner", "serviceAccountName": "web"},
    "status": {"hostIP": "127.0.0.1"},
}


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A)-$(B)", "1-$(B)"),
    ("$$(A)", "$(A)"),
    ("cost: $5", "cost: $5"),
    ("$(A", "$(A"),
    ("end$", "end$"),
    ("$()", "$()"),
])
def test_expand_follows_kubernetes(text, expected):
    assert podspec.expand(text, {"A": "1"}) == expected


def test_field_values():
    assert podspec.field_value(POD, "metadata.name") == "web-1"
    assert podspec.field_value(POD, "metadata.labels['app']") == "web"
    assert podspec.field_value(POD, "spec.serviceAccountName") == "web"
    assert podspec.field_value(POD, "metadata.labels") == 'app="web"\ntier="a b"'
    assert podspec.field_value(POD, "metadata.annotations") == 'note="say \\"hi\\""'
    with pytest.raises(podspec.ConfigError):
        podspec.field_value(POD, "spec.nope")


def test_env_order_and_sources():
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "URL", "value": "http://$(POD):$(KUBERNETES_SERVICE_PORT)/$(CM_x)"},
            {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "GONE", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k", "optional": True}}},
            {"name": "PATH", "value": "/mine"},
        ],
        "resources": {"limits": {"memory": "64Mi"}},
    }
    objects = {("ConfigMap", "cm"): {"data": {"x": "y"}},
               ("Secret", "s"): {"data": {"k": base64.b64encode(b"pw").decode()}},
               ("ConfigMap", "missing"): None}
    image = LocalImage(env={"PATH": "/image", "LANG": "C.UTF-8"})
    env = podspec.container_env(POD, container, image=image, services=podspec.service_env("127.0.0.1", 6443),
                                objects=objects, node={})
    assert env["URL"] == "http://web-1:6443/y"
    assert env["CM_x"] == "y" and env["SECRET"] == "pw" and env["MEM"] == "64"
    assert "GONE" not in env
    assert env["PATH"] == "/mine" and env["LANG"] == "C.UTF-8"  # container env over image env
    assert env["HOSTNAME"] == "web-1" and env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"


def test_a_missing_required_reference_is_a_config_error():
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}
    with pytest.raises(podspec.ConfigError, match="not found"):
        podspec.container_env(POD, container, image=LocalImage(), services={}, objects={("ConfigMap", "cm"): None},
                              node={})


def test_argv_rules():
    image = LocalImage(entrypoint=("/bin/elector",), cmd=("--help",))
    assert podspec.container_argv({"args": ["--x=$(A)"]}, image, {"A": "1"}) == ["/bin/elector", "--x=1"]
    assert podspec.container_argv({}, image, {}) == ["/bin/elector", "--help"]
    assert podspec.container_argv({"command": ["sh"], "args": ["-c", "$$HOME"]}, image, {}) == ["sh", "-c", "$HOME"]
    with pytest.raises(podspec.ConfigError) as err:
        podspec.container_argv({"image": "nginx"}, None, {})
    assert err.value.reason == "ImageNotKnown"


def test_images_by_repository_name():
    assert repository("ghcr.io/kube-elector/elector:0.1.0@sha256:abc") == "elector"
    table = default_table()
    assert table.lookup("localhost/kube-elector:dev") is table.lookup("ghcr.io/kube-elector/elector:0.1.0")
    assert table.lookup("python:3.12-slim").cmd == ("python3",)
    assert table.lookup("nginx") is None


def test_identity_from_security_contexts_and_image():
    pod = {**POD, "spec": {"securityContext": {"runAsUser": 1000, "fsGroup": 2000}}}
    who = podspec.identity(pod, {"securityContext": {"runAsUser": 65532, "readOnlyRootFilesystem": True,
                                                     "allowPrivilegeEscalation": False,
                                                     "capabilities": {"drop": ["ALL"]}}}, None)
    assert (who.uid, who.gid, who.groups) == (65532, 0, (2000,))
    assert who.read_only_root and who.no_new_privs and who.drop_all_caps
    assert podspec.identity(POD, {}, LocalImage(user=65532)).uid == 65532
    with pytest.raises(podspec.ConfigError, match="runAsNonRoot"):
        podspec.identity(POD, {"securityContext": {"runAsNonRoot": True}}, LocalImage())


def test_projected_volume_like_the_webhooks():
    volume = {"name": "elector-api-access", "projected": {"defaultMode": 0o444, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
    ]}}
    assert podspec.token_sources({"spec": {"volumes": [volume]}}) == {("", 3607)}
    assert podspec.references({"spec": {"volumes": [volume]}}) == {("ConfigMap", "kube-root-ca.crt")}
    plan = podspec.volume_plan(POD, volume, objects={("ConfigMap", "kube-root-ca.crt"): {"data": {"ca.crt": "PEM"}}},
                               tokens={("", 3607): "TOKEN"}, node={})
    assert plan.files == {"token": (b"TOKEN", 0o444), "ca.crt": (b"PEM", 0o444), "namespace": (b"shop", 0o444)}
    assert plan.refreshes


def test_unsupported_volume_is_a_config_error():
    with pytest.raises(podspec.ConfigError, match="not supported"):
        podspec.volume_plan(POD, {"name": "data", "persistentVolumeClaim": {"claimName": "x"}}, objects={},
                            tokens={}, node={})


def test_wrapper_overlays_missing_mount_points_instead_of_creating_them_on_the_host(tmp_path):
    source = tmp_path / "vol"
    source.mkdir()
    mounts = [podspec.Mount(str(source), "/var/run/secrets/kubernetes.io/serviceaccount", True),
              podspec.Mount(str(source), "/opt/podrunner-test-does-not-exist/app", False),
              podspec.Mount(str(source), "/tmp", False)]  # exists: bind over it, no overlay
    argv = podspec.wrapper_argv(netns="ns1", host="web-1", mounts_=mounts,
                                who=podspec.Identity(uid=65532, gid=65532, read_only_root=True), workdir="/",
                                argv=["/bin/app", "x y"], tools=podspec.Tools(), scratch=str(tmp_path / "scratch"))
    assert argv[:4] == ["/usr/sbin/ip", "netns", "exec", "ns1"]
    assert argv[-2:] == ["/bin/app", "x y"]
    script = argv[argv.index("-c") + 1]
    assert "lowerdir=/run," in script and "lowerdir=/opt," in script
    assert "lowerdir=/tmp" not in script
    assert "remount,bind,ro /var/run/secrets/kubernetes.io/serviceaccount" in script
    assert "remount,bind,ro /\n" in script and "remount,ro /opt" in script
    assert "--reuid=65532" in script and "--pdeathsig=SIGKILL" in script
