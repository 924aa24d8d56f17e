"""A real local Kubernetes cluster for the tests, the demo, the benches and `make cluster`. Dev and test
code only: not in the wheel, and webhook/, elector/ and controller/ never import it.

Layered like controller-runtime's pkg/internal/testing under envtest, each layer importing only those
below it:

- `process`: one process (`component`), free ports, finding/building the binaries, a loopback TCP proxy;
- `controlplane`: one file per component (`etcd`, `apiserver`, `controller_manager`, `scheduler`), the
  kubeconfigs, and `plane.ControlPlane`, which starts them;
- `node`: one file per component (`containerd`, `kubelet`, `network` with the CNI bridge, `kube_proxy`),
  `images` (the local images into containerd), `machine` (what a node leaves on the machine), `pods`
  (a running pod's processes and localhost, from the host), and `node.Node`, which starts them;
- `cluster`: the plane, a node and kube-proxy together (what `python -m localplane` runs);
- `kube_elector`: kube-elector on the plane: the webhook and the controller as local processes with their
  shipped rights, webhook registration, elector processes and election objects for the tests and the
  benches, sample pods and reviews, an earlier release for the upgrade test.
"""
