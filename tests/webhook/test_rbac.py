"""The shipped RBAC agrees with the roles the webhook binds (manifests/, read as files)."""

from pathlib import Path

import yaml

from webhook import kube, settings

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def objects(name):
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all((MANIFESTS / name).read_text()) if o}


def test_the_rollout_role_only_lists_and_watches_pods():
    role = objects("rbac-election.yaml")[("ClusterRole", "kube-elector-rollout")]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}]


def test_the_webhook_may_bind_exactly_the_roles_it_binds():
    shipped = {name for kind, name in objects("rbac-election.yaml") if kind == "ClusterRole"}
    webhook = objects("rbac-webhook.yaml")[("ClusterRole", "kube-elector-webhook")]
    (bind,) = [r for r in webhook["rules"] if r["verbs"] == ["bind"]]
    wanted = {settings.Settings().election_cluster_role, *kube.FEATURE_ROLES.values()}
    assert set(bind["resourceNames"]) == wanted == shipped
