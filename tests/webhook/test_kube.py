"""The RoleBindings the webhook makes for an injected pod's ServiceAccount, against a recording Api."""

import pytest

from webhook import kube
from webhook.handler import Binding


class RecordingApi:
    def __init__(self, status=201):
        self.sent = []
        self.status = status

    def call(self, method, path, body=None, **_):
        self.sent.append((method, path, body))
        if self.status != 201:
            raise kube.KubeError(self.status, "refused")


def made(roles, api=None):
    api = api or RecordingApi()
    kube.RoleBindings(api, "kube-elector-election").ensure(Binding("shop", "web", roles))
    return {body["metadata"]["name"]: body["roleRef"]["name"] for _, _, body in api.sent}


def test_the_rollout_role_is_bound_as_its_own_rolebinding():
    assert made(("rollout",)) == {"kube-elector-web": "kube-elector-election",
                                  "kube-elector-web-rollout": "kube-elector-rollout"}


def test_an_opted_out_pod_gets_the_election_binding_only():
    assert made(()) == {"kube-elector-web": "kube-elector-election"}


def test_the_rollout_rolebinding_body():
    body = kube.role_binding(Binding("shop", "web"), "kube-elector-rollout", suffix="rollout")
    assert body == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "kube-elector-web-rollout", "namespace": "shop",
                     "labels": {"app.kubernetes.io/managed-by": "kube-elector"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kube-elector-rollout"},
        "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "shop"}],
    }


@pytest.mark.parametrize(("status", "again"), [(409, 0), (403, 2)])
def test_a_binding_is_asked_for_again_only_when_it_failed(status, again):
    api = RecordingApi(status)
    bindings = kube.RoleBindings(api, "kube-elector-election")
    bindings.ensure(Binding("shop", "web", ("rollout",)))
    bindings.ensure(Binding("shop", "web", ("rollout",)))
    assert len(api.sent) == 2 + again  # 409: it exists, done; 403: tried again on the next pod
