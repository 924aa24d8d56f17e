import dataclasses

import jsonpatch
import pytest

from localplane.kube_elector.reviews import POD, pod
from webhook import inject, options, settings

SETTINGS = settings.Settings()


def mutate(p, *, namespace="shop", namespace_opted_in=False, cfg=SETTINGS):
    return inject.mutate(p, namespace=namespace, namespace_opted_in=namespace_opted_in, settings=cfg)


def elector_of(p):
    return next(c for c in p["spec"].get("initContainers", []) + p["spec"]["containers"] if c["name"] == "elector")


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_opted_in_pod_gets_native_sidecar_first_and_app_env():
    result = mutate(pod(**{"spec.initContainers": [{"name": "migrate", "image": "m:1"}]}))
    init = result.pod["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["elector", "migrate"]
    assert init[0]["restartPolicy"] == "Always"
    app = result.pod["spec"]["containers"][0]
    assert [e["name"] for e in app["env"]] == ["ELECTOR_PATH", "ELECTOR_GET_URL", "ELECTOR_SSE_URL", "MODE"]
    assert env_of(app)["ELECTOR_PATH"] == "localhost:4040"  # no scheme: old clients prepend http://
    assert env_of(app)["ELECTOR_GET_URL"] == "http://localhost:4040/"
    assert env_of(app)["ELECTOR_SSE_URL"] == "http://localhost:4040/sse"
    assert "ELECTOR_PATH" in env_of(init[1])  # init containers that follow the sidecar get it too
    assert result.pod["metadata"]["annotations"]["elector.dev/injected"] == settings.VERSION
    assert result.pod["metadata"]["labels"]["elector.dev/election"] == "web"
    assert result.election == "web"


def test_sidecar_is_hardened_and_identifies_itself_through_the_downward_api():
    c = elector_of(mutate(pod()).pod)
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] != 0 and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    fields = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"] if "valueFrom" in e}
    assert fields == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_UID": "metadata.uid"}
    assert "--election=web" in c["args"] and "--election-namespace=shop" in c["args"]
    assert "--http=localhost:4040" in c["args"] and "--probe-address=0.0.0.0:4041" in c["args"]
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": 4041}
    assert c["resources"]["limits"]["memory"]


