"""The chart's ValidatingAdmissionPolicies on the real API server (no node): what the controller's own
token may write in RBAC, on pods, Leases and EndpointSlices. The chart is installed into a namespace other
than kube-elector, so that the templated username is what is tested (manifests/validatingadmissionpolicy.yaml
is the same, by tests/helm/test_chart.py), on a control plane of this module's own: the chart's
cluster-scoped objects (its MutatingWebhookConfiguration, ClusterRoles, policies) would be those of the
session's plane too.

The allowed writes are made by the controller's own code (controller/reconcile.py, legacy.py,
leadership.py) with that token, so that what is admitted is what the controller really sends; the denied
ones by hand, each the shape of an attack.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller import kube, legacy, leadership, observed, reconcile
from elector.election import events
from elector import settings
from localplane import binaries, plane

pytestmark = pytest.mark.controlplane

RELEASE_NAMESPACE = "elector-system"
RBAC = "/apis/rbac.authorization.k8s.io/v1/namespaces"
LEASES = "/apis/coordination.k8s.io/v1/namespaces"
SLICES = "/apis/discovery.k8s.io/v1/namespaces"
MERGE = {"Content-Type": "application/merge-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
ELECTION = "elector.dev/election"
MANAGED_BY = "app.kubernetes.io/managed-by"
SLICE_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SERVICE_NAME = "kubernetes.io/service-name"
# The policies' messages (in part).
RBAC_DELETE = "may only delete Roles and RoleBindings named kube-elector-lease-<lease>"
LEASE_CREATE = "may only create Leases labelled elector.dev/election"
LEASE_CHANGE = "may only change Leases labelled elector.dev/election (before and after)"
LEASE_DELETE = "may only delete Leases labelled elector.dev/election"
SLICE_WRITE = "may only write EndpointSlices named <service>-leader"
SLICE_CHANGE = "may only change or delete its own EndpointSlices"


@pytest.fixture(scope="module")
def own_plane(tmp_path_factory: pytest.TempPathFactory, helm) -> Iterator[plane.ControlPlane]:
    """A control plane with the chart applied (release namespace elector-system)."""
    with plane.ControlPlane.start(tmp_path_factory.mktemp("policies-plane"), bins=binaries.find()) as running:
        running.kubectl("create", "namespace", RELEASE_NAMESPACE)
        running.kubectl("apply", "-f", "-", input=helm.template(namespace=RELEASE_NAMESPACE))
        yield running


@pytest.fixture(scope="module")
def token(own_plane) -> str:
    """A token of the controller's ServiceAccount (TokenRequest, as its pods get one)."""
    return own_plane.token(RELEASE_NAMESPACE, "kube-elector-controller")


@pytest.fixture(scope="module")
def controller(own_plane, token) -> Iterator[httpx.Client]:
    """A client with the token of the controller's ServiceAccount."""
    ctx = ssl.create_default_context(cadata=own_plane.ca_pem.decode())
    with httpx.Client(base_url=own_plane.server, verify=ctx, trust_env=False,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.fixture(scope="module")
def kubeconfig(own_plane, token, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig holding only the controller's token: what the controller's code is given."""
    return own_plane.write_kubeconfig(tmp_path_factory.mktemp("controller") / "kubeconfig", token=token)


@pytest.fixture(scope="module")
def controller_api(kubeconfig) -> kube.Api:
    """The controller's own API client (controller/kube.py) with its token."""
    return kube.Api(kube.connect(kubeconfig))


@pytest.fixture
def api(own_plane) -> Iterator[httpx.Client]:
    with own_plane.client() as client:
        yield client


@pytest.fixture
def app(own_plane) -> Iterator[str]:
    """A fresh namespace, its `default` ServiceAccount ready."""
    name = f"p-{uuid.uuid4().hex[:8]}"
    own_plane.kubectl("create", "namespace", name)
    own_plane.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=30s", timeout=40)
    return name


def role(lease: str, *, name: str | None = None, **rule: Any) -> dict[str, Any]:
    body = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update", "watch"],
            "resourceNames": [lease], **rule}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name or f"kube-elector-lease-{lease}"},
            "rules": [{k: v for k, v in body.items() if v is not None}]}


