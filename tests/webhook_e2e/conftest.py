"""The webhook installed from manifests/ on the real control plane (once per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localplane.kube_elector import webhook as webhook_install


@pytest.fixture(scope="module")
def webhook(control_plane, tmp_path_factory) -> Iterator[webhook_install.InstalledWebhook]:
    hook = webhook_install.install(control_plane, tmp_path_factory.mktemp("webhook"))
    yield hook
    hook.stop(drain=False)
    # Leave no Fail-policy webhook behind for later modules.
    with control_plane.client() as api:
        api.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}")
