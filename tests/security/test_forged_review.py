"""Issue 20's attack, replayed through the real API server: a hand-written AdmissionReview POSTed straight to
the webhook's /mutate with no credentials must change nothing in the cluster.

In 0.1 this exact request made the webhook create RoleBindings kube-elector-thief(-rollout|-leader-label|
-leader-service) in namespace victim, after which `system:serviceaccount:victim:thief` could patch any pod
there. The webhook runs here as a process with the shipped manifests and its own ServiceAccount token
(localplane.kube_elector.webhook), so it holds exactly the rights it would have in a cluster.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import jsonpatch
import pytest

from localplane.kube_elector import webhook as webhook_install

VICTIM, THIEF = "victim", "thief"
USER = f"system:serviceaccount:{VICTIM}:{THIEF}"
#: How long a side effect gets to show up: 0.1 wrote its RoleBindings right after sending the answer.
SETTLE_SECONDS = 3.0

FORGED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "forged",
        "namespace": VICTIM,
        "annotations": {"elector.dev/inject": "true", "elector.dev/leader-label": "true",
                        "elector.dev/leader-service": "x"},
    },
    "spec": {"serviceAccountName": THIEF, "containers": [{"name": "app", "image": "registry.example/app:1"}]},
}

#: Where 0.1 left its traces, and what a controller would make (none of it is the webhook's to make).
LISTS = {
    "rolebindings": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{VICTIM}/rolebindings",
    "roles": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{VICTIM}/roles",
    "leases": f"/apis/coordination.k8s.io/v1/namespaces/{VICTIM}/leases",
    "endpointslices": f"/apis/discovery.k8s.io/v1/namespaces/{VICTIM}/endpointslices",
}


@pytest.fixture(scope="module")
def webhook(control_plane, tmp_path_factory) -> Iterator[webhook_install.InstalledWebhook]:
    hook = webhook_install.install(control_plane, tmp_path_factory.mktemp("forged-review"))
    yield hook
    hook.stop(drain=False)
    with control_plane.client() as api:  # leave no Fail-policy webhook behind for later modules
        api.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}")


@pytest.fixture
def victim(api) -> Iterator[str]:
    """Namespace `victim` with a ServiceAccount `thief` (deleted afterwards; waits out an earlier one's deletion)."""
    deadline = time.monotonic() + 60
    while (made := api.post("/api/v1/namespaces", json={"metadata": {"name": VICTIM}})).status_code == 409:
        assert time.monotonic() < deadline, f"namespace {VICTIM} from an earlier run is still there"
        api.delete(f"/api/v1/namespaces/{VICTIM}")
        time.sleep(0.5)
    assert made.status_code == 201, made.text
    api.post(f"/api/v1/namespaces/{VICTIM}/serviceaccounts", json={"metadata": {"name": THIEF}}).raise_for_status()
    yield VICTIM
    with contextlib.suppress(httpx.HTTPError):
        api.delete(f"/api/v1/namespaces/{VICTIM}")


def forged_review(uid: str) -> dict:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": VICTIM,
            "name": "forged",
            "userInfo": {"username": USER},  # a lie nobody can check: the request is not authenticated
            "dryRun": False,
            "object": FORGED_POD,
        },
    }