def binding(name: str, namespace: str, *, ref: dict[str, str] | None = None,
            subjects: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": ref or {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}]
            if subjects is None else subjects}


def lease(name: str, *, labels: dict[str, str] | None = None, holder: str = "") -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, **({"labels": labels} if labels else {})},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15} if holder else {}}


def endpoint_slice(name: str, service: str, *, managed_by: str | None = "kube-elector.dev",
                   ip: str = "10.244.0.99") -> dict[str, Any]:
    labels = {SERVICE_NAME: service, **({SLICE_MANAGED_BY: managed_by} if managed_by else {})}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": name, "labels": labels},
            "addressType": "IPv4", "endpoints": [{"addresses": [ip]}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def service(name: str, **selector: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                     **({"selector": selector} if selector else {})}}


def candidates(api: httpx.Client, namespace: str, election: str,
               annotations: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Bare pods of an election (one per key of `annotations`), Ready with an IP: there is no node, so the
    test writes their status as a kubelet would. Real pods, so that the Role's owners exist."""
    pods = []
    for n, (name, notes) in enumerate(annotations.items(), start=11):
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": {ELECTION: election}, "annotations": notes},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/app:1"}]}}
        api.post(f"/api/v1/namespaces/{namespace}/pods", json=body).raise_for_status()
        status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                  "podIP": f"10.244.0.{n}", "podIPs": [{"ip": f"10.244.0.{n}"}]}
        reply = api.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", json={"status": status},
                          headers=MERGE)
        reply.raise_for_status()
        pods.append(reply.json())
    return pods


def denied(reply: httpx.Response, message: str) -> bool:
    said = reply.json().get("message", "") if reply.status_code == 422 else ""
    return "ValidatingAdmissionPolicy" in said and message in said


def until_denied(attempt: Callable[[], httpx.Response], message: str, undo: Callable[[], object]) -> None:
    """Make the forbidden request `attempt` until it is denied with `message`. The API server acts on new
    policies about a second after they are created; until then the request succeeds and `undo` reverts it."""
    deadline = time.monotonic() + 20
    while not denied(reply := attempt(), message):
        assert reply.is_success and time.monotonic() < deadline, reply.text
        undo()
        time.sleep(0.2)


