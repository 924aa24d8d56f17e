"""The injected pieces as plain dicts: the elector container, its token volume, the app env."""

from __future__ import annotations

from typing import Any

from webhook.options import PodOptions
from webhook.settings import Settings

CONTAINER_NAME = "elector"
TOKEN_VOLUME = "elector-api-access"
# Mounted at the standard path so the elector uses ordinary in-cluster config, and so the
# ServiceAccount admission plugin (which skips containers that already mount this path)
# leaves the container alone even when the pod opts out of automounting.
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def app_env(options: PodOptions) -> list[dict[str, str]]:
    """The NAIS contract: ELECTOR_PATH has no scheme; old clients prepend http://."""
    return [
        {"name": "ELECTOR_PATH", "value": f"localhost:{options.port}"},
        {"name": "ELECTOR_GET_URL", "value": f"http://localhost:{options.port}/"},
        {"name": "ELECTOR_SSE_URL", "value": f"http://localhost:{options.port}/sse"},
    ]


def container(options: PodOptions, *, namespace: str, settings: Settings, host_network: bool = False) -> dict[str, Any]:
    """The elector. In a hostNetwork pod (allowed by a setting) its probe port is the node's: bound to
    127.0.0.1, where the kubelet (in the node's network namespace too) probes it."""
    args = [
        f"--election={options.election}",
        f"--election-namespace={namespace}",
        f"--http=localhost:{options.port}",
        f"--probe-address={'127.0.0.1' if host_network else '0.0.0.0'}:{options.probe_port}",
        f"--lease-duration={options.lease_duration}",
        f"--renew-deadline={options.renew_deadline}",
        f"--retry-period={options.retry_period}",
    ]
    if options.release_timeout:
        args.append(f"--release-timeout={options.release_timeout}")
    if options.renew_interval:
        args.append(f"--renew-interval={options.renew_interval}")
    # Nothing for leader-service, leader-label or rollout-aware: the kube-elector controller reads
    # those annotations from the pod and does the work (the elector holds rights on its Lease only).
    probe: dict[str, Any] = {"httpGet": {"path": "/healthz", "port": options.probe_port}}
    if host_network:
        probe["httpGet"]["host"] = "127.0.0.1"
    spec: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": args,
        "env": [
            {"name": "ELECTOR_LOG_FORMAT", "value": "json"},
            _field_env("POD_NAME", "metadata.name"),
            _field_env("POD_NAMESPACE", "metadata.namespace"),
            _field_env("POD_UID", "metadata.uid"),
        ],
        # Not in a hostNetwork pod: there a containerPort would claim the node's port (hostPort).
        **({} if host_network else {
            "ports": [{"name": "elector-probe", "containerPort": options.probe_port, "protocol": "TCP"}]}),
        # The app starts only once the elector serves (native sidecar ordering).
        "startupProbe": {**probe, "periodSeconds": 1, "failureThreshold": 60, "timeoutSeconds": 1},
        "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 2},
        "resources": {
            "requests": {"cpu": settings.resources.cpu_request, "memory": settings.resources.memory_request},
            "limits": {"memory": settings.resources.memory_limit},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": TOKEN_VOLUME, "mountPath": TOKEN_PATH, "readOnly": True}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if settings.native_sidecar:
        spec["restartPolicy"] = "Always"
    return spec


def token_volume(settings: Settings) -> dict[str, Any]:
    """Like the API server's own kube-api-access volume, for the elector only."""
    return {
        "name": TOKEN_VOLUME,
        "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": settings.token_expiration_seconds}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]
                    }
                },
            ],
        },
    }


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}
