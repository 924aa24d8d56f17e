"""The webhook's settings: sources and precedence, the flag/env/file forms, every kind of check, and 0.1's RBAC
settings accepted, ignored and named in a warning while other unknown keys still fail."""

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from webhook import settings

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests"


@pytest.fixture(autouse=True)
def no_settings_in_env(monkeypatch):
    """Each test sees only the KUBE_ELECTOR_* variables it sets."""
    for name in list(os.environ):
        if name.upper().startswith("KUBE_ELECTOR_"):
            monkeypatch.delenv(name)


def config(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return ["--config", str(path)]


def test_version_and_default_image_tag():
    assert settings.VERSION == "0.2.0"
    assert settings.Settings().image == "ghcr.io/kube-elector/elector:0.2.0"


# ----------------------------------------------------------------------------------------- defaults, types


def test_the_defaults():
    cfg = settings.load([])
    assert dataclasses.asdict(cfg) == {
        "image": "ghcr.io/kube-elector/elector:0.2.0", "image_pull_policy": "IfNotPresent", "native_sidecar": True,
        "port": 4040, "probe_port": 4041, "run_as_user": 65532,
        "resources": {"cpu_request": "10m", "memory_request": "32Mi", "memory_limit": "64Mi"},
        "election": {"lease_duration": "15s", "renew_deadline": "10s", "retry_period": "2s"},
        "token_expiration_seconds": 3607, "excluded_namespaces": ["kube-system", "kube-public", "kube-node-lease"],
        "allow_host_network": False, "host": "0.0.0.0", "listen_port": 10250,
        "tls_cert_file": Path("/etc/kube-elector/tls/tls.crt"), "tls_key_file": Path("/etc/kube-elector/tls/tls.key"),
        "cert_mode": "files", "cert_reload_seconds": 30.0, "shutdown_drain_seconds": 3.0, "workers": 0,
        "namespace": "kube-elector", "service_name": "kube-elector-webhook",
        "cert_secret_name": "kube-elector-webhook-tls", "cert_extra_dns": [], "cert_extra_ips": [],
        "webhook_configuration_name": "kube-elector", "kubeconfig": None, "request_timeout_seconds": 10.0,
        "max_body_bytes": 3 * 1024 * 1024,
        "limits": {"max_connections": 400, "max_handshakes": 200, "handshake_timeout_seconds": 5.0,
                   "close_timeout_seconds": 5.0, "max_head_bytes": 8192, "head_timeout_seconds": 5.0,
                   "idle_timeout_seconds": 30.0, "body_budget_bytes": 48 * 1024 * 1024, "backlog": 2048},
        "log_level": "info",
    }
    assert cfg == settings.Settings() and cfg.limits == settings.Limits()


def test_strings_from_env_and_flags_become_the_field_types(tmp_path):
    cfg = settings.load(["--port", "5000", "--cert-reload-seconds", "2.5", "--tls-cert-file", "rel/tls.crt",
                         "--kubeconfig", str(tmp_path / "kc"), "--cert-extra-dns", "a.example"],
                        environ={"KUBE_ELECTOR_LIMITS__BACKLOG": "100", "KUBE_ELECTOR_NATIVE_SIDECAR": "no"})
    assert (cfg.port, cfg.cert_reload_seconds, cfg.limits.backlog, cfg.native_sidecar) == (5000, 2.5, 100, False)
    assert type(cfg.port) is int and type(cfg.cert_reload_seconds) is float and type(cfg.limits.backlog) is int
    assert cfg.tls_cert_file == Path("rel/tls.crt") and cfg.kubeconfig == tmp_path / "kc"
    assert isinstance(cfg.tls_key_file, Path) and type(cfg.cert_extra_dns) is list
    assert isinstance(cfg.limits, settings.Limits) and isinstance(cfg.election, settings.ElectionDefaults)
    assert settings.load(["--kubeconfig", "null"]).kubeconfig is None


def test_made_directly_the_values_are_converted_and_checked_too():
    cfg = settings.Settings(port="5000", limits={"max_connections": 50}, election={"lease_duration": "20s"})
    assert cfg.port == 5000 and cfg.limits == settings.Limits(max_connections=50)
    assert cfg.election.lease_duration == "20s" and cfg.limits.backlog == 2048
    assert settings.Limits(max_handshakes=10, handshake_timeout_seconds=2.0).max_handshakes == 10
    with pytest.raises(settings.SettingsError, match=r"^invalid settings: port: must be >= 1024, not 80$"):
        settings.Settings(port=80)
    with pytest.raises(settings.SettingsError, match=r"^invalid settings: max_handshakes: must be >= 10, not 9$"):
        settings.Limits(max_handshakes=9)
    with pytest.raises(TypeError):
        settings.Settings(prot=5000)  # a misspelt keyword


def test_the_objects_are_frozen():
    cfg = settings.load([])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.port = 5000  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.limits.max_connections = 10  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.election.lease_duration = "20s"  # type: ignore[misc]


def test_a_list_default_is_not_shared():
    one, two = settings.Settings(), settings.Settings()
    one.excluded_namespaces.append("mine")
    assert two.excluded_namespaces == ["kube-system", "kube-public", "kube-node-lease"]


# ------------------------------------------------------------------------------------ sources, precedence


def test_flags_over_env_over_file_over_defaults(tmp_path):
    argv = [*config(tmp_path, "port: 5003\nprobe_port: 5013\nworkers: 3\n"), "--port", "5001"]
    cfg = settings.load(argv, environ={"KUBE_ELECTOR_PORT": "5002", "KUBE_ELECTOR_PROBE_PORT": "5012"})
    assert (cfg.port, cfg.probe_port, cfg.workers, cfg.listen_port) == (5001, 5012, 3, 10250)


def test_os_environ_is_the_default_env(monkeypatch):
    monkeypatch.setenv("KUBE_ELECTOR_LISTEN_PORT", "8443")
    assert settings.load([]).listen_port == 8443


def test_the_env_names_the_config_file_unless_a_flag_does(tmp_path):
    from_env = tmp_path / "env.yaml"
    from_env.write_text("workers: 2\n")
    assert settings.load([], environ={"KUBE_ELECTOR_CONFIG": str(from_env)}).workers == 2
    flag = config(tmp_path, "workers: 3\n")
    assert settings.load(flag, environ={"KUBE_ELECTOR_CONFIG": str(from_env)}).workers == 3
    assert settings.load([f"--config={flag[1]}"]).workers == 3


def test_env_names_in_any_case_and_other_variables_ignored():
    cfg = settings.load([], environ={"kube_elector_port": "5000", "KUBE_ELECTOR_WEBHOOK_SERVICE_HOST": "10.0.0.1",
                                    "KUBE_ELECTOR_Limits__Backlog": "100"})
    assert (cfg.port, cfg.limits.backlog) == (5000, 100)


def test_a_group_merges_field_by_field_across_sources(tmp_path):
    argv = [*config(tmp_path, "limits:\n  max_handshakes: 60\n  backlog: 99\n"), "--limits.backlog", "100"]
    cfg = settings.load(argv, environ={"KUBE_ELECTOR_LIMITS__MAX_CONNECTIONS": "50"})
    assert (cfg.limits.max_connections, cfg.limits.max_handshakes, cfg.limits.backlog) == (50, 60, 100)
    assert cfg.limits.idle_timeout_seconds == 30.0  # the rest of the group: defaults


@pytest.mark.parametrize("argv", [
    ["--limits.max-connections", "50", "--election.lease-duration", "20s", "--resources.cpu-request", "20m"],
    ["--limits.max-connections=50", "--election.lease-duration=20s", "--resources.cpu-request=20m"],
    ["--limits", '{"max_connections": 50}', "--election", '{"lease_duration": "20s"}',
     "--resources", '{"cpu_request": "20m"}'],
])
def test_nested_flags(argv):
    cfg = settings.load(argv)
    assert (cfg.limits.max_connections, cfg.election.lease_duration, cfg.resources.cpu_request) == (50, "20s", "20m")
    assert cfg.limits.backlog == 2048 and cfg.election.renew_deadline == "10s"


def test_a_groups_field_flags_win_over_its_json_whatever_the_order():
    for argv in (["--limits", '{"backlog": 99, "max_connections": 50}', "--limits.backlog", "100"],
                 ["--limits.backlog", "100", "--limits", '{"backlog": 99, "max_connections": 50}']):
        assert (settings.load(argv).limits.backlog, settings.load(argv).limits.max_connections) == (100, 50)


def test_nested_env():
    env = {"KUBE_ELECTOR_ELECTION__LEASE_DURATION": "20s", "KUBE_ELECTOR_ELECTION__RENEW_DEADLINE": "12s",
           "KUBE_ELECTOR_LIMITS": '{"max_connections": 50, "backlog": 99}', "KUBE_ELECTOR_LIMITS__BACKLOG": "100"}
    cfg = settings.load([], environ=env)
    assert (cfg.election.lease_duration, cfg.election.renew_deadline) == ("20s", "12s")
    assert (cfg.limits.max_connections, cfg.limits.backlog) == (50, 100)


# ------------------------------------------------------------------------------------------- booleans, lists


@pytest.mark.parametrize(("argv", "native", "host_network"), [
    ([], True, False),
    (["--no-native-sidecar", "--allow-host-network"], False, True),
    (["--native-sidecar", "--no-allow-host-network"], True, False),
    (["--no-native-sidecar", "--native-sidecar"], True, False),  # the last one wins
])
def test_boolean_flags(argv, native, host_network):
    cfg = settings.load(argv)
    assert (cfg.native_sidecar, cfg.allow_host_network) == (native, host_network)


def test_a_boolean_flag_takes_no_value(capsys):
    with pytest.raises(SystemExit) as info:
        settings.load(["--native-sidecar=false"])
    assert info.value.code == 2 and "--native-sidecar" in capsys.readouterr().err


@pytest.mark.parametrize("word", ["true", "True", "1", "yes", "on", "false", "FALSE", "0", "no", "off"])
def test_booleans_from_env(word):
    expected = word.lower() in ("true", "1", "yes", "on")
    assert settings.load([], environ={"KUBE_ELECTOR_ALLOW_HOST_NETWORK": word}).allow_host_network is expected


@pytest.mark.parametrize("text", ["native_sidecar: false", "native_sidecar: no", "native_sidecar: 0",
                                  "native_sidecar: 'false'"])
def test_booleans_from_the_file(tmp_path, text):
    assert settings.load(config(tmp_path, text)).native_sidecar is False


@pytest.mark.parametrize(("argv", "ips"), [
    (["--cert-extra-ips", "127.0.0.1"], ["127.0.0.1"]),
    (["--cert-extra-ips", "127.0.0.1", "--cert-extra-ips", "::1"], ["127.0.0.1", "::1"]),
    (["--cert-extra-ips", "127.0.0.1,::1"], ["127.0.0.1", "::1"]),
    (['--cert-extra-ips=["127.0.0.1","::1"]'], ["127.0.0.1", "::1"]),
    (["--cert-extra-ips", "[127.0.0.1, ::1]"], ["127.0.0.1", "::1"]),
    (["--cert-extra-ips", '"a,b",c'], ["a,b", "c"]),
    (["--cert-extra-ips", "[]"], []),
])
def test_list_flags(argv, ips):
    assert settings.load(argv).cert_extra_ips == ips


def test_lists_from_env_are_json_and_from_the_file_yaml(tmp_path):
    cfg = settings.load(config(tmp_path, "excluded_namespaces: [a, b]\n"),
                        environ={"KUBE_ELECTOR_CERT_EXTRA_IPS": '["127.0.0.1"]'})
    assert (cfg.excluded_namespaces, cfg.cert_extra_ips) == (["a", "b"], ["127.0.0.1"])
    with pytest.raises(settings.SettingsError, match=r"cert_extra_ips: not JSON in KUBE_ELECTOR_CERT_EXTRA_IPS"):
        settings.load([], environ={"KUBE_ELECTOR_CERT_EXTRA_IPS": "127.0.0.1"})


def test_a_list_flag_overrides_the_files_list(tmp_path):
    assert settings.load([*config(tmp_path, "cert_extra_ips: [a]\n"), "--cert-extra-ips", "b"]).cert_extra_ips == ["b"]


# ------------------------------------------------------------------------------------------------- checks


@pytest.mark.parametrize(("argv", "message"), [
    (["--limits.max-connections", "9"], "limits.max_connections: must be >= 10, not 9"),  # ge
    (["--cert-reload-seconds", "0"], "cert_reload_seconds: must be > 0, not 0.0"),  # gt
    (["--limits.handshake-timeout-seconds", "61"], "limits.handshake_timeout_seconds: must be <= 60, not 61.0"),  # le
    (["--workers", "65"], "workers: must be <= 64, not 65"),
    (["--port", "70000"], "port: must be <= 65535, not 70000"),
    (["--listen-port", "0"], "listen_port: must be >= 1, not 0"),
    (["--image-pull-policy", "Sometimes"], "image_pull_policy: must be one of Always, IfNotPresent, Never, not 'Sometimes'"),
    (["--cert-mode", "auto"], "cert_mode: must be one of files, self-managed, not 'auto'"),
    (["--log-level", "INFO"], "log_level: must be one of debug, info, warning, error, not 'INFO'"),
    (["--run-as-user", "0"], "run_as_user: must be >= 1, not 0"),  # never root
    (["--port", "5000", "--probe-port", "5000"], "probe_port: must differ from port (both 5000)"),
    (["--election.lease-duration", "5s"],
     "election.renew_deadline: the renew deadline (10s) must be at least 1s below the lease duration (5s)"),
    (["--election.retry-period", "2m"], "election.retry_period: 2m is out of range: from 100ms to 1m"),
    (["--election.lease-duration", "soon"], "election.lease_duration: 'soon' is not a duration"),
    (["--port", "abc"], "port: must be an integer, not 'abc'"),
    (["--port", "5000.5"], "port: must be an integer, not '5000.5'"),
    (["--cert-reload-seconds", "abc"], "cert_reload_seconds: must be a number, not 'abc'"),
    (["--limits", "{nope"], "limits: not JSON"),
])
def test_each_check_names_the_field_and_what_is_allowed(argv, message):
    with pytest.raises(settings.SettingsError) as info:
        settings.load(argv)
    assert str(info.value).startswith(f"invalid settings: {message}"), str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ("image: 5", "image: must be a string, not 5"),
    ("election:\n  lease_duration: 15", "election.lease_duration: must be a string, not 15"),
    ("port: true", "port: must be an integer, not True"),
    ("native_sidecar: maybe", "native_sidecar: must be a boolean (true or false), not 'maybe'"),
    ("cert_extra_ips: 127.0.0.1", "cert_extra_ips: must be a list of strings, not '127.0.0.1'"),
    ("cert_extra_ips: [a, 2]", "cert_extra_ips.1: must be a string, not 2"),
    ("tls_cert_file: 5", "tls_cert_file: must be a path, not 5"),
    ("limits: 5", "limits: must be a mapping (of max_connections, "),
])
def test_wrong_types_in_the_file_name_the_field_and_the_type(tmp_path, text, message):
    with pytest.raises(settings.SettingsError) as info:
        settings.load(config(tmp_path, text))
    assert str(info.value).startswith(f"invalid settings: {message}"), str(info.value)


