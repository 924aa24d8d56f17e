"""The control plane on loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler (one module
each) and `plane.ControlPlane`, which starts them. Imports `process` only."""
