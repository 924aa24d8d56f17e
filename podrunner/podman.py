"""Containers from real images with podman (optional: `PodRunner(..., runtime="podman")`).

Each container is `podman run` in the pod's network namespace (`--network ns:/run/netns/NAME`), so it
shares the pod's loopback with its sibling containers and reaches the API server through the same
relay. Images must already be local (`--pull=never`); a pod's image name can be mapped to a local one
(e.g. `python:3.12-slim` -> a stand-in built here, since nothing can be pulled).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from typing import Any

from podrunner import podspec
from podrunner.images import LocalImage, repository

__all__ = ["Podman", "podman_argv", "available"]

LABEL = "io.podrunner.pod"


def available(binary: str = "podman") -> bool:
    return shutil.which(binary) is not None


class Podman:
    def __init__(self, aliases: dict[str, str] | None = None, binary: str = "podman"):
        self.aliases = dict(aliases or {})
        self.binary = binary
        self._images: dict[str, LocalImage | None] = {}

    def resolve(self, image: str) -> str:
        """The local image for a pod's image name: an alias for the full name or for its repository."""
        return self.aliases.get(image) or self.aliases.get(repository(image)) or image

    async def _run(self, *args: str, timeout: float = 30.0) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(self.binary, *args, stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        return proc.returncode or 0, out.decode(errors="replace")

    async def image(self, ref: str) -> LocalImage:
        """The image's config (ENTRYPOINT, CMD, ENV, USER, WORKDIR); ConfigError if it is not local."""
        if ref not in self._images:
            code, out = await self._run("image", "inspect", "--format", "{{json .Config}}", ref)
            if code != 0:
                self._images[ref] = None
            else:
                config: dict[str, Any] = json.loads(out.strip() or "{}") or {}
                user = str(config.get("User") or "0").split(":")[0]
                self._images[ref] = LocalImage(
                    entrypoint=tuple(config.get("Entrypoint") or ()), cmd=tuple(config.get("Cmd") or ()),
                    env=dict(e.split("=", 1) for e in config.get("Env") or [] if "=" in e),
                    user=int(user) if user.isdigit() else None, workdir=config.get("WorkingDir") or "/")
        found = self._images[ref]
        if found is None:
            self._images.pop(ref)  # look again next time: it may have been built meanwhile
            raise podspec.ConfigError(f'image "{ref}" is not present with podman here (nothing is pulled); '
                                      "build it first", reason="ErrImageNeverPull")
        return found

    async def remove(self, name: str) -> None:
        await self._run("rm", "--force", "--time", "0", name)

    async def kill(self, name: str) -> None:
        await self._run("kill", "--signal", "KILL", name)

    async def pid(self, name: str) -> int | None:
        code, out = await self._run("inspect", "--format", "{{.State.Pid}}", name)
        return int(out.strip()) if code == 0 and out.strip().isdigit() and int(out.strip()) > 0 else None

    def exec_argv(self, name: str, command: list[str]) -> list[str]:
        return [self.binary, "exec", name, *command]

    def remove_stale(self, prefix: str) -> list[str]:
        """Containers named `<prefix><pid>-...` of a runner that is gone (it was killed): removed."""
        done = subprocess.run([self.binary, "ps", "--all", "--filter", f"label={LABEL}", "--format", "{{.Names}}"],
                              capture_output=True, text=True)
        stale = []
        for name in done.stdout.split():
            rest = name.removeprefix(prefix)
            pid = rest.split("-", 1)[0]
            if rest != name and pid.isdigit() and not _alive(int(pid)):
                subprocess.run([self.binary, "rm", "--force", "--time", "0", name], capture_output=True)
                stale.append(name)
        return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def podman_argv(
    *, binary: str, name: str, pod_uid: str, netns: str, host: str, image: str, mounts: list[podspec.Mount],
    who: podspec.Identity, env: dict[str, str], container: dict[str, Any], expanded: dict[str, list[str]],
) -> list[str]:
    """`podman run` for one container, Kubernetes semantics: `command` replaces ENTRYPOINT (and CMD),
    `args` replaces CMD; env, user, read-only root, capabilities and mounts as the pod asks."""
    argv = [binary, "run", "--rm", "--pull=never", f"--name={name}", f"--label={LABEL}={pod_uid}",
            f"--network=ns:/run/netns/{netns}", f"--hostname={host}", f"--user={who.uid}:{who.gid}"]
    argv += [f"--group-add={g}" for g in who.groups]
    if who.read_only_root:
        argv += ["--read-only", "--read-only-tmpfs=false"]
    if who.drop_all_caps:
        argv.append("--cap-drop=ALL")
    if who.no_new_privs:
        argv.append("--security-opt=no-new-privileges")
    for m in mounts:
        argv.append(f"--volume={m.source}:{m.target}{':ro' if m.read_only else ''}")
    for key, value in env.items():
        argv.append(f"--env={key}={value}")
    if container.get("workingDir"):
        argv.append(f"--workdir={container['workingDir']}")
    if "command" in expanded:
        argv.append(f"--entrypoint={json.dumps(expanded['command'])}")
    argv.append(image)
    argv += expanded.get("args", [])
    return argv