def allowed(api: httpx.Client, verb: str, resource: str, *, group: str = "") -> bool:
    """SubjectAccessReview (asked by the admin) for the thief's ServiceAccount, with the groups its token carries."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": USER,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{VICTIM}", "system:authenticated"],
            "resourceAttributes": {"namespace": VICTIM, "verb": verb, "group": group, "resource": resource},
        },
    }
    r = api.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review).raise_for_status()
    return bool(r.json()["status"].get("allowed"))


def present(api: httpx.Client) -> dict[str, list[str]]:
    out = {kind: [i["metadata"]["name"] for i in api.get(path).raise_for_status().json()["items"]]
           for kind, path in LISTS.items()}
    for kind in ("rolebindings", "clusterrolebindings"):  # a binding for the thief anywhere in the cluster
        items = api.get(f"/apis/rbac.authorization.k8s.io/v1/{kind}").raise_for_status().json()["items"]
        out[f"{kind} naming {THIEF}"] = [
            f"{i['metadata'].get('namespace', '')}/{i['metadata']['name']}" for i in items
            if any(s.get("name") == THIEF and s.get("namespace") == VICTIM for s in i.get("subjects") or [])
        ]
    return {kind: names for kind, names in out.items() if names}


def test_a_forged_review_is_answered_and_changes_nothing(webhook, api, victim):
    assert present(api) == {}
    uid = f"forged-{uuid.uuid4()}"
    # Straight to /mutate, as any pod that reaches the Service could: no client certificate, no token.
    with httpx.Client(verify=False, trust_env=False, timeout=10) as anyone:
        r = anyone.post(f"{webhook.url}/mutate", json=forged_review(uid))
    assert r.status_code == 200, r.text
    response = r.json()["response"]
    assert response["uid"] == uid and response["allowed"] is True and response["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(FORGED_POD, json.loads(base64.b64decode(response["patch"])))
    elector = next(c for c in patched["spec"]["initContainers"] if c["name"] == "elector")
    assert "--election-namespace=victim" in elector["args"]
    assert not [a for a in elector["args"] if a.startswith(("--leader-", "--rollout-aware"))], elector["args"]

    # Nothing appears, now or a little later (0.1 made its RoleBindings just after answering).
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        assert present(api) == {}
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)

    # The thief's account got no right from it.
    for verb, resource, group in (("patch", "pods", ""), ("create", "leases", "coordination.k8s.io"),
                                  ("list", "pods", ""), ("watch", "pods", ""), ("get", "pods", ""),
                                  ("update", "leases", "coordination.k8s.io"), ("get", "leases", "coordination.k8s.io"),
                                  ("create", "endpointslices", "discovery.k8s.io"),
                                  ("create", "events", "events.k8s.io")):
        assert not allowed(api, verb, resource, group=group), f"{USER} may {verb} {resource} in {VICTIM}"

    # The webhook's own log: it answered this review, and never spoke of a RoleBinding.
    lines = [json.loads(line) for line in webhook.log_path.read_text(errors="replace").splitlines()
             if line.startswith("{")]
    (answered,) = [line for line in lines if line.get("event") == "admission" and line.get("uid") == uid]
    assert answered["result"] == "injected" and answered["namespace"] == VICTIM
    rolebinding_lines = [line for line in lines if "rolebinding" in json.dumps(line).lower()]
    assert rolebinding_lines == [], rolebinding_lines


def test_the_checks_would_see_a_grant(api, victim):
    """The checks above can fail: after a Role and RoleBinding like 0.1's, the same SubjectAccessReviews allow
    and the same listing finds them."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "as-0.1-granted"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"]},
                      {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": f"kube-elector-{THIEF}"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "as-0.1-granted"},
               "subjects": [{"kind": "ServiceAccount", "name": THIEF, "namespace": VICTIM}]}
    api.post(f"{rbac}/namespaces/{VICTIM}/roles", json=role).raise_for_status()
    api.post(f"{rbac}/namespaces/{VICTIM}/rolebindings", json=binding).raise_for_status()
    wanted = (("patch", "pods", ""), ("list", "pods", ""), ("create", "leases", "coordination.k8s.io"))
    deadline = time.monotonic() + 10  # the authorizer's RBAC cache follows a watch
    while not all(allowed(api, verb, resource, group=group) for verb, resource, group in wanted):
        assert time.monotonic() < deadline, "a granted right never showed in the SubjectAccessReview"
        time.sleep(0.2)
    assert present(api) == {"rolebindings": [f"kube-elector-{THIEF}"], "roles": ["as-0.1-granted"],
                            f"rolebindings naming {THIEF}": [f"{VICTIM}/kube-elector-{THIEF}"]}
