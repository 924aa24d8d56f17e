"""The webhook's settings: 0.1's RBAC settings are accepted, ignored and named in a warning; other unknown keys still fail."""

from pathlib import Path

import pytest
import yaml

from webhook import settings

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests"


def config(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return ["--config", str(path)]


def test_version_and_default_image_tag():
    assert settings.VERSION == "0.2.0"
    assert settings.Settings().image == "ghcr.io/kube-elector/elector:0.2.0"


def test_the_rbac_settings_are_gone():
    fields = set(settings.Settings.model_fields)
    assert not {"manage_role_bindings", "election_cluster_role"} & fields
    assert set(settings.REMOVED) == {"manage_role_bindings", "election_cluster_role"}


@pytest.mark.parametrize("value", ["true", "false"])
def test_an_old_config_file_with_manage_role_bindings_still_loads_and_says_so(tmp_path, value):
    cfg = settings.load(config(tmp_path, f"manage_role_bindings: {value}\nport: 5000\nprobe_port: 5001\n"))
    assert (cfg.port, cfg.probe_port) == (5000, 5001)  # the rest of the file is read as before
    assert cfg.removed_settings == {"manage_role_bindings": value == "true"}


def test_election_cluster_role_too(tmp_path):
    cfg = settings.load(config(tmp_path, "election_cluster_role: my-role\n"))
    assert cfg.removed_settings == {"election_cluster_role": "my-role"}


@pytest.mark.parametrize(("argv", "removed", "rest"), [
    (["--no-manage-role-bindings", "--cert-mode", "files"], {"manage_role_bindings": False}, "files"),
    (["--manage-role-bindings", "--cert-mode", "files"], {"manage_role_bindings": True}, "files"),
    (["--manage-role-bindings=false", "--cert-mode=files"], {"manage_role_bindings": "false"}, "files"),
    (["--election-cluster-role", "r", "--cert-mode", "self-managed"], {"election_cluster_role": "r"}, "self-managed"),
    (["--cert-mode", "files", "--election-cluster-role=r"], {"election_cluster_role": "r"}, "files"),
])
def test_the_old_flags_are_taken_out_before_the_others_are_parsed(argv, removed, rest):
    cfg = settings.load(argv)
    assert cfg.removed_settings == removed and cfg.cert_mode == rest


def test_the_old_environment_variable(monkeypatch):
    monkeypatch.setenv("KUBE_ELECTOR_MANAGE_ROLE_BINDINGS", "false")
    assert settings.load([]).removed_settings == {"manage_role_bindings": "false"}


def test_a_current_config_names_nothing_removed(tmp_path):
    assert settings.load(config(tmp_path, "port: 5000\nprobe_port: 5001\n")).removed_settings == {}
    assert settings.Settings().removed_settings == {}


def test_a_misspelt_key_still_fails_naming_it(tmp_path):
    with pytest.raises(settings.SettingsError, match="manage_role_binding: Extra inputs are not permitted"):
        settings.load(config(tmp_path, "manage_role_binding: true\n"))


def test_an_unknown_flag_still_fails():
    with pytest.raises(SystemExit):
        settings.load(["--manage-rolebindings"])


@pytest.mark.parametrize("key", sorted(settings.REMOVED))
def test_the_fix_is_named(key):
    assert settings.REMOVED[key].startswith("remove it: the kube-elector controller manages RBAC now")


def test_the_shipped_config_has_no_removed_setting():
    shipped = yaml.safe_load(yaml.safe_load((MANIFESTS / "configmap.yaml").read_text())["data"]["config.yaml"])
    assert not set(settings.REMOVED) & set(shipped), "manifests/configmap.yaml still sets a removed setting"
    settings.Settings(**shipped)  # and everything else in it is a setting