@pytest.fixture(scope="module", autouse=True)
def policies_act(own_plane, controller) -> None:
    """Every policy of the chart denies before any test runs: otherwise a test's denials would fail for the
    wrong reason, and its allowed writes would prove nothing."""
    ns = "p-probe"
    own_plane.kubectl("create", "namespace", ns)
    own_plane.kubectl("wait", "--for=create", "serviceaccount/default", "-n", ns, "--timeout=30s", timeout=40)
    pod = f"/api/v1/namespaces/{ns}/pods/probe"
    back = {"metadata": {"labels": {"app": "a"}}}
    probe = binding("probe", ns, ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"})
    with own_plane.client() as api:
        api.post(f"/api/v1/namespaces/{ns}/pods", json={
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", **back["metadata"]},
            "spec": {"containers": [{"name": "c", "image": "example.invalid/app:1"}]}}).raise_for_status()
        api.post(f"{RBAC}/{ns}/rolebindings", json=probe).raise_for_status()
        until_denied(lambda: controller.post(f"{RBAC}/{ns}/roles", json=role("x", name="probe")),
                     "named kube-elector-lease-<lease>", lambda: api.delete(f"{RBAC}/{ns}/roles/probe"))
        until_denied(lambda: controller.patch(pod, json={"metadata": {"labels": {"app": "b"}}}, headers=MERGE),
                     "only the label elector.dev/leader", lambda: api.patch(pod, json=back, headers=MERGE))
        until_denied(lambda: controller.delete(f"{RBAC}/{ns}/rolebindings/probe"), RBAC_DELETE,
                     lambda: api.post(f"{RBAC}/{ns}/rolebindings", json=probe))
        until_denied(lambda: controller.post(f"{LEASES}/{ns}/leases", json=lease("probe")), LEASE_CREATE,
                     lambda: api.delete(f"{LEASES}/{ns}/leases/probe"))
        until_denied(lambda: controller.post(f"{SLICES}/{ns}/endpointslices",
                                             json=endpoint_slice("probe-abc", "probe")),
                     SLICE_WRITE, lambda: api.delete(f"{SLICES}/{ns}/endpointslices/probe-abc"))


def test_the_controller_may_write_the_lease_role_and_binding_and_no_other_rbac(controller, app, api):
    roles, bindings = f"{RBAC}/{app}/roles", f"{RBAC}/{app}/rolebindings"
    assert denied(reply := controller.post(roles, json=role("x", name="other")),
                  "named kube-elector-lease-<lease>"), reply.text
    assert controller.post(roles, json=role("web")).status_code == 201
    assert controller.post(roles, json=role("db", verbs=["get"])).status_code == 201
    assert controller.post(bindings, json=binding("kube-elector-lease-web", app)).status_code == 201
    for body, message in [
        (role("a", verbs=["get", "create"]), "may only grant get, update and watch"),
        (role("a", verbs=["list"]), "may only grant get, update and watch"),
        (role("a", resourceNames=["b"]), "must name exactly the one"),
        (role("a", resourceNames=None), "must name exactly the one"),
        (role("a", apiGroups=[""], resources=["pods"], verbs=["get"]), "may only be about coordination.k8s.io leases"),
        ({**role("a"), "rules": role("a")["rules"] * 2}, "must have exactly one rule"),
        (role("", name="kube-elector-lease-"), "named kube-elector-lease-<lease>"),
    ]:
        assert denied(reply := controller.post(roles, json=body), message), (body, reply.text)
    # An admin's Role of another shape, which the controller holds every right of: RBAC alone would let
    # it bind that, the policy does not.
    assert api.post(roles, json=role("web", name="anything")).status_code == 201
    for body, message in [
        (binding("anything", app), "named kube-elector-lease-<lease>"),
        (binding("kube-elector-lease-db", app, ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                    "name": "kube-elector-lease-web"}), "the Role of the same name"),
        (binding("kube-elector-lease-db", app, ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                    "name": "kube-elector-controller"}), "the Role of the same name"),
        (binding("kube-elector-lease-db", app, subjects=[{"kind": "ServiceAccount", "name": "default",
                                                          "namespace": "kube-system"}]), "of its own namespace"),
        (binding("kube-elector-lease-db", app, subjects=[{"kind": "User", "name": "mallory",
                                                          "apiGroup": "rbac.authorization.k8s.io"}]),
         "of its own namespace"),
        (binding("kube-elector-lease-db", app, subjects=[{"kind": "Group", "name": "system:authenticated",
                                                          "apiGroup": "rbac.authorization.k8s.io"}]),
         "of its own namespace"),
    ]:
        assert denied(reply := controller.post(bindings, json=body), message), (body, reply.text)
    # Updates are held to the same shape (deletes: the next test).
    current = controller.get(f"{roles}/kube-elector-lease-web").json()
    current["rules"][0]["verbs"].append("list")
    assert denied(controller.put(f"{roles}/kube-elector-lease-web", json=current), "get, update and watch")
    assert controller.delete(f"{roles}/kube-elector-lease-db").status_code == 200