def test_token_volume_is_mounted_into_the_elector_only():
    p = mutate(pod(**{"spec.automountServiceAccountToken": False})).pod
    vol = next(v for v in p["spec"]["volumes"] if v["name"] == "elector-api-access")
    kinds = [next(iter(s)) for s in vol["projected"]["sources"]]
    assert kinds == ["serviceAccountToken", "configMap", "downwardAPI"]
    assert elector_of(p)["volumeMounts"][0]["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    assert "volumeMounts" not in p["spec"]["containers"][0]


def test_injecting_twice_changes_nothing():
    once = mutate(pod()).pod
    twice = mutate(once).pod
    assert jsonpatch.make_patch(once, twice).patch == []


def test_reinvocation_gives_env_to_containers_added_later():
    once = mutate(pod()).pod
    once["spec"]["containers"].append({"name": "added-by-another-webhook", "image": "x"})
    again = mutate(once).pod
    assert [c["name"] for c in again["spec"]["initContainers"]].count("elector") == 1
    assert "ELECTOR_GET_URL" in env_of(again["spec"]["containers"][1])


def test_env_set_by_the_app_is_kept():
    p = pod(**{"spec.containers": [{"name": "app", "image": "a", "env": [{"name": "ELECTOR_PATH", "value": "mine"}]}]})
    env = mutate(p).pod["spec"]["containers"][0]["env"]
    assert [e for e in env if e["name"] == "ELECTOR_PATH"] == [{"name": "ELECTOR_PATH", "value": "mine"}]
    assert len(env) == 3


def test_pod_with_nothing_optional_at_all():
    bare = {"metadata": {"name": "solo", "annotations": {"elector.dev/inject": "true"}},
            "spec": {"containers": [{"name": "app", "image": "a"}]}}
    p = mutate(bare).pod
    assert p["spec"]["initContainers"][0]["name"] == "elector"
    assert len(p["spec"]["volumes"]) == 1
    assert "ELECTOR_PATH" in env_of(p["spec"]["containers"][0])
    assert p["metadata"]["labels"]["elector.dev/election"] == "solo"


def test_plain_container_mode_for_old_clusters():
    cfg = settings.Settings(native_sidecar=False)
    p = mutate(pod(), cfg=cfg).pod
    assert "initContainers" not in p["spec"]
    assert p["spec"]["containers"][-1]["name"] == "elector"
    assert "restartPolicy" not in p["spec"]["containers"][-1]
    assert p["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "app"


@pytest.mark.parametrize(
    ("annotations", "namespace_opted_in", "namespace", "expected"),
    [
        ({}, False, "shop", False),
        ({}, True, "shop", True),
        ({"elector.dev/inject": "true"}, False, "shop", True),
        ({"elector.dev/inject": "false"}, True, "shop", False),
        ({"elector.dev/inject": "true"}, False, "kube-system", False),
    ],
)
def test_opt_in_rules(annotations, namespace_opted_in, namespace, expected):
    p = pod(**{"metadata.annotations": annotations})
    result = mutate(p, namespace=namespace, namespace_opted_in=namespace_opted_in)
    assert (result.pod is not None) is expected


def test_original_pod_is_not_modified():
    p = pod()
    before = repr(p)
    mutate(p)
    assert repr(p) == before == repr(POD)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metadata.annotations": {"elector.dev/inject": "yes"}}, "elector.dev/inject"),
        ({"metadata.annotations": {"elector.dev/inject": "true", "elector.dev/port": "80"}}, "elector.dev/port"),
        ({"metadata.annotations": {"elector.dev/inject": "true", "elector.dev/port": "http"}}, "elector.dev/port"),
        ({"metadata.annotations": {"elector.dev/inject": "true", "elector.dev/port": "４０４０"}}, "elector.dev/port"),
        ({"metadata.annotations": {"elector.dev/inject": "true", "elector.dev/port": "²"}}, "elector.dev/port"),
        ({"metadata.annotations": {"elector.dev/inject": "true", "elector.dev/election": "Not_Valid"}}, "elector.dev/election"),
        ({"metadata.annotations": {"elector.dev/inject": "true", "elector.dev/lease-duration": "5s"}}, "elector.dev/lease-duration"),
        ({"metadata.annotations": {"elector.dev/inject": "true", "elector.dev/retry-period": "soon"}}, "elector.dev/retry-period"),
        ({"metadata.annotations": {"elector.dev/inject": "true", "elector.dev/containers": "nope"}}, "elector.dev/containers"),
        ({"spec.containers": [{"name": "app", "image": "a", "ports": [{"containerPort": 4040}]}]}, "elector.dev/port"),
        ({"spec.containers": [{"name": "app", "image": "a", "ports": [{"containerPort": 4041}]}]}, "elector.dev/probe-port"),
    ],
)
def test_invalid_input_is_refused_naming_the_annotation(changes, field):
    with pytest.raises(options.Refusal) as refusal:
        mutate(pod(**changes))
    assert refusal.value.field == field
    assert str(refusal.value).startswith(field + ":") and "accepted:" in str(refusal.value)


def test_custom_port_moves_env_args_and_probe_port():
    p = mutate(pod(**{"metadata.annotations": {"elector.dev/inject": "true", "elector.dev/port": "5050"}})).pod
    assert env_of(p["spec"]["containers"][0])["ELECTOR_PATH"] == "localhost:5050"
    assert "--probe-address=0.0.0.0:5051" in elector_of(p)["args"]


def test_env_only_into_the_named_containers():
    p = pod(**{
        "metadata.annotations": {"elector.dev/inject": "true", "elector.dev/containers": "worker"},
        "spec.containers": [{"name": "app", "image": "a"}, {"name": "worker", "image": "w"}],
    })
    app, worker = mutate(p).pod["spec"]["containers"]
    assert "env" not in app and "ELECTOR_PATH" in env_of(worker)


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"annotations": {"elector.dev/election": "batch"}, "labels": {"app": "other"}}, "batch"),
        ({"labels": {"app.kubernetes.io/name": "Shop_API", "app": "x"}}, "shop-api"),
        ({"labels": {"app": "cart"}}, "cart"),
        ({"labels": {"pod-template-hash": "abc12"}, "generateName": "web-abc12-",
          "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc12", "controller": True}]}, "web"),
        ({"labels": {"pod-template-hash": "zz999"}, "generateName": "web-zz999-",
          "ownerReferences": [{"kind": "ReplicaSet", "name": "web-zz999", "controller": True}]}, "web"),
        ({"ownerReferences": [{"kind": "StatefulSet", "name": "db", "controller": True}], "name": "db-0"}, "db"),
        ({"generateName": "nightly-"}, "nightly"),
    ],
)
def test_election_name(meta, expected):
    assert options.election_name({"metadata": meta}) == expected


BASE_ARGS = ["--election=web", "--election-namespace=shop", "--http=localhost:4040", "--probe-address=0.0.0.0:4041",
             "--lease-duration=15s", "--renew-deadline=10s", "--retry-period=2s"]


