"""3. Elector footprint: RSS after 1 min (10 min with --long), exec to first /readyz OK, CPU while
leading and while following, with client-go's default timings (15s / 10s / 2s); and the images: size
(uncompressed, and gzip-compressed as a registry stores it), the container's exec to /readyz and RSS.

Baselines in the same run: a bare interpreter (`python -c pass` for start-up, an idle
`python -c 'import time; time.sleep(...)'` for RSS): the floor any Python sidecar pays. For the image
figures: the previous image (the venv on the whole base, `elector/Dockerfile --target venv`), built in
this run by `tools/build-images.sh elector elector_baseline webhook` (cached layers make it quick). And the
floor of any elector in the image: bench/floor_client.py, one TLS watch of a Lease and one GET every 6 s with
the image's interpreter and nothing of the elector's (its RSS is the least a stdlib-Python elector can hold).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zlib
from datetime import datetime
from pathlib import Path

from bench import elections, kube, procs, record, stats

NAMESPACE = "bench-footprint"
BASELINE_IMAGE = "localhost/kube-elector:venv-baseline"  # tools/build-images.sh elector_baseline
# The injected container's securityContext (webhook/sidecar.py), in podman's words.
SECURITY = ["--user=65532:65532", "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"]
MB = 1e6
FLOOR_CLIENT = Path(__file__).with_name("floor_client.py")
FLOOR_PYTHON = "/opt/kube-elector/bin/python"  # the venv's interpreter in the image (elector/Dockerfile)


# ------------------------------------------------------------------ images


def podman(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTAINERS_CONF": str(record.ROOT / "tools" / "containers.conf")}
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=timeout, env=env)


def image_names() -> dict[str, str]:
    values = {}
    for line in (record.ROOT / "tools" / "images.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[key.strip()] = value.strip()
    return {"light": values["ELECTOR_IMAGE"], "venv": BASELINE_IMAGE, "webhook": values["WEBHOOK_IMAGE"]}


def build_images() -> float:
    """The light elector image, the previous one and the webhook image, in this run; seconds taken."""
    started = time.monotonic()
    done = subprocess.run([str(record.ROOT / "tools" / "build-images.sh"), "elector", "elector_baseline", "webhook"],
                          capture_output=True, text=True, check=False, cwd=record.ROOT,
                          env={**os.environ, "ELECTOR_BASELINE_IMAGE": BASELINE_IMAGE})
    if done.returncode != 0:
        raise RuntimeError(f"tools/build-images.sh failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.monotonic() - started


def image_sizes(image: str, work: Path) -> tuple[float, float, list[tuple[int, str]]]:
    """(uncompressed bytes as podman counts them, gzip-compressed layer bytes + config, files by size).

    Compressed as `podman push` stores it: each layer tar gzip'ed at the default level (6)."""
    uncompressed = float(podman("image", "inspect", "--format={{.Size}}", image).stdout.strip())
    archive = work / f"save-{uuid.uuid4().hex[:8]}.tar"
    podman("save", "--format=docker-archive", f"--output={archive}", image)
    compressed, files = 0.0, []
    try:
        with tarfile.open(archive) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
            compressed += outer.getmember(manifest["Config"]).size
            for layer in manifest["Layers"]:
                stream = outer.extractfile(layer)
                assert stream is not None
                packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip framing, level 6
                while chunk := stream.read(1 << 20):
                    compressed += len(packer.compress(chunk))
                compressed += len(packer.flush())
                with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                    files += [(m.size, "/" + m.name.lstrip("./")) for m in inner.getmembers() if m.isfile()]
    finally:
        archive.unlink(missing_ok=True)
    return uncompressed, compressed, sorted(files, reverse=True)