def test_the_bounds_are_inclusive_where_they_say_so():
    cfg = settings.load(["--limits.max-connections", "10", "--workers", "64", "--shutdown-drain-seconds", "0",
                         "--port", "1024", "--probe-port", "65535", "--request-timeout-seconds", "30"])
    assert (cfg.limits.max_connections, cfg.workers, cfg.shutdown_drain_seconds) == (10, 64, 0.0)


def test_every_bad_field_is_named_at_once(tmp_path):
    with pytest.raises(settings.SettingsError) as info:
        settings.load([*config(tmp_path, "workers: 100\nlimits:\n  backlog: 1\n"), "--port", "1", "--log-level", "x"])
    message = str(info.value)
    assert "\n" not in message
    for field in ("port:", "workers:", "limits.backlog:", "log_level:"):
        assert field in message, message


def test_the_settings_error_is_a_value_error_with_its_problems():
    with pytest.raises(ValueError) as info:
        settings.load(["--port", "1"])
    assert isinstance(info.value, settings.SettingsError) and info.value.problems == [("port", "must be >= 1024, not 1")]


# --------------------------------------------------------------------------------------- unknown, bad input


@pytest.mark.parametrize(("text", "named"), [
    ("manage_role_binding: true\n", "manage_role_binding"),  # a misspelt key
    ("limits:\n  max_conections: 50\n", "limits.max_conections"),
])
def test_an_unknown_key_in_the_file_fails_naming_it(tmp_path, text, named):
    with pytest.raises(settings.SettingsError, match=f"^invalid settings: {named}: unknown setting$"):
        settings.load(config(tmp_path, text))


