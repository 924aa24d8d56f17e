"""Hostile pods through the real API server: each is refused with a message naming the field, and
an ordinary opted-in pod is still injected afterwards."""

from __future__ import annotations

import pytest

from localplane.kube_elector import webhook as webhook_install
from tests.security.reviews import ODD_ANNOTATION_VALUES

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def webhook(control_plane, tmp_path_factory):
    hook = webhook_install.install(control_plane, tmp_path_factory.mktemp("webhook"))
    yield hook
    hook.stop(drain=False)
    with control_plane.client() as api:
        api.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}")


def create(api, namespace, name, annotations=None, **spec):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "annotations": {"elector.dev/inject": "true", **(annotations or {})}},
           "spec": {"containers": [{"name": "app", "image": "a"}], **spec}}
    return api.post(f"/api/v1/namespaces/{namespace}/pods", params={"dryRun": "All"}, json=pod)


HOSTILE_SPECS = [
    ({"initContainers": [{"name": "elector", "image": "evil", "restartPolicy": "Always",
                          "securityContext": {"privileged": True}}]}, "spec.initContainers[0] (elector)"),
    ({"containers": [{"name": "app", "image": "a"}, {"name": "elector", "image": "evil"}]}, "spec.containers[1] (elector)"),
    ({"volumes": [{"name": "elector-api-access", "hostPath": {"path": "/"}}]}, "spec.volumes (elector-api-access)"),
    ({"hostNetwork": True}, "spec.hostNetwork"),
]


@pytest.mark.parametrize("spec, field", HOSTILE_SPECS)
def test_pods_with_their_own_elector_parts_or_host_network_are_refused(webhook, api, namespace, spec, field):
    reply = create(api, namespace, "hostile", **spec)
    assert reply.status_code == 403, reply.text
    assert field in reply.json()["message"]
    ok = create(api, namespace, "plain")
    assert ok.status_code == 201 and ok.json()["spec"]["initContainers"][0]["name"] == "elector"


@pytest.mark.parametrize("key", ["elector.dev/lease-duration", "elector.dev/retry-period", "elector.dev/release-timeout"])
def test_hostile_durations_are_refused_naming_the_annotation(webhook, api, namespace, key):
    values = [*ODD_ANNOTATION_VALUES, "1500ms", "2.5s", "1e309s", "1ms", "9999999999h", "-5s"]
    for value in values:
        reply = create(api, namespace, "timed", {key: value})
        if reply.status_code == 201:  # admitted: the elector gets it and must start with it
            args = reply.json()["spec"]["initContainers"][0]["args"]
            assert any(arg.startswith("--" + key.split("/")[1]) for arg in args) or key.endswith("release-timeout")
        else:
            assert key in reply.json()["message"], (value, reply.text)
