"""The webhook installed from manifests/ (once per module) and a pod runner serving the test's namespace."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.stack import PODMAN_ALIASES, install_webhook, missing_podman_images, remove_webhook
from localplane import webhook_install
from podrunner import PodRunner
from podrunner.podman import Podman


@pytest.fixture(scope="module")
def webhook(control_plane, tmp_path_factory) -> Iterator[webhook_install.InstalledWebhook]:
    hook = install_webhook(control_plane, tmp_path_factory.mktemp("webhook"))
    yield hook
    remove_webhook(control_plane, hook)


@pytest.fixture
def runner(request, control_plane, namespace: str, tmp_path: Path, caplog) -> Iterator[PodRunner]:
    """Containers as local processes; `indirect` parameter "podman": from the images, with podman."""
    caplog.set_level(logging.INFO, logger="podrunner")  # shown when a test fails
    if os.geteuid() != 0:
        pytest.skip("the pod runner needs root (a network namespace per pod)")
    podman = None
    if getattr(request, "param", "process") == "podman":
        if shutil.which("podman") is None or missing_podman_images():
            pytest.skip(f"podman or its images are missing here ({', '.join(missing_podman_images())})")
        podman = Podman(PODMAN_ALIASES)
    pods = PodRunner(control_plane.kubeconfig, tmp_path / "pods", namespaces=[namespace],
                     node=f"podrunner-{namespace}", stop_grace=5, podman=podman)
    pods.start()
    yield pods
    pods.stop()
    left = list(Path("/run/netns").glob(f"podrunner-{os.getpid()}-*"))
    assert not left, f"network namespaces left behind: {left}"