def test_an_unknown_key_of_a_group_from_env_or_json_fails_too():
    with pytest.raises(settings.SettingsError, match="limits.nope: unknown setting"):
        settings.load([], environ={"KUBE_ELECTOR_LIMITS__NOPE": "1"})
    with pytest.raises(settings.SettingsError, match="limits.max-connections: unknown setting"):
        settings.load(["--limits", '{"max-connections": 50}'])


@pytest.mark.parametrize("flag", ["--manage-rolebindings", "--listen-p=8443", "--listen_port=8443",
                                  "--limits.max_connections=50", "extra"])
def test_an_unknown_flag_fails_naming_it(capsys, flag):
    with pytest.raises(SystemExit) as info:
        settings.load([flag])
    assert info.value.code == 2 and f"unrecognized arguments: {flag}" in capsys.readouterr().err


def test_help_lists_every_flag_with_its_description(capsys):
    with pytest.raises(SystemExit) as info:
        settings.load(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and out.startswith("usage: kube-elector-webhook")
    for text in ("--config PATH", "--native-sidecar, --no-native-sidecar", "--limits.max-connections int",
                 "--cert-extra-ips list[str]", "--kubeconfig {Path,null}", "--image-pull-policy {Always,IfNotPresent,Never}",
                 "open connections per process", "HTTPS port of the webhook (default: 10250)", "limits options:"):
        assert text in out, text


@pytest.mark.parametrize(("text", "problem"), [
    ("cert_mode: [files\n", "not YAML: expected ',' or ']', but got '<stream end>' (line 2, column 1)"),
    ("- port: 5000\n", "must be a mapping of settings, not a list"),
])
def test_a_config_file_that_is_not_a_yaml_mapping_is_one_line_naming_it(tmp_path, text, problem):
    argv = config(tmp_path, text)
    with pytest.raises(settings.SettingsError) as info:
        settings.load(argv)
    assert str(info.value) == f"--config {argv[1]}: {problem}"


@pytest.mark.parametrize("origin", ["--config", "KUBE_ELECTOR_CONFIG"])
def test_a_config_file_not_found_is_named(tmp_path, origin):
    missing = str(tmp_path / "missing.yaml")
    argv, env = (["--config", missing], {}) if origin == "--config" else ([], {"KUBE_ELECTOR_CONFIG": missing})
    with pytest.raises(settings.SettingsError) as info:
        settings.load(argv, environ=env)
    assert str(info.value) == f"{origin} {missing}: cannot read it: No such file or directory"


def test_config_without_a_path():
    for argv in (["--config"], ["--config", ""]):
        with pytest.raises(settings.SettingsError, match="^--config: give the path of a YAML settings file$"):
            settings.load(argv)


def test_an_empty_config_file_is_the_defaults(tmp_path):
    assert settings.load(config(tmp_path, "# nothing set\n")) == settings.Settings()


# ----------------------------------------------------------------------------------- what the repo passes


def container(path: Path) -> dict:
    (pod,) = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    (webhook,) = pod["spec"]["template"]["spec"]["containers"]
    return webhook


def test_the_shipped_deployment_and_configmap_load(tmp_path):
    webhook = container(MANIFESTS / "deployment.yaml")
    shipped = yaml.safe_load(yaml.safe_load((MANIFESTS / "configmap.yaml").read_text())["data"]["config.yaml"])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(shipped))
    argv = [str(tmp_path / "config.yaml") if arg == "/etc/kube-elector/config.yaml" else arg for arg in webhook["args"]]
    env = {var["name"]: var.get("value", "team-ns") for var in webhook["env"]}  # valueFrom: the pod's namespace
    patch = yaml.safe_load((MANIFESTS / "components" / "cert-manager" / "deployment-patch.yaml").read_text())
    for extra in ({}, {var["name"]: var["value"] for var in patch["spec"]["template"]["spec"]["containers"][0]["env"]}):
        cfg = settings.load(argv, environ={**env, **extra})
        assert cfg.namespace == "team-ns" and cfg.image == "ghcr.io/kube-elector/elector:0.2.0"
        assert cfg.cert_mode == ("files" if extra else "self-managed")
        assert cfg.excluded_namespaces == ["kube-system", "kube-public", "kube-node-lease", "kube-elector"]
        assert cfg.election == settings.ElectionDefaults() and cfg.removed_settings == {}


