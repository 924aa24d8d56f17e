"""The webhook installed from manifests/ (once per module) and a pod runner serving the test's namespace."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from localplane import webhook_install
from podrunner import PodRunner

IMAGE = "localhost/kube-elector:dev"  # mapped by the pod runner to .venv/bin/kube-elector


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def webhook(control_plane, tmp_path_factory) -> Iterator[webhook_install.InstalledWebhook]:
    hook = webhook_install.install(control_plane, tmp_path_factory.mktemp("webhook"), port=_free_port(),
                                   extra_args=["--image", IMAGE])
    yield hook
    hook.stop()
    with control_plane.client() as api:  # leave no Fail-policy webhook behind for later modules
        api.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}")


@pytest.fixture
def runner(control_plane, namespace: str, tmp_path: Path) -> Iterator[PodRunner]:
    if os.geteuid() != 0:
        pytest.skip("the pod runner needs root (a network namespace per pod)")
    pods = PodRunner(control_plane.kubeconfig, tmp_path / "pods", namespaces=[namespace],
                     node=f"podrunner-{namespace}", stop_grace=5)
    pods.start()
    yield pods
    pods.stop()
    left = list(Path("/run/netns").glob(f"podrunner-{os.getpid()}-*"))
    assert not left, f"network namespaces left behind: {left}"
