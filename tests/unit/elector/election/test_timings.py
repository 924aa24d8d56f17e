"""The one duration grammar: what the webhook admits is what the elector starts with."""
import pytest

from elector import settings
from elector.election import timings
from webhook import options
from webhook.settings import Settings

BASE = ["--election=e", "--election-namespace=ns"]


@pytest.mark.parametrize("text, seconds", [
    ("15s", 15), ("1m30s", 90), ("500ms", 0.5), ("0", 0), ("1h", 3600), ("1.5s", 1.5), ("250us", 0.00025),
    (".5s", 0.5), ("1h0m0s", 3600),
])
def test_go_durations(text, seconds):
    assert timings.parse(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["15", "s", "1x", "", "1s2", "-1s", "+1s", "1e3s", "9" * 400 + "h", "1" * 40 + "s",
                                  "inf", "nan", "1 s"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="e.g. 15s"):
        timings.parse(text)


@pytest.mark.parametrize("lease, renew, retry, wrong", [
    ("15s", "10s", "2s", None), ("3s", "2s", "500ms", None), ("10m", "9m59s", "1m", None),
    ("2500ms", "1s", "100ms", "lease-duration"),  # the Lease stores whole seconds
    ("1500ms", "1s", "100ms", "lease-duration"),
    ("1s", "500ms", "100ms", "lease-duration"), ("11m", "10s", "2s", "lease-duration"),
    ("15s", "14500ms", "2s", "renew-deadline"),  # no margin for a leader to stop before expiry
    ("15s", "500ms", "100ms", "renew-deadline"),
    ("15s", "10s", "1ms", "retry-period"),  # a thousand Lease writes a second
    ("15s", "10s", "9s", "retry-period"), ("15m", "10m", "2m", "lease-duration"),
])
def test_webhook_and_elector_agree_on_every_timing(lease, renew, retry, wrong):
    pod = {"metadata": {"name": "p", "labels": {"app": "web"}, "annotations": {
        options.INJECT: "true", options.LEASE_DURATION: lease, options.RENEW_DEADLINE: renew,
        options.RETRY_PERIOD: retry}}, "spec": {"containers": [{"name": "app"}]}}
    args = [*BASE, f"--lease-duration={lease}", f"--renew-deadline={renew}", f"--retry-period={retry}"]
    if wrong is None:
        options.read(pod, Settings())
        settings.parse(args, {})
        return
    with pytest.raises(options.Refusal) as refused:
        options.read(pod, Settings())
    assert refused.value.field == f"elector.dev/{wrong}"
    assert "accepted: a duration" in str(refused.value)
    with pytest.raises(settings.SettingsError, match=f"^--{wrong}: "):
        settings.parse(args, {})


@pytest.mark.parametrize("text, ok", [("0", True), ("20s", True), ("10m", True), ("500ms", False), ("11m", False)])
def test_release_timeout_range(text, ok):
    pod = {"metadata": {"name": "p", "labels": {"app": "web"}, "annotations": {
        options.INJECT: "true", options.RELEASE_TIMEOUT: text}}, "spec": {"containers": [{"name": "app"}]}}
    if ok:
        options.read(pod, Settings())
        assert settings.parse([*BASE, f"--release-timeout={text}"], {}).release_timeout == timings.parse(text)
        return
    with pytest.raises(options.Refusal, match="elector.dev/release-timeout: .*out of range"):
        options.read(pod, Settings())
    with pytest.raises(settings.SettingsError, match="^--release-timeout: .*out of range"):
        settings.parse([*BASE, f"--release-timeout={text}"], {})


def test_ranges_in_one_place_are_the_documented_ones():
    doc = open("docs/elector.md", encoding="utf-8").read()
    for name, allowed in timings.RANGES.items():
        assert f"| `{name}` | {allowed.describe()} |" in doc, f"docs/elector.md: the row of {name}"


@pytest.mark.parametrize("given, expected", [
    ("0", 6.0), ("2s", 2.0), ("6s", 6.0), ("1s", None), ("6001ms", None), ("6m", None)])
def test_renew_interval_from_the_retry_period_to_two_retries_before_the_deadline(given, expected):
    pod = {"metadata": {"name": "p", "labels": {"app": "web"}, "annotations": {
        options.INJECT: "true", options.RENEW_INTERVAL: given}}, "spec": {"containers": [{"name": "app"}]}}
    args = [*BASE, f"--renew-interval={given}"]
    if expected is not None:
        assert options.read(pod, Settings()).renew_interval == given
        assert settings.parse(args, {}).election.renew_every == expected
        return
    with pytest.raises(options.Refusal, match="^elector.dev/renew-interval: "):
        options.read(pod, Settings())
    with pytest.raises(settings.SettingsError, match="^--renew-interval: "):
        settings.parse(args, {})


@pytest.mark.parametrize("lease, renew, retry, every", [(15, 10, 2, 6), (3, 2, 0.5, 1), (2, 1, 0.3, 0.5),
                                                        (60, 40, 2, 24), (11, 10, 5, 5), (5, 3, 1, 1.5),
                                                        (6, 4, 0.5, 2.4)])
def test_the_derived_renew_interval_leaves_room_to_retry(lease, renew, retry, every):
    assert timings.renew_interval(lease, renew, retry) == pytest.approx(every)
    # after a failed renewal, two retries (or half the deadline of them) before the claim ends
    assert retry <= every <= renew - min(2 * retry, renew / 2) or every == retry
