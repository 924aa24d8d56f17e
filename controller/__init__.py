"""kube-elector's controller: the one component that holds the rights elections need beyond their Lease
(docs/security.md). Pure decisions in rbac, succession, routing, observed, candidates; calls in kube,
informer, reconcile; wiring in manager, leadership, health and __main__."""