class Container:
    """A detached `podman run` of an elector image with the injected security context, network host, and
    the injected `--http=localhost:...` (a name: how the elector resolves it shows in its RSS)."""

    def __init__(self, image: str, *, pod: str, election: str, kubeconfig: Path, extra: list[str],
                 floor: bool = False) -> None:
        self.name = f"bench-{pod}-{uuid.uuid4().hex[:8]}"
        self.pod = pod
        self.http, self.probes = elections.free_port(), elections.free_port()
        run = ["run", "--detach", f"--name={self.name}", "--network=host", *SECURITY,
               f"--env=POD_NAME={pod}", f"--env=POD_NAMESPACE={NAMESPACE}", f"--env=POD_UID=uid-{pod}",
               f"--volume={kubeconfig}:/etc/elector/kubeconfig:ro"]
        if floor:  # the image's interpreter running bench/floor_client.py instead of the elector
            self.argv = [*run, f"--volume={FLOOR_CLIENT}:/floor_client.py:ro", f"--entrypoint={FLOOR_PYTHON}", image,
                         "/floor_client.py", "/etc/elector/kubeconfig", NAMESPACE, election]
            return
        self.argv = [*run, image, f"--election={election}", f"--election-namespace={NAMESPACE}",
                     "--kubeconfig=/etc/elector/kubeconfig", f"--http=localhost:{self.http}",
                     f"--probe-address=127.0.0.1:{self.probes}", *extra]
        self.invoked = 0.0

    def start(self) -> "Container":
        self.invoked = time.time()
        podman(*self.argv)
        return self

    def pid(self) -> int:
        return int(podman("inspect", "--format={{.State.Pid}}", self.name).stdout.strip() or 0)

    def started_at(self) -> float:
        """When the runtime started the entrypoint (podman's State.StartedAt), as a Unix time."""
        text = podman("inspect", "--format={{.State.StartedAt.Format \"2006-01-02T15:04:05.000000Z07:00\"}}",
                      self.name).stdout.strip()
        return datetime.fromisoformat(text).timestamp()

    def wait_ready(self, timeout: float = 30) -> float:
        """Unix time of the first /readyz 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.probes}/readyz", timeout=0.5) as answer:  # noqa: S310
                    if answer.status == 200:
                        return time.time()
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.005)
        raise RuntimeError(f"{self.name} not ready in {timeout:.0f} s:\n{podman('logs', self.name, check=False).stderr}")

    def is_leader(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/", timeout=0.5) as answer:  # noqa: S310
                return bool(json.loads(answer.read()).get("is_leader"))
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        podman("rm", "--force", "--time=10", self.name, check=False)


def start_up(image: str, kubeconfig: Path, run: int, election: str) -> tuple[float, float]:
    """One fresh container of a fresh election (its rights made before): (entrypoint start -> /readyz,
    podman run -> /readyz)."""
    one = Container(image, pod=f"ready-{run}", election=election, kubeconfig=kubeconfig,
                    extra=elections.DEFAULT_TIMINGS).start()
    try:
        ready = one.wait_ready()
        return ready - one.started_at(), ready - one.invoked
    finally:
        one.stop()


def _all_running(candidates: list[elections.Elector], work: Path) -> None:
    """Stop the bench, naming the logs, if an elector has exited: its figures would read 0."""
    gone = [c.pod for c in candidates if c.proc.poll() is not None]
    if gone:
        raise SystemExit(f"elector_footprint: {', '.join(gone)} exited; see their logs in {work}")


# ------------------------------------------------------------------ main


def main() -> None:
    args = record.cli(__doc__.splitlines()[0], elections=3, images=1)
    windows = [20.0] if args.quick else [60.0] + ([600.0] if args.long else [])
    work = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    with_images = bool(args.images) and shutil.which("podman") is not None
    names = image_names()
    sizes: dict[str, tuple[float, float, list[tuple[int, str]]]] = {}
    build_s = None
    if with_images:
        record.say("building the images (elector, its venv baseline, webhook)")
        build_s = build_images()
        for kind, image in names.items():
            sizes[kind] = image_sizes(image, work)
        record.say(f"images built in {build_s:.0f} s; files of {names['light']} by size:")
        for size, name in sizes["light"][2][:25]:
            record.say(f"  {size / MB:6.2f} MB  {name}")
    plane = kube.start_plane(work / "plane")
    candidates: list[elections.Elector] = []
    boxes: list[Container] = []
    idle = None
    floor_box = None
    image_ready: dict[str, list[tuple[float, float]]] = {"light": [], "venv": []}
    try:
        with plane.client() as api:
            kube.make_namespace(api, NAMESPACE)
            # every election of the run, its rights made up front (as the controller would before the pods run)
            names_of_elections = ([f"ready-{run}" for run in range(args.runs)]
                                  + [f"image-ready-{kind}-{run}" for kind in ("light", "venv")
                                     for run in range(args.runs)]
                                  + [f"steady-{e}" for e in range(args.elections)] + ["image-light", "image-venv"])
            kubeconfig = elections.grant(plane, api, NAMESPACE, "app", work / "app.kubeconfig",
                                         elections=names_of_elections)
        shared = work / "container.kubeconfig"  # read by uid 65532 through the bind mount
        shutil.copyfile(kubeconfig, shared)
        shared.chmod(0o644)

        ready, floor = [], []
        for run in range(args.runs):  # start-up: one fresh candidate of a fresh election per run
            started = time.monotonic()
            subprocess.run([procs.PY, "-c", "pass"], check=True)
            floor.append(time.monotonic() - started)
            one = elections.Elector(pod=f"ready-{run}", namespace=NAMESPACE, election=f"ready-{run}",
                                    kubeconfig=kubeconfig, log_dir=work, extra=elections.DEFAULT_TIMINGS).start()
            ready.append(one.wait_ready(timeout=30))
            one.stop()
            if with_images:  # interleaved, alternating which image goes first
                order = ("light", "venv") if run % 2 == 0 else ("venv", "light")
                for kind in order:
                    image_ready[kind].append(start_up(names[kind], shared, run, f"image-ready-{kind}-{run}"))

        # steady state: `elections` elections x 2 candidates (one leads, one follows) + an idle interpreter;
        # with the images, one election of 2 containers per image
        idle = procs.Proc([procs.PY, "-c", "import time; time.sleep(3600)"], work / "idle.log")
        for e in range(args.elections):
            for pod in ("a", "b"):
                candidates.append(elections.Elector(
                    pod=f"e{e}-{pod}", namespace=NAMESPACE, election=f"steady-{e}", kubeconfig=kubeconfig,
                    log_dir=work, extra=elections.DEFAULT_TIMINGS).start())
        if with_images:
            for kind in ("light", "venv"):
                for pod in ("a", "b"):
                    boxes.append(Container(names[kind], pod=f"{kind}-{pod}", election=f"image-{kind}",
                                           kubeconfig=shared, extra=elections.DEFAULT_TIMINGS).start())
                    if pod == "a":
                        boxes[-1].wait_ready()
            floor_box = Container(names["light"], pod="floor", election="image-light", kubeconfig=shared, extra=[],
                                  floor=True).start()
        for candidate in candidates:
            candidate.wait_ready(timeout=30)
        for box in boxes:
            box.wait_ready()
        elections.wait_for(lambda: sum(c.is_leader() for c in candidates) == args.elections, 30)
        elections.wait_for(lambda: sum(b.is_leader() for b in boxes) == len(boxes) // 2, 30)
        if floor_box is not None:
            boxes.append(floor_box)  # sampled and stopped with the others; it serves no /readyz
        _all_running(candidates, work)
        pids = {box.name: box.pid() for box in boxes}
        record.say(f"{len(candidates)} candidates and {len(boxes)} containers running; sampling for {windows[-1]:.0f} s")
        origin = time.monotonic()
        cpu0 = {c.pod: procs.cpu_seconds(c.proc.pid) for c in candidates}
        samples: dict[float, dict[str, tuple[bool, int, float]]] = {}
        box_samples: dict[float, dict[str, tuple[bool, int]]] = {}
        for window in windows:
            time.sleep(max(0.0, origin + window - time.monotonic()))
            elapsed = time.monotonic() - origin
            samples[window] = {c.pod: (c.is_leader(), procs.rss_bytes(c.proc.pid),
                                       (procs.cpu_seconds(c.proc.pid) - cpu0[c.pod]) * 3600 / elapsed)
                               for c in candidates}
            samples[window]["idle"] = (False, procs.rss_bytes(idle.pid), 0.0)
            box_samples[window] = {box.pod: (box.is_leader(), procs.rss_bytes(pids[box.name])) for box in boxes}
            if floor_box is not None and not box_samples[window]["floor"][1]:
                raise SystemExit(f"elector_footprint: bench/floor_client.py exited:\n"
                                 f"{podman('logs', floor_box.name, check=False).stderr[-2000:]}")
            _all_running(candidates, work)  # a process gone would be sampled as 0 MiB
    finally:
        for candidate in candidates:
            candidate.stop()
        for box in boxes:
            box.stop()
        if idle is not None:
            idle.stop()
        plane.stop()

    mib = 2**20
    rows = [stats.row("exec to first /readyz OK", "s", ready, baseline=floor, baseline_name="python -c pass",
                       target="≤ 0.5 s", check=lambda v, b: v <= 0.5)]
    for window, sample in samples.items():
        label = f"{window / 60:g} min" if window >= 60 else f"{window:.0f} s"
        floor_rss = [sample["idle"][1] / mib]
        for role, leading in (("leading", True), ("following", False)):
            picked = [v for k, v in sample.items() if k != "idle" and v[0] == leading]
            rows.append(stats.row(f"RSS after {label}, {role}", "MiB", [v[1] / mib for v in picked],
                                   baseline=floor_rss, baseline_name="idle interpreter",
                                   target="≤ 18 MiB (issue 24)", check=lambda v, b: v <= 18))
        for role, leading in (("leading", True), ("following", False)):
            picked = [v for k, v in sample.items() if k != "idle" and v[0] == leading]
            rows.append(stats.row(f"CPU per hour {role} (over {label})", "CPU s/h", [v[2] for v in picked]))
    extra: dict[str, object] = {}
    if with_images:
        venv = "venv image"
        rows += [
            stats.row("elector image size, uncompressed", "MB", [sizes["light"][0] / MB],
                       baseline=[sizes["venv"][0] / MB], baseline_name=venv,
                       target="≤ 25 MB", check=lambda v, b: v <= 25),
            stats.row("elector image size, compressed (gzip layers)", "MB", [sizes["light"][1] / MB],
                       baseline=[sizes["venv"][1] / MB], baseline_name=venv),
            stats.row("container: entrypoint start to first /readyz OK", "s", [r[0] for r in image_ready["light"]],
                       baseline=[r[0] for r in image_ready["venv"]], baseline_name=venv,
                       target="≤ 0.2 s", check=lambda v, b: v <= 0.2, note="podman State.StartedAt"),
            stats.row("container: podman run to first /readyz OK", "s", [r[1] for r in image_ready["light"]],
                       baseline=[r[1] for r in image_ready["venv"]], baseline_name=venv),
        ]
        for window, sample in box_samples.items():
            label = f"{window / 60:g} min" if window >= 60 else f"{window:.0f} s"
            for role, leading in (("leading", True), ("following", False)):
                ours = [rss / mib for pod, (lead, rss) in sample.items() if pod.startswith("light") and lead == leading]
                theirs = [rss / mib for pod, (lead, rss) in sample.items() if pod.startswith("venv") and lead == leading]
                rows.append(stats.row(f"container RSS after {label}, {role}", "MiB", ours, baseline=theirs,
                                       baseline_name=venv, target="≤ 18 MiB (issue 24)",
                                       check=lambda v, b: v <= 18))
            if "floor" in sample:
                rows.append(stats.row(f"container RSS after {label}, floor: a TLS watch + a GET every 6 s, "
                                      "no elector (bench/floor_client.py)", "MiB", [sample["floor"][1] / mib],
                                      baseline=[v[1] / mib for k, v in sample.items() if k.startswith("light")],
                                      baseline_name="the elector", target="≤ 18 MiB (issue 24)",
                                      check=lambda v, b: v <= 18))
        rows.append(stats.row("webhook image size, uncompressed", "MB", [sizes["webhook"][0] / MB],
                               target="≤ 60 MB (issue 24)", check=lambda v, b: v <= 60, note=f"compressed {sizes['webhook'][1] / MB:.1f} MB"))
        extra = {"images": {kind: {"image": names[kind], "uncompressed_bytes": sizes[kind][0],
                                   "compressed_bytes": sizes[kind][1]} for kind in names},
                 "elector_image_files": [{"bytes": size, "path": path} for size, path in sizes["light"][2]],
                 "images_build_s": build_s}
    record.report("elector_footprint", rows, settings={
        "runs": args.runs, "elections": args.elections, "windows_s": windows, "timings": elections.DEFAULT_TIMINGS,
        "images": with_images}, extra=extra)


if __name__ == "__main__":
    main()
