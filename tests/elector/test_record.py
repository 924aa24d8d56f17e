import datetime

import pytest

from elector.election import record

UTC = datetime.timezone.utc


@pytest.mark.parametrize("moment, text", [
    (datetime.datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=UTC), "2026-01-02T03:04:05.000000Z"),
    (datetime.datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC), "2026-01-02T03:04:05.000007Z"),
    (datetime.datetime(2026, 1, 2, 5, 4, 5, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
     "2026-01-02T03:04:05.123456Z"),
])
def test_micro_time_always_has_six_digits_in_utc(moment, text):
    assert record.format_micro_time(moment) == text


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        record.format_micro_time(datetime.datetime(2026, 1, 1))


@pytest.mark.parametrize("text, micros", [
    ("2026-01-02T03:04:05.123456Z", 123456),
    ("2026-01-02T03:04:05Z", 0),
    ("2026-01-02T03:04:05.1Z", 100000),
    ("2026-01-02T03:04:05.123456789Z", 123456),
    ("2026-01-02T05:04:05.000001+02:00", 1),
])
def test_parse_micro_time(text, micros):
    parsed = record.parse_micro_time(text)
    assert parsed is not None and parsed.microsecond == micros
    assert parsed.astimezone(UTC).hour == 3


@pytest.mark.parametrize("text", [None, "", "yesterday", "2026-13-02T03:04:05Z"])
def test_parse_micro_time_rejects(text):
    assert record.parse_micro_time(text) is None


def test_spec_round_trip_keeps_client_go_fields():
    spec = {"holderIdentity": "a", "leaseDurationSeconds": 15, "acquireTime": "2026-01-02T03:04:05.000000Z",
            "renewTime": "2026-01-02T03:04:07.500000Z", "leaseTransitions": 3,
            "strategy": "OldestEmulationVersion", "preferredHolder": "b"}
    assert record.spec_from_record(record.record_from_spec(spec)) == spec


def test_empty_spec_and_optional_fields():
    rec = record.record_from_spec(None)
    assert rec == record.LeaderElectionRecord()
    assert record.spec_from_record(rec) == {"holderIdentity": "", "leaseDurationSeconds": 0, "leaseTransitions": 0}


def test_release_record_is_client_go_s():
    now = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    rec = record.LeaderElectionRecord("a", 15, now, now, 4, "OldestEmulationVersion", "b")
    out = record.released(rec, now=now)
    assert (out.holder_identity, out.lease_duration_seconds, out.leader_transitions) == ("", 1, 4)
    assert out.preferred_holder == "" and out.strategy == "OldestEmulationVersion"


def test_canonical_ignores_key_order():
    assert record.canonical({"a": 1, "b": 2}) == record.canonical({"b": 2, "a": 1})
