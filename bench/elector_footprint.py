"""3. Elector footprint: RSS after 1 min (10 min with --long), exec to first /readyz OK, CPU while
leading and while following, with client-go's default timings (15s / 10s / 2s).

Baselines in the same run: a bare interpreter (`python -c pass` for start-up, an idle
`python -c 'import time; time.sleep(...)'` for RSS): the floor any Python sidecar pays.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import common, elections

NAMESPACE = "bench-footprint"


def image_layer_mib(work: Path) -> float:
    """What elector/Dockerfile adds to its base image: the /opt/kube-elector venv, built the same way
    (`.[elector]` from pyproject.toml + elector/ only, pip and setuptools removed, bytecode compiled).
    No image is built: that needs the base image from a container registry this machine cannot reach."""
    src, venv = work / "image-src", work / "image-venv"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(common.ROOT / name, src / name)
    shutil.copytree(common.ROOT / "elector", src / "elector", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([common.PY, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-cache-dir", f"{src}[elector]"], check=True, cwd=src)
    subprocess.run([*pip, "uninstall", "--yes", "pip", "setuptools"], check=False, capture_output=True)
    subprocess.run([common.PY, "-m", "compileall", "-q", str(venv)], check=True)
    return sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def main() -> None:
    args = common.cli(__doc__.splitlines()[0], elections=3)
    windows = [20.0] if args.quick else [60.0] + ([600.0] if args.long else [])
    work = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    plane = common.start_plane(work / "plane")
    candidates: list[elections.Elector] = []
    idle = None
    try:
        with plane.client() as api:
            common.make_namespace(api, NAMESPACE)
            kubeconfig = elections.grant(plane, api, NAMESPACE, "app", work / "app.kubeconfig")

        ready, floor = [], []
        for run in range(args.runs):  # start-up: one fresh candidate of a fresh election per run
            started = time.monotonic()
            subprocess.run([common.PY, "-c", "pass"], check=True)
            floor.append(time.monotonic() - started)
            one = elections.Elector(pod=f"ready-{run}", namespace=NAMESPACE, election=f"ready-{run}",
                                    kubeconfig=kubeconfig, log_dir=work, extra=elections.DEFAULT_TIMINGS).start()
            ready.append(one.wait_ready(timeout=30))
            one.stop()

        # steady state: `elections` elections x 2 candidates (one leads, one follows) + an idle interpreter
        idle = common.Proc([common.PY, "-c", "import time; time.sleep(3600)"], work / "idle.log")
        for e in range(args.elections):
            for pod in ("a", "b"):
                candidates.append(elections.Elector(
                    pod=f"e{e}-{pod}", namespace=NAMESPACE, election=f"steady-{e}", kubeconfig=kubeconfig,
                    log_dir=work, extra=elections.DEFAULT_TIMINGS).start())
        for candidate in candidates:
            candidate.wait_ready(timeout=30)
        elections.wait_for(lambda: sum(c.is_leader() for c in candidates) == args.elections, 30)
        common.say(f"{len(candidates)} candidates running; sampling for {windows[-1]:.0f} s")
        origin = time.monotonic()
        cpu0 = {c.pod: common.cpu_seconds(c.proc.pid) for c in candidates}
        samples: dict[float, dict[str, tuple[bool, int, float]]] = {}
        for window in windows:
            time.sleep(max(0.0, origin + window - time.monotonic()))
            elapsed = time.monotonic() - origin
            samples[window] = {c.pod: (c.is_leader(), common.rss_bytes(c.proc.pid),
                                       (common.cpu_seconds(c.proc.pid) - cpu0[c.pod]) * 3600 / elapsed)
                               for c in candidates}
            samples[window]["idle"] = (False, common.rss_bytes(idle.pid), 0.0)
    finally:
        for candidate in candidates:
            candidate.stop()
        if idle is not None:
            idle.stop()
        plane.stop()

    mib = 2**20
    rows = [common.row("exec to first /readyz OK", "s", ready, baseline=floor, baseline_name="python -c pass",
                       target="≤ 0.5 s", check=lambda v, b: v <= 0.5)]
    for window, sample in samples.items():
        label = f"{window / 60:g} min" if window >= 60 else f"{window:.0f} s"
        floor_rss = [sample["idle"][1] / mib]
        for role, leading in (("leading", True), ("following", False)):
            picked = [v for k, v in sample.items() if k != "idle" and v[0] == leading]
            rows.append(common.row(f"RSS after {label}, {role}", "MiB", [v[1] / mib for v in picked],
                                   baseline=floor_rss, baseline_name="idle interpreter",
                                   target="≤ 30 MB", check=lambda v, b: v * mib <= 30e6))
        for role, leading in (("leading", True), ("following", False)):
            picked = [v for k, v in sample.items() if k != "idle" and v[0] == leading]
            rows.append(common.row(f"CPU per hour {role} (over {label})", "CPU s/h", [v[2] for v in picked]))
    rows.append(common.row("image: layer added to the base image (the venv)", "MiB", [image_layer_mib(work)],
                           note="base python:3.12-slim not pulled here"))
    common.report("elector_footprint", rows, settings={
        "runs": args.runs, "elections": args.elections, "windows_s": windows, "timings": elections.DEFAULT_TIMINGS})


if __name__ == "__main__":
    main()
