"""Pods that bring their own elector parts, hostNetwork pods, and generated durations (plain dicts)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from elector.election import timings
from localplane.kube_elector.reviews import pod
from webhook import inject, options, settings

SETTINGS = settings.Settings()
MARKER = "elector.dev/injected"


def mutate(p, cfg=SETTINGS):
    return inject.mutate(p, namespace="shop", namespace_opted_in=False, settings=cfg)


def injected():
    return mutate(pod()).pod


def defaulted(p):
    """What the API server stores after our patch: the defaults it adds to our parts."""
    p = copy.deepcopy(p)
    elector = p["spec"]["initContainers"][0]
    elector["terminationMessagePath"] = "/dev/termination-log"
    for probe in ("startupProbe", "livenessProbe"):
        elector[probe]["successThreshold"] = 1
        elector[probe]["httpGet"]["scheme"] = "HTTP"
    return p


def test_our_own_parts_after_api_defaults_are_accepted_and_unchanged():
    once = defaulted(injected())
    again = mutate(once).pod
    assert again["spec"]["initContainers"] == once["spec"]["initContainers"]
    assert again["metadata"]["annotations"][MARKER] == settings.VERSION


HOSTILE_CHANGES = [
    ("image", "evil:1", ".image"),
    ("securityContext.privileged", True, ".securityContext.privileged"),
    ("securityContext.capabilities.add", ["NET_ADMIN"], ".securityContext.capabilities.add"),
    ("command", ["/bin/sh"], ".command"),
    ("args", ["--election=other"], ".args"),
    ("terminationMessagePath", "/elsewhere", ".terminationMessagePath"),
]


@pytest.mark.parametrize("path, value, where", HOSTILE_CHANGES)
def test_an_elector_container_we_did_not_make_is_refused_naming_the_field(path, value, where):
    p = injected()
    node = p["spec"]["initContainers"][0]
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    with pytest.raises(options.Refusal, match=r"spec\.initContainers\[0\] \(elector\): differs .* at " + where.replace(".", r"\.")):
        mutate(p)


def test_a_token_volume_of_the_authors_choosing_is_refused():
    p = injected()
    p["spec"]["volumes"] = [{"name": "elector-api-access", "hostPath": {"path": "/"}}]
    with pytest.raises(options.Refusal, match=r"spec\.volumes \(elector-api-access\)"):
        mutate(p)
    alone = pod(**{"spec.volumes": [{"name": "elector-api-access", "emptyDir": {}}]})
    with pytest.raises(options.Refusal, match="no 'elector' container"):
        mutate(alone)


def test_a_plain_elector_container_is_refused_and_never_marked():
    p = pod(**{"spec.containers": [{"name": "app", "image": "a"}, {"name": "elector", "image": "mine"}]})
    with pytest.raises(options.Refusal, match=r"spec\.containers\[1\] \(elector\): kube-elector injects it in spec\.initContainers"):
        mutate(p)


def test_an_identical_copy_is_not_marked_as_ours():
    p = injected()
    del p["metadata"]["annotations"][MARKER]
    again = mutate(p).pod
    assert MARKER not in again["metadata"]["annotations"]


def test_host_network_refused_by_default_and_bound_to_localhost_when_allowed():
    p = pod(**{"spec.hostNetwork": True})
    with pytest.raises(options.Refusal, match=r"spec\.hostNetwork: .*accepted: hostNetwork: false, or .*allow_host_network"):
        mutate(p)
    result = mutate(p, settings.Settings(allow_host_network=True))
    elector = result.pod["spec"]["initContainers"][0]
    assert "--probe-address=127.0.0.1:4041" in elector["args"]
    assert elector["livenessProbe"]["httpGet"]["host"] == "127.0.0.1"
    assert "ports" not in elector  # a containerPort would claim the node's port
    assert mutate(result.pod, settings.Settings(allow_host_network=True)).pod == result.pod


# ------------------------------------------------------------------ generated durations

units = st.sampled_from(["ns", "us", "µs", "ms", "s", "m", "h", "", "S", "sec", " s", "d"])
numbers = st.one_of(st.integers(-10, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["", ".", "1.", ".5", "1e3", "0x10", "inf", "nan", "-0", "1_0"]))
durations = st.one_of(st.lists(st.tuples(numbers, units).map("".join), min_size=1, max_size=3).map("".join),
                      st.text(max_size=40))
keys = st.sampled_from([options.LEASE_DURATION, options.RENEW_DEADLINE, options.RETRY_PERIOD, options.RELEASE_TIMEOUT])


@hsettings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, durations, min_size=1, max_size=4))
def test_a_duration_is_admitted_only_if_the_elector_will_start_with_it(notes):
    """Admitted -> every timing parses and is in range (so the elector starts); refused -> names the field."""
    p = pod(**{"metadata.annotations": {"elector.dev/inject": "true", **notes}})
    try:
        result = mutate(p)
    except options.Refusal as refusal:
        assert refusal.field in notes, (refusal.field, notes)
        return
    args = dict(a.split("=", 1) for a in result.pod["spec"]["initContainers"][0]["args"])
    parsed = {name: timings.parse(args["--" + name]) for name in ("lease-duration", "renew-deadline", "retry-period")}
    timings.check_timings(parsed["lease-duration"], parsed["renew-deadline"], parsed["retry-period"])
    if "--release-timeout" in args:
        timings.check("release-timeout", timings.parse(args["--release-timeout"]))


containers = st.fixed_dictionaries({"name": st.sampled_from(["elector", "app", "other"]),
                                    "image": st.sampled_from(["a", SETTINGS.image])},
                                   optional={"securityContext": st.just({"privileged": True}),
                                             "restartPolicy": st.just("Always")})


@hsettings(max_examples=300, deadline=None)
@given(init=st.lists(containers, max_size=2), main=st.lists(containers, min_size=1, max_size=2),
       volume=st.sampled_from([None, {"name": "elector-api-access", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]))
def test_pre_existing_parts_are_ours_or_refused_never_adopted(init, main, volume):
    p = pod(**{"spec.initContainers": init, "spec.containers": main, "spec.volumes": [volume] if volume else []})
    try:
        result = mutate(p)
    except options.Refusal as refusal:
        assert refusal.field.startswith("spec.")
        return
    ours = injected()["spec"]["initContainers"][0]
    electors = [c for c in result.pod["spec"]["initContainers"] + result.pod["spec"]["containers"] if c["name"] == "elector"]
    assert electors == [ours]  # exactly one, and exactly ours
    assert result.pod["metadata"]["annotations"][MARKER] == settings.VERSION