@pytest.mark.parametrize("argv", [
    # localplane/kube_elector/webhook.py
    ["--kubeconfig", "/tmp/kc", "--host", "127.0.0.1", "--listen-port", "18443", "--namespace", "kube-elector",
     "--cert-extra-ips", "127.0.0.1", "--cert-reload-seconds", "2", "--workers", "2"],
    # tools/elector-image/trace_webhook.py, bench/webhook_load.py, tests/unit/webhook/test_workers.py
    ["--cert-mode=self-managed", "--kubeconfig=/tmp/kc", "--namespace=trace", '--cert-extra-ips=["127.0.0.1"]',
     "--cert-reload-seconds=0.3", "--host=127.0.0.1", "--listen-port=18443", "--workers=2",
     "--shutdown-drain-seconds=0", "--max-body-bytes=1024"],
    ["--host", "127.0.0.1", "--tls-cert-file", "/tmp/c", "--tls-key-file", "/tmp/k", "--cert-mode", "files",
     "--listen-port", "18443", "--log-level", "warning", "--shutdown-drain-seconds", "1"],
])
def test_the_flags_the_repo_passes(argv):
    cfg = settings.load(argv)
    assert cfg.listen_port == 18443 and cfg.host == "127.0.0.1"


# ------------------------------------------------------------------------------------ 0.1's RBAC settings


