"""The elector image (`FROM scratch`, tools/elector-image/rootfs.py) misses nothing at run time: it is
started as the webhook injects it, against the real kube-apiserver, through the paths that import
modules late (errors, signals, JSON logs, YAML kubeconfig, TLS client certificates), and every module of
the `elector` package is imported by the image's own interpreter.
"""
from __future__ import annotations

import base64
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
import yaml

from controller import rbac
from localplane.process.ports import free_port
from tests.image.conftest import LIGHT_IMAGE_CHECKS, SECURITY, Container, podman, wait_for

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]


def run_image(image: str, *args: str, entrypoint: str = "") -> tuple[int, str, str]:
    """`podman run --rm` of the image, offline, with the injected security context."""
    done = podman("run", "--rm", "--network=none", *SECURITY,
                  *([f"--entrypoint={entrypoint}"] if entrypoint else []), image, *args)
    return done.returncode, done.stdout, done.stderr


def lease_holder(api: httpx.Client, namespace: str, name: str) -> str:
    got = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")
    return (got.json().get("spec") or {}).get("holderIdentity") or "" if got.status_code == 200 else "<none>"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a --log-format json log as an object (fails on a line that is not JSON)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_clean(logs: str) -> None:
    assert "Traceback" not in logs, logs
    assert "ModuleNotFoundError" not in logs and "ImportError" not in logs, logs


# ------------------------------------------------------------------------------------ no API server


def test_every_elector_module_imports_in_the_image(elector_image: str) -> None:
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts)
                     for p in (ROOT / "elector").rglob("*.py"))
    code = (
        "import importlib, os, sys, elector\n"
        "top = os.path.dirname(elector.__path__[0])\n"
        "shipped = sorted(os.path.relpath(os.path.join(d, f), top)[:-3].replace(os.sep, '.')\n"
        "                 for d, _, fs in os.walk(elector.__path__[0]) for f in fs if f.endswith('.py'))\n"
        "for name in shipped: importlib.import_module(name.removesuffix('.__init__'))\n"
        "import yaml\n"
        "assert yaml.safe_load('a: [1, {b: c}]') == {'a': [1, {'b': 'c'}]}\n"
        "assert 'localhost'.encode('idna') == b'localhost'\n"
        "print(' '.join(shipped))\n"
    )
    rc, out, err = run_image(elector_image, "-c", code, entrypoint="python")
    assert rc == 0 and not err, err
    assert out.split() == modules, "the image's elector package differs from elector/**/*.py: rebuild (make images)"


def test_exceptions_and_warnings_are_formatted_in_the_image(elector_image: str) -> None:
    """The late imports of an error path (traceback, linecache, tokenize, warnings) in both log formats."""
    code = (
        "import logging, warnings\n"
        "from elector.ops import logs\n"
        "for fmt in ('json', 'text'):\n"
        "    logs.setup(fmt=fmt, level='info', pod='p', election='ns/e')\n"
        "    try:\n"
        "        {}['missing']\n"
        "    except KeyError:\n"
        "        logging.getLogger('elector.test').exception('failed')\n"
        "warnings.warn('careful')\n"
    )
    rc, out, err = run_image(elector_image, "-c", code, entrypoint="python")
    assert rc == 0, err
    first, second, *rest = err.splitlines()
    assert json.loads(first)["error"] == "KeyError: 'missing'", err
    assert second.endswith("error=KeyError: 'missing'") and " ERROR " in second, err
    assert "UserWarning: careful" in "\n".join(rest), err


def test_the_image_is_the_light_one(elector_image: str) -> None:
    """No shell, no pip, no package manager; the interpreter runs as uid 65532 with a read-only root."""
    code = (
        "import os, sys\n"
        "assert os.getuid() == 65532 and os.getgid() == 65532, (os.getuid(), os.getgid())\n"
        "for path in ('/bin/sh', '/usr/bin/sh', '/bin/bash', '/usr/bin/pip', '/usr/bin/apt-get', '/usr/bin/dpkg'):\n"
        "    assert not os.path.lexists(path), path\n"
    ) + LIGHT_IMAGE_CHECKS.format(absent=("pip",))
    rc, _, err = run_image(elector_image, "-c", code, entrypoint="python")
    assert rc == 0 and not err, err
    assert podman("image", "inspect", "--format={{.Config.User}}", elector_image).stdout.strip() == "65532:65532"


def test_help_and_bad_flags(elector_image: str) -> None:
    rc, out, err = run_image(elector_image, "--help")
    assert rc == 0 and "--election" in out and "--kubeconfig" in out, out + err
    for args, message in (
        (["--no-such-flag"], "kube-elector: unrecognized arguments: --no-such-flag"),
        (["--election=e", "--election-namespace=ns", "--lease-duration=soon"], "kube-elector: --lease-duration:"),
        (["--election=e", "--election-namespace=ns", "--log-format=xml"], "kube-elector: --log-format:"),
        # in-cluster config without a ServiceAccount mounted
        (["--election=e", "--election-namespace=ns"], "kube-elector: not in a cluster"),
    ):
        rc, out, err = run_image(elector_image, *args)
        assert rc == 1, (args, out, err)
        assert err.strip().splitlines() == [err.strip().splitlines()[0]] and message in err, (args, err)
        assert_clean(out + err)


# ----------------------------------------------------------------------------- real kube-apiserver


