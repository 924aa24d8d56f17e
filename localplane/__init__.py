"""A real local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) for tests and
`make cluster`. Dev and test code only: webhook/ and elector/ never import it.

Modules: `plane` (ControlPlane), `component` (one process), `binaries` (finding/building them),
`webhooks` (registering a webhook and waiting until it is called).
"""