def test_the_controller_deletes_only_its_own_roles_and_rolebindings_and_those_of_0_1(controller, controller_api,
                                                                                     app, api):
    roles, bindings = f"{RBAC}/{app}/roles", f"{RBAC}/{app}/rolebindings"

    def ref(name: str) -> dict[str, str]:
        return {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}

    # What the 0.1 webhook made for ServiceAccount `web` (controller/legacy.py deletes them on upgrade).
    made_by_0_1 = {f"kube-elector-web{suffix}": ref(f"kube-elector-{role_}") for suffix, role_ in
                   [("", "election"), ("-rollout", "rollout"), ("-leader-label", "leader-label"),
                    ("-leader-service", "leader-service")]}
    for name, cluster_role in made_by_0_1.items():
        body = binding(name, app, ref=cluster_role, subjects=[{"kind": "ServiceAccount", "name": "web",
                                                                "namespace": app}])
        body["metadata"]["labels"] = {MANAGED_BY: "kube-elector"}
        api.post(bindings, json=body).raise_for_status()
    # Not the controller's: an admin's binding, 0.1's name pattern for another role, a 0.1 role bound under
    # another name, Roles (0.1 made only RoleBindings).
    others = {
        "rolebindings/admin-binding": binding("admin-binding", app, ref=ref("admin")),
        "rolebindings/kube-elector-ops": binding("kube-elector-ops", app, ref=ref("admin")),
        "rolebindings/team": binding("team", app, ref=ref("kube-elector-election")),
        "roles/other": role("web", name="other"),
        "roles/kube-elector-web": role("web", name="kube-elector-web"),
    }
    for path, body in others.items():
        api.post(f"{RBAC}/{app}/{path.split('/')[0]}", json=body).raise_for_status()
    for path in others:
        assert denied(reply := controller.delete(f"{RBAC}/{app}/{path}"), RBAC_DELETE), (path, reply.text)
        assert api.get(f"{RBAC}/{app}/{path}").status_code == 200, path
    # Its own: the per-election Role and RoleBinding (what Election._remove deletes) ...
    assert controller.post(roles, json=role("web")).status_code == 201
    assert controller.post(bindings, json=binding("kube-elector-lease-web", app)).status_code == 201
    assert controller.delete(f"{bindings}/kube-elector-lease-web").status_code == 200
    assert controller.delete(f"{roles}/kube-elector-lease-web").status_code == 200
    # ... and 0.1's, by its own upgrade sweep (it logs a denied delete and goes on: hence the reads).
    assert legacy.sweep(controller_api, pods=[]) >= len(made_by_0_1)
    for name in made_by_0_1:
        assert api.get(f"{bindings}/{name}").status_code == 404, name


