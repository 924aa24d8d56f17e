"""The webhook installed from manifests/ (once per module) and a pod runner serving the test's namespace."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from localplane import webhook_install
from podrunner import PodRunner
from podrunner.podman import Podman

IMAGE = "localhost/kube-elector:dev"  # as a process: .venv/bin/kube-elector; with podman: the image
PODMAN_ALIASES = {"python": "localhost/base-python:bookworm"}  # nothing can be pulled: a local stand-in


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


def _podman_or_skip() -> Podman:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: the containers run as processes in the other variant")
    for image in (IMAGE, *PODMAN_ALIASES.values()):
        if subprocess.run(["podman", "image", "exists", image], capture_output=True).returncode != 0:
            pytest.skip(f"podman image {image} is not built here")
    return Podman(PODMAN_ALIASES)


@pytest.fixture
def runner(request, control_plane, namespace: str, tmp_path: Path) -> Iterator[PodRunner]:
    """Containers as local processes; `indirect` parameter "podman": from the images, with podman."""
    if os.geteuid() != 0:
        pytest.skip("the pod runner needs root (a network namespace per pod)")
    podman = _podman_or_skip() if getattr(request, "param", "process") == "podman" else None
    pods = PodRunner(control_plane.kubeconfig, tmp_path / "pods", namespaces=[namespace],
                     node=f"podrunner-{namespace}", stop_grace=5, podman=podman)
    pods.start()
    yield pods
    pods.stop()
    left = list(Path("/run/netns").glob(f"podrunner-{os.getpid()}-*"))
    assert not left, f"network namespaces left behind: {left}"