def feature_pod(**notes):
    """The fixture pod, opted in, with these `elector.dev/<key>` annotations (`_` in a key is `-`)."""
    return pod(**{"metadata.annotations": {"elector.dev/inject": "true",
                                           **{f"elector.dev/{k.replace('_', '-')}": v for k, v in notes.items()}}})


@pytest.mark.parametrize("notes", [
    {"leader_service": "web-leader"},
    {"leader_label": "true"},
    {"rollout_aware": "false"},
    {"rollout_aware": "true"},
    {"leader_service": "web-leader", "leader_label": "true", "rollout_aware": "false"},
])
def test_feature_annotations_give_the_sidecar_no_flag_and_no_pod_ip(notes):
    """The kube-elector controller reads these annotations from the pod itself; the elector only elects."""
    c = elector_of(mutate(feature_pod(**notes)).pod)
    assert c["args"] == BASE_ARGS
    assert [e["name"] for e in c["env"]] == ["ELECTOR_LOG_FORMAT", "POD_NAME", "POD_NAMESPACE", "POD_UID"]
    assert elector_of(mutate(feature_pod()).pod) == c  # the same sidecar as a pod without them


def test_feature_annotations_are_kept_on_the_pod_for_the_controller():
    notes = {"leader_service": "web-leader", "leader_label": "true", "rollout_aware": "false"}
    stored = mutate(feature_pod(**notes)).pod["metadata"]["annotations"]
    assert {k: stored[k] for k in ("elector.dev/leader-service", "elector.dev/leader-label",
                                   "elector.dev/rollout-aware")} == {"elector.dev/leader-service": "web-leader",
                                                                     "elector.dev/leader-label": "true",
                                                                     "elector.dev/rollout-aware": "false"}


def test_every_timing_the_pod_sets_is_an_arg_of_the_sidecar():
    notes = {"port": "5050", "lease_duration": "20s", "renew_deadline": "12s", "retry_period": "3s",
             "release_timeout": "7s", "election": "batch"}
    c = elector_of(mutate(feature_pod(**notes), namespace="jobs").pod)
    assert c["args"] == ["--election=batch", "--election-namespace=jobs", "--http=localhost:5050",
                         "--probe-address=0.0.0.0:5051", "--lease-duration=20s", "--renew-deadline=12s",
                         "--retry-period=3s", "--release-timeout=7s"]


def test_the_result_names_no_account_and_no_roles():
    """What the webhook returns is the pod only: nothing to grant, so nothing for anyone to act on."""
    fields = {f.name for f in dataclasses.fields(inject.Result)}
    assert fields == {"pod", "decision", "election", "warnings"}


def rollout_pod(value=None):
    """The fixture pod, opted in, with `elector.dev/rollout-aware: value` unless value is None."""
    return feature_pod(**({"rollout_aware": value} if value is not None else {}))


@pytest.mark.parametrize(("value", "aware"), [(None, True), ("true", True), ("false", False)])
def test_rollout_aware_annotation_is_read_with_true_as_default(value, aware):
    assert options.read(rollout_pod(value), SETTINGS).rollout_aware is aware


@pytest.mark.parametrize(("notes", "service", "label"), [
    ({}, None, False),
    ({"leader_service": "web-leader"}, "web-leader", False),
    ({"leader_label": "true"}, None, True),
    ({"leader_label": "false"}, None, False),
])
def test_routing_annotations_are_read(notes, service, label):
    opts = options.read(feature_pod(**notes), SETTINGS)
    assert (opts.leader_service, opts.leader_label) == (service, label)


@pytest.mark.parametrize("key", ["elector.dev/leader-service", "elector.dev/leader-label", "elector.dev/rollout-aware"])
def test_the_help_of_a_controller_annotation_says_the_controller_does_it(key):
    assert "kube-elector controller" in options.KNOWN[key]


@pytest.mark.parametrize("annotation, value", [
    ("elector.dev/leader-service", "Web_Leader"),
    ("elector.dev/leader-service", "1web"),
    ("elector.dev/leader-label", "yes"),
    ("elector.dev/rollout-aware", "yes"),
    ("elector.dev/rollout-aware", "False"),
    ("elector.dev/rollout-aware", ""),
])
def test_a_bad_feature_annotation_is_refused_by_name(annotation, value):
    with pytest.raises(options.Refusal) as refused:
        mutate(pod(**{"metadata.annotations": {"elector.dev/inject": "true", annotation: value}}))
    assert refused.value.field == annotation and "accepted:" in str(refused.value)


def test_a_bad_rollout_aware_value_names_the_accepted_values():
    with pytest.raises(options.Refusal) as refused:
        mutate(rollout_pod("on"))
    assert str(refused.value).startswith("elector.dev/rollout-aware: 'on' is not a boolean; accepted: \"true\" (default) or")
