"""The shipped alerts only use metric names the sidecar exports."""
import re
from pathlib import Path

import yaml

from elector.kube import apimetrics
from elector.ops import metrics
from elector.ops import procmetrics

RULE = Path(__file__).resolve().parents[2] / "manifests" / "components" / "prometheus-rule" / "prometheusrule.yaml"


def test_alerts_reference_exported_metrics(tmp_path):
    rule = yaml.safe_load(RULE.read_text())
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"KubeElectorNoLeader", "KubeElectorLeaderFlapping", "KubeElectorRenewErrors",
                           "KubeElectorSidecarMemoryHigh"}
    assert alerts["KubeElectorNoLeader"]["for"] == "1m"
    limit = tmp_path / "memory.max"
    limit.write_text("67108864\n")
    exposition = (metrics.render(metrics.Metrics(), name="e", is_leader=True, has_leader=True)
                  + procmetrics.render(limit_files=(str(limit),)) + apimetrics.ApiMetrics().render())
    exported = set(re.findall(r"^(\w+)[{ ]", exposition, re.M))
    used = {name for r in alerts.values()
            for name in re.findall(r"\b((?:leader_election|elector|process|rest_client)_\w+)\b", r["expr"])}
    assert used and used <= exported, used - exported
    assert {"elector_renew_errors_total", "process_resident_memory_bytes", "elector_memory_limit_bytes"} <= used
