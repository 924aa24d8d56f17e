"""The elector image (`make images`) run with podman as the webhook injects it: uid 65532, read-only root,
no capabilities, podman's default seccomp profile (RuntimeDefault), no new privileges; `--network host`
so that it reaches the local kube-apiserver on 127.0.0.1.

The image must be built: a missing image or podman is a failure ("run make images"), not a skip.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

from localplane.process.ports import free_port
from tests.integration.elector.conftest import sa_kubeconfig  # noqa: F401 (fixture)
from localplane.kube_elector.electors import get_json

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / "tools" / "containers.conf"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
FAST = ["--lease-duration=3s", "--renew-deadline=2s", "--retry-period=500ms"]
# The injected container's securityContext (webhook/sidecar.py), in podman's words.
# Run inside an image (`python -c`): what every light image must hold true. `{absent}` are modules that must
# not be there; os.walk, not pkgutil (the elector image has no pkgutil).
LIGHT_IMAGE_CHECKS = (
    "import os\n"
    "for absent in {absent!r}:\n"
    "    try:\n"
    "        __import__(absent)\n"
    "    except ImportError:\n"
    "        continue\n"
    "    raise AssertionError(absent + ' is in the image')\n"
    "try:\n"
    "    open('/opt/kube-elector/x', 'w')\n"
    "except OSError:\n"
    "    pass\n"
    "else:\n"
    "    raise AssertionError('the root file system is writable')\n"
)
SECURITY = ["--user=65532:65532", "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"]


def image_name() -> str:
    """tools/images.env's ELECTOR_IMAGE; the environment variable ELECTOR_IMAGE overrides it."""
    if os.environ.get("ELECTOR_IMAGE"):
        return os.environ["ELECTOR_IMAGE"]
    for line in (ROOT / "tools" / "images.env").read_text().splitlines():
        if line.startswith("ELECTOR_IMAGE="):
            return line.partition("=")[2].strip()
    raise AssertionError("no ELECTOR_IMAGE in tools/images.env")


def podman(*args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)})
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    return done


@pytest.fixture(scope="session")
def elector_image() -> str:
    """The built image's name; fails (never skips) when podman or the image is missing."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run `make images` (it needs podman, see tools/build-images.sh)")
    image = image_name()
    if podman("image", "exists", image).returncode != 0:
        pytest.fail(f"image {image} not built: run `make images`")
    return image


class Container:
    """One detached `podman run` of the elector image, stopped with SIGTERM (`podman stop`)."""

    def __init__(self, image: str, name: str, args: list[str], *, env: dict[str, str],
                 mounts: dict[Path, str]) -> None:
        self.name = name
        self.http, self.probes = free_port(), free_port()
        self.argv = [
            "run", "--detach", f"--name={self.name}", "--network=host", *SECURITY,
            *(f"--env={key}={value}" for key, value in env.items()),
            *(f"--volume={source}:{target}:ro" for source, target in mounts.items()),
            image, f"--http=127.0.0.1:{self.http}", f"--probe-address=127.0.0.1:{self.probes}", *args,
        ]
        self.started_at = 0.0

    def start(self) -> "Container":
        self.started_at = time.monotonic()
        podman(*self.argv, check=True)
        return self

    def status(self) -> Optional[dict[str, Any]]:
        return get_json(f"http://127.0.0.1:{self.http}/", timeout=0.5)

    def probe(self, path: str) -> int:
        """The HTTP status of a probe path (0: no answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.probes}{path}", timeout=0.5) as response:  # noqa: S310
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def running(self) -> bool:
        return podman("inspect", "--format={{.State.Running}}", self.name).stdout.strip() == "true"

    def stop(self, timeout: int = 15) -> int:
        """SIGTERM (SIGKILL after `timeout` s), as the kubelet stops a container; the exit code."""
        podman("stop", f"--time={timeout}", self.name, timeout=timeout + 30, check=True)
        return self.exit_code()

    def exit_code(self) -> int:
        return int(podman("wait", self.name, timeout=30, check=True).stdout.strip().splitlines()[-1])

    def logs(self) -> str:
        done = podman("logs", self.name)
        return done.stdout + done.stderr

    def remove(self) -> None:
        podman("rm", "--force", "--time=0", self.name)


@pytest.fixture
def containers(elector_image: str, namespace: str, tmp_path: Path) -> Iterator[Callable[..., Container]]:
    """Factory: `containers("pod-a", kubeconfig, "--election=e", ...)` starts one; all removed at the end."""
    started: list[Container] = []

    def start(pod: str, kubeconfig: Optional[Path], *args: str, env: Optional[dict[str, str]] = None,
              service_account: Optional[Path] = None) -> Container:
        """With a kubeconfig (mounted at /etc/elector/), or in-cluster: `service_account` (a directory with
        token, ca.crt, namespace) mounted where the kubelet mounts it, KUBERNETES_SERVICE_* set from `env`."""
        mounts: dict[Path, str] = {}
        flags = [f"--election-namespace={namespace}", *FAST, *args]
        if kubeconfig is not None:
            # The container's uid 65532 reads the file through the bind mount: only its own mode counts.
            readable = tmp_path / f"{pod}-{uuid.uuid4().hex[:6]}{kubeconfig.suffix}"
            shutil.copyfile(kubeconfig, readable)
            readable.chmod(0o644)
            target = f"/etc/elector/kubeconfig{kubeconfig.suffix}"
            mounts[readable] = target
            flags.append(f"--kubeconfig={target}")
        if service_account is not None:
            service_account.chmod(0o755)
            for file in service_account.iterdir():
                file.chmod(0o644)
            mounts[service_account] = SERVICE_ACCOUNT_DIR
        container = Container(
            elector_image, f"image-test-{pod}-{uuid.uuid4().hex[:8]}", flags,
            env={"POD_NAME": pod, "POD_NAMESPACE": namespace, "POD_UID": f"uid-{pod}", **(env or {})},
            mounts=mounts,
        )
        started.append(container)
        return container.start()

    yield start
    for container in started:
        with contextlib.suppress(Exception):
            container.remove()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, logs: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs()}")