def test_the_controller_writes_only_the_leases_of_its_elections_its_own_and_those_of_0_1(
        controller, controller_api, kubeconfig, app, api):
    # Other components' Leases in kube-system: kube-controller-manager's (this plane's runs without leader
    # election: the test makes it as it would) and the API server's identity Lease.
    kcm = f"{LEASES}/kube-system/leases/kube-controller-manager"
    if api.get(kcm).status_code == 404:
        api.post(f"{LEASES}/kube-system/leases",
                 json=lease("kube-controller-manager", holder="kcm-1")).raise_for_status()
    (identity,) = api.get(f"{LEASES}/kube-system/leases",
                          params={"labelSelector": "apiserver.kubernetes.io/identity=kube-apiserver"}).json()["items"]
    for url in (kcm, f"{LEASES}/kube-system/leases/{identity['metadata']['name']}"):
        # Merge patches: never a conflict with the owner's renewals, so that admission decides.
        for patch in ({"spec": {"holderIdentity": "mallory", "leaseDurationSeconds": 3600}},
                      {"metadata": {"labels": {ELECTION: "x"}}}):  # labelling it first does not help
            assert denied(reply := controller.patch(url, json=patch, headers=MERGE), LEASE_CHANGE), (url, reply.text)
        assert denied(reply := controller.delete(url), LEASE_DELETE), (url, reply.text)
    assert api.get(kcm).json()["spec"]["holderIdentity"] == "kcm-1"

    leases = f"{LEASES}/{app}/leases"
    # Another component's Lease in an app's namespace, and a Lease of no election.
    api.post(leases, json=lease("other", holder="someone")).raise_for_status()
    for patch in ({"spec": {"holderIdentity": "mallory"}}, {"metadata": {"labels": {ELECTION: "other"}}}):
        assert denied(reply := controller.patch(f"{leases}/other", json=patch, headers=MERGE), LEASE_CHANGE), reply.text
    assert denied(reply := controller.delete(f"{leases}/other"), LEASE_DELETE), reply.text
    for namespace, name in [(app, "fresh"), (app, "kube-elector-controller"),
                            (RELEASE_NAMESPACE, "kube-elector-controller-2")]:
        assert denied(reply := controller.post(f"{LEASES}/{namespace}/leases", json=lease(name, holder="mallory")),
                      LEASE_CREATE), (namespace, name, reply.text)

    # An election's Lease, as the controller writes it (Election: create, hints, delete); its label stays on.
    assert controller.post(leases, json=lease("web", labels={ELECTION: "web"})).status_code == 201
    hint = {"metadata": {"annotations": {"elector.dev/next-leader": "web-2"}}}
    assert controller.patch(f"{leases}/web", json=hint, headers=MERGE).status_code == 200
    assert denied(reply := controller.patch(f"{leases}/web", json={"metadata": {"labels": {ELECTION: None}}},
                                            headers=MERGE), LEASE_CHANGE), reply.text
    assert controller.delete(f"{leases}/web").status_code == 200

    # A 0.1 Lease (managed-by, no election label): adopted by the controller's own code, nothing else.
    api.post(leases, json=lease("legacy", labels={MANAGED_BY: "kube-elector"}, holder="legacy-1")).raise_for_status()
    assert denied(reply := controller.patch(f"{leases}/legacy", json=hint, headers=MERGE), LEASE_CHANGE), reply.text
    assert denied(reply := controller.delete(f"{leases}/legacy"), LEASE_DELETE), reply.text
    pods = candidates(api, app, "legacy", {"legacy-1": {}, "legacy-2": {}})
    reconcile.Election(app, "legacy", identity="ctl-0").reconcile(controller_api, reconcile.Cached(pods))
    adopted = api.get(f"{leases}/legacy").json()
    assert adopted["metadata"]["labels"][ELECTION] == "legacy", adopted
    assert adopted["spec"]["holderIdentity"] == "legacy-1"
    assert adopted["metadata"]["annotations"]["elector.dev/next-leader"] == "legacy-2"  # then ours: hints

    # Its own election's Lease in its namespace, by the controller's own Leadership (elector's LeaseLock:
    # POST when missing, PUT to renew and to release on stop). Never deleted.
    own = f"{LEASES}/{RELEASE_NAMESPACE}/leases/kube-elector-controller"
    config = settings.ElectionConfig(name="kube-elector-controller", namespace=RELEASE_NAMESPACE, identity="ctl-0")
    heard: list[bool] = []
    running = leadership.Leadership(config, kubeconfig_path=str(kubeconfig), on_change=heard.append)
    running.start()
    try:
        deadline = time.monotonic() + 15
        while not running.leading():
            assert time.monotonic() < deadline, "the controller never led: its own Lease was not written"
            time.sleep(0.1)
        assert api.get(own).json()["spec"]["holderIdentity"] == "ctl-0"
    finally:
        running.stop()
    assert heard == [True, False]
    assert not api.get(own).json()["spec"].get("holderIdentity")  # released (a PUT)
    assert denied(reply := controller.delete(own), LEASE_DELETE), reply.text


