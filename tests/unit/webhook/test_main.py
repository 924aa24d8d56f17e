"""`python -m webhook` startup: which modes talk to the API, and the warning for a removed setting."""

import json
import logging

import pytest

from certs import pki
from webhook import __main__ as main_module
from webhook import draining, kube, workers


@pytest.fixture
def started(monkeypatch):
    """main() up to serving: the server's run() is recorded instead of listening; logging restored after."""
    runs = []
    monkeypatch.setattr(draining.DrainingServer, "run", lambda self, *a, **k: runs.append(self))
    monkeypatch.setattr(workers, "default_processes", lambda: 1)  # one process: no fork in the test runner
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield runs
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def cert_files(tmp_path):
    ca = pki.make_ca("test-ca", days=1)
    return pki.make_serving_cert(ca, dns_names=["localhost"], ip_addresses=[], days=1).write(tmp_path, "tls")


def files_args(cert_files):
    cert, key = cert_files
    return ["--cert-mode", "files", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--cert-reload-seconds", "3600"]


def test_cert_mode_files_makes_no_api_client(started, cert_files, monkeypatch):
    def no_client(*_):
        raise AssertionError("cert_mode files needs no API client")

    monkeypatch.setattr(kube, "connect", no_client)
    assert main_module.main(files_args(cert_files)) == 0
    assert len(started) == 1


def test_cert_mode_self_managed_is_the_only_api_use(started, monkeypatch, capsys):
    asked = []

    def unreachable(kubeconfig):
        asked.append(kubeconfig)
        raise OSError("no cluster here")

    monkeypatch.setattr(kube, "connect", unreachable)
    assert main_module.main(["--cert-mode", "self-managed"]) == 1
    assert asked == [None] and started == []
    assert "cannot reach the Kubernetes API" in capsys.readouterr().err


def test_a_removed_setting_is_logged_with_its_fix_and_serving_goes_on(started, cert_files, tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text("manage_role_bindings: true\ncert_mode: files\n")
    assert main_module.main(["--config", str(old), *files_args(cert_files)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    (warning,) = [line for line in lines if line.get("event") == "setting_removed"]
    assert warning["level"] == "warning" and warning["setting"] == "manage_role_bindings" and warning["value"] is True
    assert "manage_role_bindings" in warning["msg"] and "remove it: the kube-elector controller manages RBAC now" in warning["msg"]
    assert len(started) == 1


def test_a_current_config_logs_no_removed_setting(started, cert_files, capsys):
    assert main_module.main(files_args(cert_files)) == 0
    assert "setting_removed" not in capsys.readouterr().err
