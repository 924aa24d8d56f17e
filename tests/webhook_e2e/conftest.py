"""The webhook installed from manifests/ on the real control plane (once per module)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from localplane import webhook_install


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def webhook(control_plane, tmp_path_factory) -> Iterator[webhook_install.InstalledWebhook]:
    hook = webhook_install.install(control_plane, tmp_path_factory.mktemp("webhook"), port=_free_port())
    yield hook
    hook.stop()
    # Leave no Fail-policy webhook behind for later modules.
    with control_plane.client() as api:
        api.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}")