def test_the_controller_writes_only_the_leader_endpointslices(controller, app, api):
    slices = f"{SLICES}/{app}/endpointslices"
    # Its slice of a leader Service: created, moved, deleted.
    assert controller.post(slices, json=endpoint_slice("front-leader", "front")).status_code == 201
    current = controller.get(f"{slices}/front-leader").json()
    current["endpoints"] = [{"addresses": ["10.244.0.12"]}]
    assert controller.put(f"{slices}/front-leader", json=current).status_code == 200
    assert controller.delete(f"{slices}/front-leader").status_code == 200
    # Slices it never writes: another Service's under another name; a -leader slice without our label or
    # with the EndpointSlice controller's; a -leader name that is not its Service's.
    for body in (endpoint_slice("web-abc", "web"), endpoint_slice("web-leader", "web", managed_by=None),
                 endpoint_slice("web-leader", "web", managed_by="endpointslice-controller.k8s.io"),
                 endpoint_slice("db-leader", "web")):
        assert denied(reply := controller.post(slices, json=body), SLICE_WRITE), (body, reply.text)
    # Others' slices, whatever it writes into them: the EndpointSlice controller's of a Service with a
    # selector, and a -leader slice that is not ours.
    api.post(f"/api/v1/namespaces/{app}/services", json=service("web", app="web")).raise_for_status()
    deadline = time.monotonic() + 20
    while not (made := api.get(slices, params={"labelSelector": f"{SERVICE_NAME}=web"}).json()["items"]):
        assert time.monotonic() < deadline, "the EndpointSlice controller made no slice for Service web"
        time.sleep(0.2)
    api.post(slices, json=endpoint_slice("api-leader", "api", managed_by="someone.example.com")).raise_for_status()
    # (The API server names the first rule a write breaks: a slice not named and labelled as ours breaks the
    # first; relabelled as ours, the -leader slice breaks the second, as its old self was not ours.)
    for name, relabelled_breaks in ((made[0]["metadata"]["name"], SLICE_WRITE), ("api-leader", SLICE_CHANGE)):
        url = f"{slices}/{name}"
        before = api.get(url).json()
        # PUTs (it may not patch slices) without a resourceVersion: no conflict with the EndpointSlice
        # controller, so that admission decides.
        redirected = {**before, "metadata": {k: v for k, v in before["metadata"].items() if k != "resourceVersion"},
                      "endpoints": [{"addresses": ["10.244.0.66"]}]}
        assert denied(reply := controller.put(url, json=redirected), SLICE_WRITE), (name, reply.text)
        relabelled = {**redirected, "metadata": {**redirected["metadata"], "labels": {
            **before["metadata"]["labels"], SLICE_MANAGED_BY: "kube-elector.dev"}}}
        assert denied(reply := controller.put(url, json=relabelled), relabelled_breaks), (name, reply.text)
        assert denied(reply := controller.delete(url), SLICE_CHANGE), (name, reply.text)
        after = api.get(url).json()
        assert (after["metadata"]["labels"], after["endpoints"]) == (before["metadata"]["labels"], before["endpoints"])


