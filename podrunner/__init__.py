"""A local pod runner: the scheduler and kubelet a local control plane lacks (a test and demo harness).

It runs each Pod from its *stored* spec, so what the webhook injected is exactly what runs: one
network namespace per pod (localhost is the pod's own), containers as local processes in their own
mount and UTS namespaces (volumes bind-mounted, the pod's hostname, the container's user), native
sidecars before app containers, probes, restarts, status, graceful deletion. Never imported by the
product (webhook/, elector/). Root only (network and mount namespaces).

    from podrunner import PodRunner
    with PodRunner(plane.kubeconfig, workdir, namespaces=["demo"]) as runner:
        runner.pods()

or `python -m podrunner --kubeconfig .cluster/kubeconfig` next to `make cluster`.
"""

from podrunner.runner import ContainerView, PodRunner, PodView

__all__ = ["PodRunner", "PodView", "ContainerView"]
