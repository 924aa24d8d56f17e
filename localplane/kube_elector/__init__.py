"""kube-elector on the local plane, for the tests and the benches: its webhook and controller as processes
with their shipped rights, elector processes, election objects, sample pods and reviews, an old release."""
