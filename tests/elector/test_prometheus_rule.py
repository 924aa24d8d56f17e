"""The shipped alerts only use metric names the sidecar exports."""
import re
from pathlib import Path

import yaml

from elector import metrics

RULE = Path(__file__).resolve().parents[2] / "manifests" / "components" / "prometheus-rule" / "prometheusrule.yaml"


def test_alerts_reference_exported_metrics():
    rule = yaml.safe_load(RULE.read_text())
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"KubeElectorNoLeader", "KubeElectorLeaderFlapping"}
    assert alerts["KubeElectorNoLeader"]["for"] == "1m"
    exported = set(re.findall(r"^(\w+)\{", metrics.render(metrics.Metrics(), name="e", is_leader=True,
                                                            has_leader=True), re.M))
    used = {name for r in alerts.values() for name in re.findall(r"\b(leader_election_\w+|elector_\w+)\b", r["expr"])}
    assert used and used <= exported, used - exported
