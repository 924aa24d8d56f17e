"""The local images, and how they reach the node: built by `make images` (podman), imported into containerd.

Nothing is pulled on the node: the kubelet finds every image already imported, and
image GC is off (localplane.node.kubelet). The names live in tools/images.env, which the build
script reads too.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from localplane.process import binaries, component

__all__ = ["Images", "ImagesMissing", "names", "missing", "load_into", "save", "import_archive", "IMAGES_ENV",
           "PUBLIC_APP_IMAGE"]

IMAGES_ENV = binaries.ROOT / "tools" / "images.env"
# The sample app's image in examples/leader-app; the local stand-in takes its place on the node.
PUBLIC_APP_IMAGE = "python:3.12-slim"


class ImagesMissing(RuntimeError):
    """An image is not built here: run `make images`."""


@dataclasses.dataclass(frozen=True)
class Images:
    webhook: str
    elector: str
    pause: str
    python: str  # the local stand-in for python:3.12-slim: the sample app's image

    def all(self) -> tuple[str, ...]:
        return (self.pause, self.webhook, self.elector, self.python)


@functools.cache
def names() -> Images:
    values = {}
    for line in IMAGES_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
    return Images(webhook=values["WEBHOOK_IMAGE"], elector=values["ELECTOR_IMAGE"],
                  pause=values["PAUSE_IMAGE"], python=values["BASE_IMAGE_LOCAL"])


def missing() -> list[str]:
    """The images podman does not have (all of them if podman is not installed)."""
    wanted = names().all()
    try:
        return [image for image in wanted if subprocess.run(
            ["podman", "image", "exists", image], capture_output=True, env=_podman_env()).returncode != 0]
    except FileNotFoundError:
        return list(wanted)


def load_into(ctr: Callable[..., subprocess.CompletedProcess[str]], workdir: Path,
              images: tuple[str, ...] = ()) -> float:
    """podman save every image (or `images`) into one archive, import it with `ctr(...)` (a node's
    `Node.ctr`, in containerd's k8s.io namespace); seconds taken."""
    started = time.monotonic()
    archive = save(workdir / "images.tar", images)
    try:
        import_archive(ctr, archive)
    finally:
        archive.unlink()
    return time.monotonic() - started


def save(archive: Path, images: tuple[str, ...] = ()) -> Path:
    """Every image (or `images`) in one archive, which each node of a cluster then imports."""
    if absent := missing():
        raise ImagesMissing(f"images not built: {', '.join(absent)}; run `make images`")
    images = images or names().all()
    subprocess.run(["podman", "save", "--multi-image-archive", "--output", str(archive), *images],
                   check=True, capture_output=True, env=_podman_env())
    return archive


def import_archive(ctr: Callable[..., subprocess.CompletedProcess[str]], archive: Path) -> float:
    """`ctr images import` on one node; seconds taken."""
    started = time.monotonic()
    done = ctr("images", "import", str(archive), check=False)
    if done.returncode != 0:
        raise ImagesMissing(f"ctr images import failed: {done.stderr.strip()}")
    seconds = time.monotonic() - started
    component.say(f"images imported into containerd in {seconds:.1f} s")
    return seconds


def _podman_env() -> dict[str, str]:
    """podman with the project's containers.conf (runc, no ulimits), as tools/build-images.sh runs it."""
    conf = binaries.ROOT / "tools" / "containers.conf"
    return {**os.environ, **({"CONTAINERS_CONF": str(conf)} if conf.exists() else {})}
