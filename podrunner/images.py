"""What an image means when there is no container runtime: a local command and its defaults.

A kubelet pulls the image and takes ENTRYPOINT, CMD, ENV, USER and WORKDIR from its config; in
process mode the runner takes them from this table instead. The match is on the repository's last
path component, so `ghcr.io/kube-elector/elector:0.1.0` and `localhost/kube-elector:dev` are both the
elector. An image not in the table can still run if the container gives an explicit `command`
(it runs on the host); without one its container waits with reason `ImageNotKnown`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LocalImage", "ImageTable", "default_table", "repository"]

VENV_BIN = Path(sys.executable).parent
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NONROOT = 65532  # distroless "nonroot", the USER of our images


@dataclass(frozen=True)
class LocalImage:
    """The parts of an image config that matter for a process: ENTRYPOINT, CMD, ENV, USER, WORKDIR."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    user: int | None = None  # None: root, like an image without USER
    workdir: str = "/"


def repository(image: str) -> str:
    """`ghcr.io/org/name:tag@sha256:...` -> `name`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


class ImageTable:
    """Repository name -> LocalImage; `lookup` returns None for an unknown image."""

    def __init__(self, images: dict[str, LocalImage]):
        self.images = dict(images)

    def lookup(self, image: str) -> LocalImage | None:
        return self.images.get(repository(image))


def default_table() -> ImageTable:
    """The elector image -> this venv's `kube-elector`; python images -> this venv's python."""
    path = f"{VENV_BIN}:{DEFAULT_PATH}"
    elector = LocalImage(entrypoint=(str(VENV_BIN / "kube-elector"),), env={"PATH": path}, user=NONROOT)
    python = LocalImage(cmd=("python3",), env={"PATH": path, "LANG": "C.UTF-8"})
    return ImageTable({"elector": elector, "kube-elector": elector, "python": python})
