import base64
import json

import pytest

from elector.kube import kubeconfig


def _write(path, user, server="https://127.0.0.1:6443", cluster_extra=None):
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": server, **(cluster_extra or {"insecure-skip-tls-verify": True})}}],
        "users": [{"name": "u", "user": user}],
    }
    path.write_text(json.dumps(doc))
    return path


def test_static_token_kubeconfig(tmp_path):
    creds = kubeconfig.from_kubeconfig(str(_write(tmp_path / "k", {"token": "abc"})), now=lambda: 0.0)
    assert creds.server == "https://127.0.0.1:6443" and creds.token() == "abc"
    assert creds.ssl_context is not None


def test_yaml_kubeconfig_with_token_file(tmp_path):
    (tmp_path / "tok").write_text("from-file\n")
    (tmp_path / "k").write_text(
        "apiVersion: v1\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
        "clusters:\n- name: k\n  cluster: {server: 'http://127.0.0.1:8080'}\n"
        "users:\n- name: u\n  user: {tokenFile: tok}\n")
    creds = kubeconfig.from_kubeconfig(str(tmp_path / "k"), now=lambda: 0.0)
    assert creds.server == "http://127.0.0.1:8080" and creds.ssl_context is None and creds.token() == "from-file"


def test_bad_kubeconfigs_are_config_errors(tmp_path):
    with pytest.raises(kubeconfig.ConfigError, match="no user named"):
        path = _write(tmp_path / "k", {"token": "x"})
        doc = json.loads(path.read_text())
        doc["contexts"][0]["context"]["user"] = "missing"
        path.write_text(json.dumps(doc))
        kubeconfig.from_kubeconfig(str(path), now=lambda: 0.0)
    with pytest.raises(kubeconfig.ConfigError, match="TLS"):
        kubeconfig.from_kubeconfig(str(_write(tmp_path / "k2", {}, cluster_extra={
            "certificate-authority-data": base64.b64encode(b"not a cert").decode()})), now=lambda: 0.0)


def test_token_file_is_re_read_every_minute(tmp_path):
    now = [0.0]
    token_path = tmp_path / "token"
    token_path.write_text("one")
    token = kubeconfig.TokenFile(str(token_path), now=lambda: now[0])
    assert token() == "one"
    token_path.write_text("two")  # the kubelet rotated the projected token
    now[0] = 59
    assert token() == "one"
    now[0] = 60
    assert token() == "two"
    token_path.unlink()  # a failed re-read keeps the last good token
    now[0] = 200
    assert token() == "two"


def test_in_cluster_needs_service_env_and_files(tmp_path):
    with pytest.raises(kubeconfig.ConfigError, match="KUBERNETES_SERVICE_HOST"):
        kubeconfig.in_cluster({}, sa_dir=str(tmp_path), now=lambda: 0.0)
    with pytest.raises(kubeconfig.ConfigError, match="ca.crt"):
        kubeconfig.in_cluster({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
                              sa_dir=str(tmp_path), now=lambda: 0.0)


def test_a_kubeconfig_list_is_merged_as_kubectl_merges_it(tmp_path):
    first = _write(tmp_path / "first", {"token": "first"}, server="https://first:6443")
    second = tmp_path / "second"
    second.write_text(json.dumps({
        "current-context": "other",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}},
                     {"name": "other", "context": {"cluster": "k2", "user": "u2", "namespace": "team"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://ignored:1"}},
                     {"name": "k2", "cluster": {"server": "http://second:8080"}}],
        "users": [{"name": "u2", "user": {"token": "second"}}]}))
    missing = str(tmp_path / "missing")
    merged = kubeconfig.from_kubeconfig([missing, str(first), str(second)], now=lambda: 0.0)
    assert merged.server == "https://first:6443" and merged.token() == "first"  # first file's current-context
    other = kubeconfig.from_kubeconfig([str(first), str(second)], now=lambda: 0.0, context="other")
    assert (other.server, other.token(), other.namespace) == ("http://second:8080", "second", "team")
    assert kubeconfig.paths(f"{first}:{second}::") == [str(first), str(second)]
    with pytest.raises(kubeconfig.ConfigError, match="no such file"):
        kubeconfig.from_kubeconfig([missing], now=lambda: 0.0)
    with pytest.raises(kubeconfig.ConfigError, match="no context named 'nope'"):
        kubeconfig.from_kubeconfig(str(first), now=lambda: 0.0, context="nope")


def test_exec_credential_plugin(tmp_path):
    plugin = tmp_path / "plugin.sh"
    calls = tmp_path / "calls"
    plugin.write_text(
        "#!/bin/sh\necho called >> " + str(calls) + "\n"
        'echo "{\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"kind\\":\\"ExecCredential\\",'
        '\\"status\\":{\\"token\\":\\"$TOKEN_FROM_ENV\\",\\"expirationTimestamp\\":\\"2000-01-01T00:00:00Z\\"}}"\n')
    plugin.chmod(0o755)
    path = _write(tmp_path / "k", {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./plugin.sh",
                                            "env": [{"name": "TOKEN_FROM_ENV", "value": "exec-token"}]}})
    creds = kubeconfig.from_kubeconfig(str(path), now=lambda: 0.0)
    assert creds.token() == "exec-token"
    creds.token()  # expired long ago: the plugin runs again
    assert len(calls.read_text().splitlines()) >= 2
    plugin.write_text("#!/bin/sh\nexit 3\n")
    with pytest.raises(kubeconfig.ConfigError, match="exec plugin"):
        kubeconfig.from_kubeconfig(str(path), now=lambda: 0.0)