def test_the_rbac_settings_are_gone():
    fields = {field.name for field in dataclasses.fields(settings.Settings)}
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


def test_an_old_setting_in_several_sources_follows_the_precedence(tmp_path):
    argv = [*config(tmp_path, "manage_role_bindings: false\nelection_cluster_role: from-file\n"), "--manage-role-bindings"]
    cfg = settings.load(argv, environ={"KUBE_ELECTOR_MANAGE_ROLE_BINDINGS": "x", "KUBE_ELECTOR_ELECTION_CLUSTER_ROLE": "e"})
    assert cfg.removed_settings == {"manage_role_bindings": True, "election_cluster_role": "e"}


def test_a_current_config_names_nothing_removed(tmp_path):
    assert settings.load(config(tmp_path, "port: 5000\nprobe_port: 5001\n")).removed_settings == {}
    assert settings.Settings().removed_settings == {}


def test_removed_settings_is_a_copy():
    cfg = settings.Settings.from_dict({"election_cluster_role": "r"})
    cfg.removed_settings.clear()
    assert cfg.removed_settings == {"election_cluster_role": "r"}


@pytest.mark.parametrize("key", sorted(settings.REMOVED))
def test_the_fix_is_named(key):
    assert settings.REMOVED[key].startswith("remove it: the kube-elector controller manages RBAC now")


def test_the_shipped_config_has_no_removed_setting():
    shipped = yaml.safe_load(yaml.safe_load((MANIFESTS / "configmap.yaml").read_text())["data"]["config.yaml"])
    assert not set(settings.REMOVED) & set(shipped), "manifests/configmap.yaml still sets a removed setting"
    settings.Settings(**shipped)  # and everything else in it is a setting
