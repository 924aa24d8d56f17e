"""A real node: containerd, kubelet, the CNI network and kube-proxy (one module each), and `node.Node`,
which starts containerd and the kubelet. Imports `process` and `controlplane`."""
