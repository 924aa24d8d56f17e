"""`kube-elector-certs`: make the webhook's CA and serving certificate as files and manifests.

For installs that manage TLS outside the webhook (GitOps, no self-managed mode):

    kube-elector-certs --out manifests/overlays/static-certs

writes ca.crt, tls.crt, tls.key, secret.yaml (the Secret the Deployment mounts) and
cabundle-patch.yaml (a kustomize patch that puts the caBundle into the webhook configuration).
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

import yaml

from certs import webhook_tls


def main(argv: list[str] | None = None) -> int:
    """Writes the CA, serving key pair, Secret and caBundle patch under --out; the Secret omits the CA key."""
    parser = argparse.ArgumentParser(prog="kube-elector-certs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write into (created)")
    parser.add_argument("--namespace", default="kube-elector", help="the webhook's namespace")
    parser.add_argument("--service", default="kube-elector-webhook", help="the webhook's Service name")
    parser.add_argument("--secret", default="kube-elector-webhook-tls", help="name of the Secret to write")
    parser.add_argument("--webhook-configuration", default="kube-elector", help="MutatingWebhookConfiguration name")
    parser.add_argument("--webhooks", default="pod.elector.dev,namespace.elector.dev",
                        help="comma-separated webhook names inside that configuration")
    parser.add_argument("--dns", action="append", default=[], help="extra DNS name (repeatable)")
    parser.add_argument("--ip", action="append", default=[], help="extra IP address (repeatable)")
    args = parser.parse_args(argv)

    bundle = webhook_tls.issue(service=args.service, namespace=args.namespace, extra_dns=args.dns, extra_ips=args.ip)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "ca.crt").write_bytes(bundle.ca.cert_pem)
    bundle.serving.write(out, "tls")
    secret = bundle.to_secret(name=args.secret, namespace=args.namespace)
    del secret["data"]["ca.key"]  # the cluster never needs the CA's key in this mode
    (out / "secret.yaml").write_text(yaml.safe_dump(secret, sort_keys=False))
    ca_b64 = base64.b64encode(bundle.ca.cert_pem).decode()
    patch = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": args.webhook_configuration},
        "webhooks": [{"name": n, "clientConfig": {"caBundle": ca_b64}} for n in args.webhooks.split(",") if n],
    }
    (out / "cabundle-patch.yaml").write_text(yaml.safe_dump(patch, sort_keys=False))
    print(f"wrote {out}/ca.crt tls.crt tls.key secret.yaml cabundle-patch.yaml "
          f"for {', '.join(webhook_tls.service_names(args.service, args.namespace))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
