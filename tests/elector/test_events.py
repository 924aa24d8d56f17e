"""Events on the Lease: notes, series aggregation and the rate limit (pure; the controller writes them)."""
from __future__ import annotations

import datetime

import pytest

from elector.election import events

pytestmark = pytest.mark.timeout(30)
WALL = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("cause, previous, action, note", [
    ("created", "", "Create", "b became leader (term 0): created the Lease"),
    ("released", "a", "Acquire", "b became leader (term 0): a released the Lease"),
    ("released", "", "Acquire", "b became leader (term 0): the Lease was free"),
    ("expired", "a", "TakeOver", "b became leader (term 0): a stopped renewing: its lease expired"),
    ("expired", "b", "Acquire", "b became leader (term 0): took its own Lease back (its earlier term had run out)"),
])
def test_became_leader_notes(cause, previous, action, note):
    spec = events.became_leader("b", term=0, cause=cause, previous=previous)
    assert (spec.action, spec.note, spec.reason, spec.type) == (action, note, "LeaderElection", "Normal")


def test_first_occurrence_is_a_new_event_on_the_lease():
    correlator = events.Correlator(namespace="ns", lease="app", instance="app-1")
    spec = events.became_leader("app-1", term=3, cause="released", previous="app-0")
    decision = correlator.decide(spec, lease_uid="u-1", now=0, wall=WALL)
    assert decision.verb == "create" and decision.name == f"app.{int(WALL.timestamp() * 1e9):x}"
    assert decision.body == {
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": decision.name, "namespace": "ns"},
        "eventTime": "2026-05-01T12:00:00.000000Z",
        "reportingController": "kube-elector", "reportingInstance": "app-1",
        "action": "Acquire", "reason": "LeaderElection", "type": "Normal",
        "note": "app-1 became leader (term 3): app-0 released the Lease",
        "regarding": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "namespace": "ns", "name": "app",
                      "uid": "u-1"},
    }


def test_identical_repeats_count_in_a_series_until_the_window_ends():
    correlator = events.Correlator(namespace="ns", lease="app", instance="app-1")
    spec = events.became_leader("app-1", term=0, cause="created", previous="")
    first = correlator.decide(spec, lease_uid="u", now=0, wall=WALL)
    second = correlator.decide(spec, lease_uid="u", now=10, wall=WALL + datetime.timedelta(seconds=10))
    third = correlator.decide(spec, lease_uid="u", now=20, wall=WALL + datetime.timedelta(seconds=20))
    assert (second.verb, second.name) == ("patch", first.name)
    assert second.body == {"series": {"count": 2, "lastObservedTime": "2026-05-01T12:00:10.000000Z"}}
    assert third.body["series"]["count"] == 3
    other = correlator.decide(events.became_leader("app-1", term=1, cause="expired", previous="app-2"),
                              lease_uid="u", now=30, wall=WALL)
    assert other.verb == "create"  # another note: another Event
    later = correlator.decide(spec, lease_uid="u", now=20 + events.SERIES_WINDOW + 1, wall=WALL)
    assert later.verb == "create"  # the series ended
    correlator.forget(later.name)
    assert correlator.decide(spec, lease_uid="u", now=400, wall=WALL).verb == "create"


def test_a_flapping_election_is_rate_limited_and_a_series_keeps_its_count():
    correlator = events.Correlator(namespace="ns", lease="app", instance="p")
    verbs = [correlator.decide(events.became_leader("p", term=n, cause="created", previous=""),
                               lease_uid="u", now=0, wall=WALL).verb for n in range(30)]
    assert verbs == ["create"] * events.BURST + ["drop"] * 5
    spec = events.became_leader("p", term=0, cause="created", previous="")
    assert correlator.decide(spec, lease_uid="u", now=1, wall=WALL).verb == "drop"  # count 2, not sent
    patch = correlator.decide(spec, lease_uid="u", now=1 + events.REFILL_SECONDS, wall=WALL)
    assert patch.verb == "patch" and patch.body["series"]["count"] == 3
