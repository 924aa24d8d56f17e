"""The Kubernetes I/O: the HTTP client, kubeconfig and credentials, the Lease lock, API-call metrics."""