def test_an_election_from_first_pod_to_last_by_the_controller_s_own_code_passes_every_policy(
        controller, controller_api, app, api):
    """Election.reconcile with the controller's token: Role, RoleBinding, Lease (create), the successor hint
    (merge patch), the leader label, two leader EndpointSlices (one new, one of 0.1's electors taken over), an
    Event; then, its last pod gone, everything deleted. A denied write raises KubeError."""
    for name in ("front", "back"):
        api.post(f"/api/v1/namespaces/{app}/services", json=service(name)).raise_for_status()
    slices = f"{SLICES}/{app}/endpointslices"
    # 0.1's electors wrote `<service>-leader` with our managed-by label, without elector.dev/election.
    api.post(slices, json=endpoint_slice("back-leader", "back", ip="10.244.0.3")).raise_for_status()
    notes = {reconcile.LEADER_LABEL_OPTION: "true"}
    pods = candidates(api, app, "web", {"web-1": {**notes, reconcile.LEADER_SERVICE_OPTION: "front"},
                                        "web-2": {**notes, reconcile.LEADER_SERVICE_OPTION: "back"}})
    election = reconcile.Election(app, "web", identity="ctl-0")
    election.reconcile(controller_api, reconcile.Cached(pods))
    url = f"{LEASES}/{app}/leases/web"
    lease_ = api.get(url).json()
    assert lease_["metadata"]["labels"][ELECTION] == "web"
    # web-1's elector takes the Lease (its own account's write; the admin's here).
    lease_["spec"] = {"holderIdentity": "web-1", "leaseDurationSeconds": 15, "leaseTransitions": 1}
    lease_ = api.put(url, json=lease_).json()
    made = {kind: api.get(f"{RBAC}/{app}/{kind}/kube-elector-lease-web").json() for kind in ("roles", "rolebindings")}
    cached = reconcile.Cached(pods, lease=lease_, role=made["roles"], binding=made["rolebindings"],
                              seen=observed.sight(None, lease_, time.monotonic()).seen)
    election.pending_events.append(events.became_leader("web-1", term=1, cause="released", previous=""))
    election.reconcile(controller_api, cached)

    assert api.get(url).json()["metadata"]["annotations"]["elector.dev/next-leader"] == "web-2"
    labels = api.get(f"/api/v1/namespaces/{app}/pods/web-1").json()["metadata"]["labels"]
    assert labels[reconcile.LEADER_LABEL] == "true"
    for name in ("front-leader", "back-leader"):
        routed = api.get(f"{slices}/{name}").json()
        assert [e["addresses"] for e in routed["endpoints"]] == [["10.244.0.11"]], routed
        assert routed["metadata"]["labels"][ELECTION] == "web"
    (event,) = [e for e in api.get(f"/apis/events.k8s.io/v1/namespaces/{app}/events").json()["items"]
                if e["regarding"].get("name") == "web"]
    assert event["note"].startswith("web-1 became leader")
    # Events need no policy: the controller may create and patch them, nothing else (RBAC).
    assert controller.delete(f"/apis/events.k8s.io/v1/namespaces/{app}/events/{event['metadata']['name']}"
                             ).status_code == 403

    election.reconcile(controller_api, reconcile.Cached([], lease=lease_, role=made["roles"],
                                                        binding=made["rolebindings"]))
    for gone in (f"{RBAC}/{app}/roles/kube-elector-lease-web", f"{RBAC}/{app}/rolebindings/kube-elector-lease-web",
                 url, f"{slices}/front-leader", f"{slices}/back-leader"):
        assert api.get(gone).status_code == 404, gone


def test_the_controller_may_move_the_leader_label_and_change_nothing_else_of_a_pod(controller, app, api):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "a"}},
           "spec": {"containers": [{"name": "c", "image": "example.invalid/app:1"}]}}
    assert api.post(f"/api/v1/namespaces/{app}/pods", json=pod).status_code == 201
    url = f"/api/v1/namespaces/{app}/pods/p"
    leader = {"metadata": {"labels": {"elector.dev/leader": "true"}}}
    assert controller.patch(url, json=leader, headers=MERGE).status_code == 200
    assert controller.patch(url, json={"metadata": {"labels": {"elector.dev/leader": None}}},
                            headers=MERGE).status_code == 200
    for body, headers, message in [
        ({"metadata": {"labels": {"elector.dev/leader": "false"}}}, MERGE, 'to "true" (or remove it)'),
        ({"metadata": {"labels": {"app": "b"}}}, MERGE, "only the label elector.dev/leader"),
        ({"metadata": {"labels": {"app": None}}}, MERGE, "only the label elector.dev/leader"),
        ({"metadata": {"labels": {"team": "x"}}}, MERGE, "only the label elector.dev/leader"),
        # A running pod's image can be changed by a patch: code under the pod's ServiceAccount.
        ({"spec": {"containers": [{"name": "c", "image": "example.invalid/evil:1"}]}}, STRATEGIC,
         "may not change a pod's spec"),
    ]:
        assert denied(reply := controller.patch(url, json=body, headers=headers), message), (body, reply.text)
    # Everyone else is not matched: an admin changes the image.
    image = {"spec": {"containers": [{"name": "c", "image": "example.invalid/app:2"}]}}
    assert api.patch(url, json=image, headers=STRATEGIC).status_code == 200
