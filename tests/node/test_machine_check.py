"""The check around every cluster the suite starts (tests/node/machine.py) fails on what is left behind.

No cluster: a process, a link, a mount and a cgroup made by hand stand for a node's, and one of them is
left behind. Root only (as the node tests are)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.node import machine

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes a link, a mount and a cgroup: root only")


def _cgroup_root() -> Path:
    return next(Path(line.split()[1]) for line in Path("/proc/self/mounts").read_text().splitlines()
                if line.split()[2] in ("cgroup", "cgroup2"))


@pytest.mark.parametrize("left_behind", ["links", "cgroups", "nothing"])
def test_what_a_cluster_leaves_behind_fails_the_check(tmp_path, left_behind):
    name = f"kelabt{uuid.uuid4().hex[:6]}"
    mount_point, cgroup = tmp_path / "mnt", _cgroup_root() / name
    mount_point.mkdir()
    process = None
    pids: set[int] = set()

    def ours(seen: dict) -> dict:
        """Only what this test made: the session's cluster may run beside it, its pods coming and going."""
        return {"processes": {p for p in seen["processes"] if int(p.split()[0]) in pids},
                "links": [link for link in seen["links"] if link == name],
                "mounts": [point for point in seen["mounts"] if point == str(mount_point)],
                "cgroups": [group for group in seen["cgroups"] if group.endswith("/" + name)]}
    try:
        with pytest.raises(AssertionError) if left_behind != "nothing" else _nothing() as failed:
            with machine.left_as_found(tmp_path, lambda _: ours(machine.snapshot(tmp_path))) as running_now:
                process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(tmp_path)])
                pids.add(process.pid)
                subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
                subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount_point)], check=True)
                cgroup.mkdir()
                running_now()
                process.kill()
                process.wait()
                subprocess.run(["umount", str(mount_point)], check=True)
                if left_behind != "links":
                    subprocess.run(["ip", "link", "del", name], check=True)
                if left_behind != "cgroups":
                    cgroup.rmdir()
        if failed is not None:
            assert f"{left_behind}: before" in str(failed.value), failed.value
    finally:
        if process and process.poll() is None:
            process.kill()
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
        subprocess.run(["umount", str(mount_point)], capture_output=True, check=False)
        if cgroup.exists():
            cgroup.rmdir()


def test_a_cluster_the_snapshot_cannot_see_fails_the_check(tmp_path):
    with pytest.raises(AssertionError, match="did not show"):
        with machine.left_as_found(tmp_path) as running_now:
            running_now()  # nothing runs: an empty diff afterwards would prove nothing


class _nothing:
    """`pytest.raises`' stand-in when nothing may be raised: `failed` is None."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False