def test_leader_follower_and_sigterm_release(
    containers: Callable[..., Container], sa_kubeconfig: Callable[..., Path], api: httpx.Client, namespace: str,
    tmp_path: Path,
) -> None:
    """pod-a with a kubeconfig and JSON logs; pod-b in-cluster (the injected sidecar's way: the ServiceAccount
    directory and KUBERNETES_SERVICE_HOST/PORT) with text logs. The account holds what the controller
    makes for election `app`: get, update, watch on that one Lease."""
    kubeconfig = sa_kubeconfig(grant=["app"])
    leader = containers("pod-a", kubeconfig, "--election=app", "--log-format=json")
    wait_for(lambda: (leader.status() or {}).get("is_leader"), 20, "pod-a to lead", leader.logs)

    config = json.loads(kubeconfig.read_text())
    service_account = tmp_path / "serviceaccount"
    service_account.mkdir()
    (service_account / "token").write_text(config["users"][0]["user"]["token"])
    (service_account / "ca.crt").write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
    (service_account / "namespace").write_text(namespace)
    port = urllib.parse.urlsplit(config["clusters"][0]["cluster"]["server"]).port
    follower = containers("pod-b", None, "--election=app", "--log-format=text", service_account=service_account,
                          env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port)})
    body = wait_for(lambda: follower.probe("/readyz") == 200 and follower.status(), 20, "pod-b ready", follower.logs)
    assert body["is_leader"] is False and body["name"] == "pod-a", body
    assert lease_holder(api, namespace, "app") == "pod-a"
    assert leader.probe("/healthz") == 200 and leader.probe("/metrics") == 200

    # SIGTERM: the leader releases, exits 0, the follower takes over
    started = time.monotonic()
    assert leader.stop() == 0, leader.logs()
    assert time.monotonic() - started < 10, "SIGTERM did not stop the elector promptly"
    wait_for(lambda: (follower.status() or {}).get("is_leader"), 10, "pod-b to take over", follower.logs)
    assert lease_holder(api, namespace, "app") == "pod-b"
    leader_logs = leader.logs()
    assert_clean(leader_logs)
    events = json_lines(leader_logs)
    assert {"started", "stopped"} <= {e["msg"] for e in events}, leader_logs
    assert all(e["pod"] == "pod-a" and e["election"] == f"{namespace}/app" for e in events)

    # the last candidate: its release leaves the Lease unheld
    assert follower.stop() == 0, follower.logs()
    assert lease_holder(api, namespace, "app") == ""
    follower_logs = follower.logs()
    assert_clean(follower_logs)
    assert " INFO " in follower_logs and "stopped" in follower_logs, follower_logs


def test_unreachable_api_server_is_logged_and_survived(
    containers: Callable[..., Container], control_plane: Any, tmp_path: Path
) -> None:
    config = json.loads(control_plane.write_kubeconfig(tmp_path / "sa.json", token="t").read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"  # nobody listens
    down = tmp_path / "down.json"
    down.write_text(json.dumps(config))
    for pod, fmt in (("pod-down-json", "json"), ("pod-down-text", "text")):
        # acquire attempts that fail are logged at debug level (the default, info, stays quiet)
        container = containers(pod, down, "--election=down", f"--log-format={fmt}", "--log-level=debug")
        wait_for(lambda c=container: "connect 127.0.0.1" in c.logs(), 15, "a logged connection error",
                 container.logs)
        time.sleep(1.0)  # a few retries
        assert container.running(), container.logs()
        assert container.probe("/healthz") == 200  # alive; not ready: the Lease was never read
        assert container.probe("/readyz") == 503
        assert container.stop() == 0, container.logs()
        logs = container.logs()
        assert_clean(logs)
        if fmt == "json":
            failed = [e for e in json_lines(logs) if e["msg"] == "acquire attempt failed"]
            assert failed and "Connect call failed" in failed[0]["error"], logs


def test_yaml_kubeconfig_with_a_tls_client_certificate(
    containers: Callable[..., Container], control_plane: Any, api: httpx.Client, namespace: str,
    tmp_path: Path,
) -> None:
    user = f"image-test-{namespace}"
    # What the controller makes for an election (controller/rbac.py), bound to a certificate user here.
    rbac_api = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    made = api.post(f"{rbac_api}/roles", json=rbac.role(namespace, "cert", []))
    assert made.status_code == 201, made.text
    binding = {**rbac.role_binding(namespace, "cert", [], made.json()),
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}
    made_binding = api.post(f"{rbac_api}/rolebindings", json=binding)
    assert made_binding.status_code == 201, made_binding.text
    lease = api.post(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases",
                     json=rbac.lease(namespace, "cert", made.json()))
    assert lease.status_code == 201, lease.text
    config = json.loads(control_plane.client_kubeconfig(f"image-{namespace}", user=user, groups=[]).read_text())
    assert "client-certificate-data" in config["users"][0]["user"]
    kubeconfig = tmp_path / "cert.yaml"
    kubeconfig.write_text(yaml.safe_dump(config, default_flow_style=False))
    with pytest.raises(ValueError):
        json.loads(kubeconfig.read_text())  # really YAML: the elector needs pyyaml for it

    container = containers("pod-cert", kubeconfig, "--election=cert", "--log-format=json")
    wait_for(lambda: (container.status() or {}).get("is_leader"), 20, "the certificate user to lead", container.logs)
    assert lease_holder(api, namespace, "cert") == "pod-cert"
    assert container.stop() == 0, container.logs()
    assert lease_holder(api, namespace, "cert") == ""
    logs = container.logs()
    assert_clean(logs)
    assert json_lines(logs)
