"""What the demo and the end-to-end tests set up the same way: the webhook and the podman images."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from localplane import plane as plane_
from localplane import webhook_install

__all__ = ["IMAGE", "PODMAN_ALIASES", "install_webhook", "remove_webhook", "missing_podman_images"]

IMAGE = "localhost/kube-elector:dev"  # injected; as a process it is .venv/bin/kube-elector, with podman the image
# With podman nothing can be pulled: the sample app's python:3.12-slim runs on a local stand-in.
PODMAN_ALIASES = {"python": "localhost/base-python:bookworm"}


def install_webhook(plane: plane_.ControlPlane, workdir: Path) -> webhook_install.InstalledWebhook:
    """manifests/ applied, `python -m webhook` on a free port injecting IMAGE, called by the API server."""
    return webhook_install.install(plane, workdir, extra_args=["--image", IMAGE])


def remove_webhook(plane: plane_.ControlPlane, hook: webhook_install.InstalledWebhook) -> None:
    """Stop the process and delete the configuration (a Fail-policy webhook must not outlive it)."""
    hook.stop()
    with plane.client() as api:
        api.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}")


def missing_podman_images() -> list[str]:
    """The images `--podman` needs that are not built here (all of them if podman is not installed)."""
    wanted = [IMAGE, *PODMAN_ALIASES.values()]
    if shutil.which("podman") is None:
        return wanted
    return [image for image in wanted
            if subprocess.run(["podman", "image", "exists", image], capture_output=True).returncode != 0]
