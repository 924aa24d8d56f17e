"""Elector RSS (issue 24.3): a leading and a following elector after --window seconds against the local
control plane (TLS, a ServiceAccount token, client-go's timings), beside an idle interpreter of the same
run; for this tree's code and --before's (a git ref, as `python -m elector`), and with podman for the
shipped image and --before-image, run as the webhook injects them (`--http=localhost:...`, read-only,
uid 65532), the idle interpreter there being the image's own with the image's ENV.

    .venv/bin/python -m bench.elector_rss [--window 60] [--before main] [--image I] [--before-image I]

Lighter than elector_footprint.py (which also builds the images and times start-up): this one only
samples memory, /proc/PID/smaps_rollup (Rss, Anonymous) and the thread count.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from bench import elections, elector_footprint, kube, procs, record, stats
from localplane.kube_elector.electors import get_json

NAMESPACE = elector_footprint.NAMESPACE  # its Container runs there
MIB = 2**20


def memory(pid: int) -> dict[str, int]:
    """Rss and Anonymous (bytes) of one process, and its threads."""
    rollup = dict(line.split(":", 1) for line in procs.read_text(f"/proc/{pid}/smaps_rollup").splitlines()[1:])
    status = dict(line.split(":", 1) for line in procs.read_text(f"/proc/{pid}/status").splitlines())
    return {"rss": int(rollup["Rss"].split()[0]) * 1024, "anon": int(rollup["Anonymous"].split()[0]) * 1024,
            "threads": int(status["Threads"])}


def checkout(ref: str, into: Path) -> Path:
    """`elector/` at `ref` (git archive), to run as `python -m elector` from there."""
    archive = into / "src.tar"
    subprocess.run(["git", "archive", "-o", str(archive), ref, "elector"], cwd=procs.ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "src")  # noqa: S202 (our own repository)
    return into / "src"


class Local:
    """`python -m elector` from `source` (cwd and PYTHONPATH: that tree's package, not the installed one)."""

    def __init__(self, source: Path, *, pod: str, election: str, kubeconfig: Path, log: Path) -> None:
        self.http, self.probes = elections.free_port(), elections.free_port()
        argv = [procs.PY, "-m", "elector", f"--election={election}", f"--election-namespace={NAMESPACE}",
                f"--kubeconfig={kubeconfig}", f"--http=localhost:{self.http}",
                f"--probe-address=0.0.0.0:{self.probes}", *elections.DEFAULT_TIMINGS]
        env = {**os.environ, "POD_NAME": pod, "POD_NAMESPACE": NAMESPACE, "POD_UID": f"uid-{pod}",
               "PYTHONPATH": str(source), "ELECTOR_LOG_FORMAT": "json"}
        with log.open("ab") as out:
            self.popen = subprocess.Popen(argv, cwd=source, env=env, stdout=out, stderr=subprocess.STDOUT)

    def pid(self) -> int:
        return self.popen.pid

    def wait_ready(self) -> None:
        procs.wait_http(f"http://127.0.0.1:{self.probes}/readyz", timeout=30, proc=self.popen)

    def is_leader(self) -> bool:
        return bool((get_json(f"http://127.0.0.1:{self.http}/") or {}).get("is_leader"))

    def stop(self) -> None:
        self.popen.kill()
        self.popen.wait(10)


class Idle:
    """The floor: an idle interpreter (the image's own when `image` is given)."""

    def __init__(self, image: str = "") -> None:
        self.name = ""
        code = "import time; time.sleep(3600)"
        if image:
            self.name = f"bench-rss-idle-{os.getpid()}-{time.monotonic_ns()}"
            elector_footprint.podman("run", "--detach", f"--name={self.name}", "--network=none",
                                     *elector_footprint.SECURITY, "--entrypoint=/opt/kube-elector/bin/python",
                                     image, "-c", code)
            self.pid = int(elector_footprint.podman("inspect", "--format={{.State.Pid}}", self.name).stdout)
        else:
            self.popen = subprocess.Popen([procs.PY, "-c", code])
            self.pid = self.popen.pid

    def stop(self) -> None:
        if self.name:
            elector_footprint.podman("rm", "--force", "--time=0", self.name, check=False)
        else:
            self.popen.kill()
            self.popen.wait(10)


def main() -> None:
    names = elector_footprint.image_names()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=60.0, help="seconds of leading/following before sampling")
    parser.add_argument("--before", default="main", help="git ref of the code to compare with ('' for none)")
    parser.add_argument("--image", default=names["light"], help="the image to measure ('' for none)")
    parser.add_argument("--before-image", default="", help="an image to compare with")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    with_podman = shutil.which("podman") is not None
    variants: list[tuple[str, Any]] = [("this tree", procs.ROOT)]
    if args.before:
        variants.append((f"{args.before} (python -m elector)", checkout(args.before, work)))
    images = [(f"image {i}", i) for i in (args.image, args.before_image) if i and with_podman]
    plane = kube.start_plane(work / "plane")
    running: list[Any] = []
    try:
        with plane.client() as api:
            kube.make_namespace(api, NAMESPACE)
            elected = [f"rss-{n}" for n in range(len(variants) + len(images))]
            kubeconfig = elections.grant(plane, api, NAMESPACE, "app", work / "app.kubeconfig", elections=elected)
        shared = work / "container.kubeconfig"  # read by uid 65532 through the bind mount
        shutil.copyfile(kubeconfig, shared)
        shared.chmod(0o644)
        pairs: dict[str, list[Any]] = {}
        floors: dict[str, Idle] = {"local": Idle()}
        for n, (label, source) in enumerate(variants):
            pairs[label] = [Local(source, pod=f"v{n}-{pod}", election=elected[n], kubeconfig=kubeconfig,
                                  log=work / f"v{n}-{pod}.log") for pod in ("a", "b")]
        for n, (label, image) in enumerate(images, start=len(variants)):
            floors[label] = Idle(image)
            pairs[label] = [elector_footprint.Container(image, pod=f"v{n}-{pod}", election=elected[n],
                                                        kubeconfig=shared, extra=elections.DEFAULT_TIMINGS).start()
                            for pod in ("a", "b")]
        running = [*floors.values(), *(one for pair in pairs.values() for one in pair)]
        for pair in pairs.values():
            for one in pair:
                one.wait_ready()
        for label, pair in pairs.items():
            if not elections.wait_for(lambda p=pair: sum(one.is_leader() for one in p) == 1, 30):
                raise RuntimeError(f"{label}: no single leader in 30 s")
        record.say(f"{len(pairs)} pairs running; sampling after {args.window:.0f} s")
        time.sleep(args.window)
        sampled = {label: [(one.is_leader(), memory(one.pid())) for one in pair]
                   for label, pair in pairs.items()}
        floor = {kind: memory(idle.pid) for kind, idle in floors.items()}
    finally:
        for one in running:
            one.stop()
        plane.stop()

    rows = []
    for label, samples in sampled.items():
        idle = floor.get(label, floor["local"])
        for role, leading in (("leading", True), ("following", False)):
            picked = [m for lead, m in samples if lead == leading]
            check: Callable[[float, Any], bool] = lambda v, b: v <= 18  # noqa: E731
            rows.append(stats.row(f"RSS {role}, {label}", "MiB", [m["rss"] / MIB for m in picked],
                                  baseline=[idle["rss"] / MIB], baseline_name="idle interpreter",
                                  target="≤ 18 MiB", check=check,
                                  note=f"anon {sum(m['anon'] for m in picked) / len(picked) / MIB:.1f} MiB "
                                       f"(idle {idle['anon'] / MIB:.1f}), threads "
                                       f"{','.join(str(m['threads']) for m in picked)}" if picked else ""))
    record.report("elector_rss", rows, settings={"window_s": args.window, "before": args.before,
                                                "images": [i for _, i in images],
                                                "timings": elections.DEFAULT_TIMINGS})


if __name__ == "__main__":
    main()
