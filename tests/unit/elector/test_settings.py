import pytest

from elector import settings

BASE = ["--election=e", "--election-namespace=ns"]


def test_injected_args_and_downward_env():
    cfg = settings.parse(
        ["--election=app", "--election-namespace=team", "--http=localhost:4040", "--probe-address=0.0.0.0:4041",
         "--lease-duration=15s", "--renew-deadline=10s", "--retry-period=2s"],
        {"POD_NAME": "app-7d9f-x", "POD_NAMESPACE": "team", "POD_UID": "u1", "ELECTOR_LOG_FORMAT": "json"},
    )
    assert cfg.election == settings.ElectionConfig("app", "team", "app-7d9f-x", 15, 10, 2, uid="u1")
    assert (cfg.http_host, cfg.http_port, cfg.probe_host, cfg.probe_port) == ("localhost", 4040, "0.0.0.0", 4041)
    assert cfg.log_format == "json" and cfg.metrics_host is None
    assert cfg.election.request_timeout == 5


def test_flags_win_over_env_and_env_fills_the_rest():
    env = {"ELECTOR_ELECTION": "from-env", "ELECTOR_ELECTION_NAMESPACE": "ns-env", "ELECTOR_LOG_LEVEL": "warn",
           "ELECTOR_RELEASE_TIMEOUT": "20s", "POD_NAME": "p"}
    cfg = settings.parse(["--election=from-flag"], env)
    assert cfg.election.name == "from-flag" and cfg.election.namespace == "ns-env"
    assert cfg.log_level == "warning" and cfg.release_timeout == 20


def test_defaults_namespace_from_pod_then_identity_from_hostname(monkeypatch):
    monkeypatch.setattr(settings.socket, "gethostname", lambda: "host-1")
    cfg = settings.parse(["--election=e"], {"POD_NAMESPACE": "ns", "ELECTOR_SERVICE_ACCOUNT_DIR": "/nonexistent"})
    assert cfg.election.namespace == "ns" and cfg.election.identity == "host-1"
    assert (cfg.http_host, cfg.http_port) == ("localhost", 4040)


def test_metrics_address():
    cfg = settings.parse([*BASE, "--metrics-address=127.0.0.1:9090"], {"POD_NAME": "p"})
    assert (cfg.metrics_host, cfg.metrics_port) == ("127.0.0.1", 9090)


def test_the_uid_is_ours_only_when_the_identity_is_our_pod():
    assert settings.parse(BASE, {"POD_NAME": "p", "POD_UID": "u"}).election.uid == "u"
    assert settings.parse([*BASE, "--identity=other"], {"POD_NAME": "p", "POD_UID": "u"}).election.uid == ""


@pytest.mark.parametrize("flag", ["--leader-label", "--leader-service=web", "--rollout-aware=false"])
def test_flags_of_0_1_that_moved_to_the_controller_are_refused_with_the_way_out(flag):
    with pytest.raises(settings.SettingsError, match="the kube-elector controller does this now.*remove the flag"):
        settings.parse([*BASE, flag], {"POD_NAME": "p"})


@pytest.mark.parametrize("args, flag", [
    (["--election-namespace=ns"], "--election"),
    ([*BASE, "--lease-duration=10s"], "--renew-deadline"),  # "the renew deadline (10s) must be ... below the lease"
    ([*BASE, "--renew-deadline=2s", "--retry-period=2s"], "--retry-period"),
    ([*BASE, "--lease-duration=2500ms", "--renew-deadline=2s", "--retry-period=1s"], "--lease-duration"),
    ([*BASE, "--retry-period=2"], "--retry-period"),
    ([*BASE, "--http=localhost"], "--http"),
    ([*BASE, "--probe-address=:99999"], "--probe-address"),
    ([*BASE, "--log-format=xml"], "--log-format"),
    ([*BASE, "--log-level=loud"], "--log-level"),
    ([*BASE, "--kubeconfig=/nonexistent"], "--kubeconfig"),
    ([*BASE, "--app-health-url=localhost:8080/health"], "--app-health-url"),
    ([*BASE, "--release-timeout=-1s"], "--release-timeout"),
])
def test_errors_name_the_flag(args, flag):
    with pytest.raises(settings.SettingsError) as info:
        settings.parse(args, {"POD_NAME": "p", "ELECTOR_SERVICE_ACCOUNT_DIR": "/nonexistent"})
    assert str(info.value).startswith(flag), str(info.value)


def test_unknown_flag_and_abbreviations_are_refused():
    for args in ([*BASE, "--bogus=1"], [*BASE, "--lease=15s"]):
        with pytest.raises(settings.SettingsError):
            settings.parse(args, {"POD_NAME": "p"})


def test_kubeconfig_env_is_honoured_and_the_flag_wins(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("{}")
    two.write_text("{}")
    env = {"POD_NAME": "p", "KUBECONFIG": f"{tmp_path / 'missing'}:{one}:{two}"}
    assert settings.parse(BASE, env).kubeconfig == (str(tmp_path / "missing"), str(one), str(two))
    assert settings.parse([*BASE, f"--kubeconfig={two}"], env).kubeconfig == (str(two),)
    assert settings.parse(BASE, {"POD_NAME": "p"}).kubeconfig == ()  # in-cluster
    with pytest.raises(settings.SettingsError, match="KUBECONFIG"):
        settings.parse(BASE, {"POD_NAME": "p", "KUBECONFIG": str(tmp_path / "missing")})
    with pytest.raises(settings.SettingsError, match="--kubeconfig: no such file"):
        settings.parse([*BASE, f"--kubeconfig={tmp_path / 'missing'}"], env)
