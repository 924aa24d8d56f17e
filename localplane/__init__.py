"""A real local Kubernetes cluster for the tests, the demo and `make cluster`: the control plane and a
node. Dev and test code only: webhook/ and elector/ never import it.

One module per part: `plane` (etcd, kube-apiserver, kube-controller-manager, kube-scheduler),
`network` (the pod bridge, its fence, the CNI config, the API relay), `node` (kubelet + containerd),
`proxy` (kube-proxy), `images` (the local images into containerd), `machine` (one node per machine,
and what a node leaves behind), `cluster` (all of them, and kube-elector installed from manifests/),
`pods` (a running pod's processes and localhost, from the host). Also: `component` (one process),
`binaries` (finding/building them), `webhooks` and `webhook_install` (the webhook as a local process,
for the tests through the API server alone), `tcpproxy`, `ports`.
"""
