"""Serving on every CPU the pod may use: one server process per CPU, forked after start-up.

One Python process uses one core at most, so on a pod with a CPU limit of 2 a single process leaves half
of what the pod pays for idle and halves its saturation point. The parent loads the settings and the
first certificate, binds the listening socket, then forks the workers and only supervises them: each
worker accepts on the shared socket, runs its own certificate reloads (`start`, threads do not survive a
fork) and its own drain on SIGTERM (webhook/draining.py). The kubelet signals the container's first
process only, so the parent forwards SIGTERM/SIGINT to every worker and exits when they all have. A worker
that dies on its own stops the others: the container exits 1 and the kubelet restarts it, as it would a
single process.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import signal
from typing import Callable, Optional

from webhook import draining

log = logging.getLogger("kube_elector.webhook")
SIGNALS = (signal.SIGTERM, signal.SIGINT)
# The default stops here: a pod without a CPU limit sees every CPU of its node, and each process costs
# memory (manifests/deployment.yaml: 256Mi, about 30 MiB a process). --workers sets any count.
DEFAULT_MAX = 4


def cpu_limit(cpu_max: Optional[str], cfs_quota: Optional[str], cfs_period: Optional[str]) -> Optional[float]:
    """The CPU limit in cores from the cgroup v2 `cpu.max` or the v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`
    texts (None: a file is missing or unlimited)."""
    try:
        if cpu_max is not None:
            quota, period = cpu_max.split()
            return None if quota == "max" else int(quota) / int(period)
        if cfs_quota is not None and cfs_period is not None and int(cfs_quota) > 0:
            return int(cfs_quota) / int(cfs_period)
    except ValueError:
        pass
    return None


def cpu_count(cgroup: str = "/sys/fs/cgroup") -> int:
    """The CPUs this process may use: its affinity, capped by its cgroup's CPU limit rounded up; >= 1."""

    def read(path: str) -> Optional[str]:
        try:
            with open(os.path.join(cgroup, path), encoding="ascii") as handle:
                return handle.read().strip()
        except OSError:
            return None

    count = len(os.sched_getaffinity(0))
    limit = cpu_limit(read("cpu.max"), read("cpu/cpu.cfs_quota_us"), read("cpu/cpu.cfs_period_us"))
    if limit is not None:
        count = min(count, math.ceil(limit))
    return max(1, count)


def default_processes() -> int:
    """One per CPU the pod may use, at most DEFAULT_MAX."""
    return min(cpu_count(), DEFAULT_MAX)


def serve(server: draining.DrainingServer, processes: int, *, start: Callable[[], None]) -> int:
    """Run `server` in `processes` processes (1: in this one); `start` runs in each before it serves.
    The exit code: 0 when every worker stopped cleanly after a signal."""
    if processes <= 1:
        start()
        server.run()
        return 0
    sock = server.config.bind_socket()
    gc.freeze()  # what start-up made stays shared with the workers (no copy on a reference count change)
    children: set[int] = set()
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for pid in children:
            _kill(pid, signum)

    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)  # no signal between a fork and its handler
    try:
        for sig in SIGNALS:
            signal.signal(sig, forward)
        for _ in range(processes):
            pid = os.fork()
            if pid == 0:  # a worker: uvicorn installs its own handlers when it starts serving
                for sig in SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                os._exit(_work(server, sock, start))
            children.add(pid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    sock.close()
    log.info("workers started", extra={"event": "workers_started", "processes": processes,
                                       "pids": sorted(children)})
    return _supervise(children, stopping)


def _work(server: draining.DrainingServer, sock: object, start: Callable[[], None]) -> int:
    try:
        start()
        server.run(sockets=[sock])  # type: ignore[list-item]
        return 0
    except BaseException:  # noqa: BLE001 (logged; the supervisor stops the rest)
        log.exception("worker failed", extra={"event": "worker_failed"})
        return 1
    finally:
        logging.shutdown()


def _supervise(children: set[int], stopping: list[int]) -> int:
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        exit_code = os.waitstatus_to_exitcode(status)
        if not stopping:  # died on its own: stop the others
            log.error("worker exited", extra={"event": "worker_exited", "pid": pid, "exit_code": exit_code})
            stopping.append(signal.SIGTERM)
            for other in children:
                _kill(other, signal.SIGTERM)
            code = 1
        elif exit_code != 0 and -exit_code not in stopping:  # uvicorn re-raises the signal it stopped on
            code = code or 1
    return code


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
