"""The status view's rows, warnings and output, from plain objects (no API server)."""
from __future__ import annotations

import datetime
import json

import pytest
import yaml

from elector.election import record
from kubectl_elector import cli, output, reads, summary

NOW = datetime.datetime(2026, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def lease(name, holder, *, renewed=1.0, acquired=300.0, duration=15, transitions=4, ns="team"):
    stamp = lambda ago: record.format_micro_time(NOW - datetime.timedelta(seconds=ago))  # noqa: E731
    return {"metadata": {"namespace": ns, "name": name},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "leaseTransitions": transitions,
                     "acquireTime": stamp(acquired), "renewTime": stamp(renewed)}}


def pod(name, election, *, ready=True, ns="team", phase="Running"):
    return {"metadata": {"namespace": ns, "name": name, "labels": {"elector.dev/election": election}},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def event(name, count=None, *, ns="team", component="kube-elector", minutes_ago=10):
    body = {"reason": "LeaderElection", "reportingComponent": component,
            "involvedObject": {"kind": "Lease", "namespace": ns, "name": name},
            "eventTime": record.format_micro_time(NOW - datetime.timedelta(minutes=minutes_ago))}
    if count:
        body["series"] = {"count": count}
    return body


def rows(leases, pods, events=()):
    snap = reads.Snapshot(leases=list(leases), pods=list(pods), events=None if events is None else list(events),
                          taken=NOW)
    return {row.name: row for row in summary.summarize(snap)}


def test_a_healthy_election():
    (row,) = rows([lease("pay", "pay-1")], [pod("pay-1", "pay"), pod("pay-2", "pay")],
                  [event("pay", minutes_ago=30), event("pay", 3, minutes_ago=5), event("pay", component="other"),
                   event("other")]).values()
    assert (row.leader, row.term, row.leading_for, row.ready, len(row.candidates)) == ("pay-1", 4, 300.0, 2, 2)
    assert row.transitions == 4 and row.transitions_since == NOW - datetime.timedelta(minutes=30)
    assert row.warnings == ()


def test_each_warning():
    found = rows(
        [lease("free", ""), lease("stale", "stale-1", renewed=16), lease("sick", "sick-1"),
         lease("gone", "gone-1"), lease("orphan", "x")],
        [pod("free-1", "free"), pod("stale-1", "stale"), pod("sick-1", "sick", ready=False),
         pod("gone-2", "gone"), pod("new-1", "new"), pod("done-1", "orphan", phase="Succeeded")],
        events=None)
    assert found["free"].warnings == (summary.NO_LEADER,)
    assert found["stale"].warnings == (summary.EXPIRED,) and found["stale"].leading_for is None
    assert found["sick"].warnings == (summary.LEADER_NOT_READY,)
    assert found["gone"].warnings == (summary.LEADER_NOT_READY,)  # the holder is no candidate at all
    assert found["new"].warnings == (summary.NO_LEASE,) and found["new"].term is None
    assert found["orphan"].warnings == (summary.NO_CANDIDATES,)  # a finished pod is no candidate
    assert found["free"].transitions is None  # Events not readable


def test_table_wide_json_and_yaml():
    found = rows([lease("pay", "pay-1"), lease("free", "")], [pod("pay-1", "pay"), pod("pay-2", "pay", ready=False)],
                 [event("pay", 2)])
    ordered = [found["free"], found["pay"]]
    text = output.table(ordered, all_namespaces=True)
    lines = text.splitlines()
    assert lines[0].split() == ["NAMESPACE", "ELECTION", "LEADER", "TERM", "LEADING", "FOR", "TRANSITIONS",
                                "CANDIDATES", "STATUS"]
    assert lines[1].split() == ["team", "free", "<none>", "4", "-", "0", "0/0", "!", "no", "leader,", "no",
                                "candidates"]
    assert lines[2].split() == ["team", "pay", "pay-1", "4", "5m", "2", "1/2", "OK"]
    assert len({line.index("LEADER") if i == 0 else None for i, line in enumerate(lines)}) == 2
    wide = output.table(ordered, all_namespaces=False, wide=True).splitlines()
    assert "RENEWED" in wide[0] and "pay-2(not ready)" in wide[2] and not wide[0].startswith("NAMESPACE")
    doc = output.document(found["pay"])
    assert doc["candidates"] == {"ready": 1, "total": 2, "pods": [{"name": "pay-1", "ready": True},
                                                                   {"name": "pay-2", "ready": False}]}
    assert json.loads(output.dumps({"items": [doc]}, "json"))["items"][0] == doc
    assert yaml.safe_load(output.dumps({"items": [doc]}, "yaml"))["items"][0] == doc


@pytest.mark.parametrize("seconds, text", [(None, "-"), (5, "5s"), (119, "119s"), (192, "3m12s"), (600, "10m"),
                                           (3 * 3600 + 60, "3h1m"), (10 * 3600, "10h"), (50 * 3600, "2d2h")])
def test_durations_read_like_kubectl(seconds, text):
    assert output.duration(seconds) == text


def test_bad_arguments_and_a_missing_kubeconfig(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exited:
        cli.main(["status", "-n", "a", "-A"])
    assert exited.value.code == 2
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    assert cli.main(["status"]) == 1
    assert "no such file" in capsys.readouterr().err
