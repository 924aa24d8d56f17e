"""kube-elector's sidecar: Lease leader election served to the app on localhost.

Wings (docs/architecture.md): `election/` the pure election, `kube/` the Kubernetes I/O, `serve/` its own
HTTP, `ops/` metrics and logs; `app` wires them, `settings` holds the flags. Nothing is imported here, so
importing one wing does not load the others. Imports nothing from `webhook`, `certs`, `controller`,
`kubectl_elector` or `localplane`; needs only the standard library (plus pyyaml, lazily, for
--kubeconfig files in YAML).
"""
