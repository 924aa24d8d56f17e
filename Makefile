# kube-elector: every command a developer or CI needs. See README.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: install packages binaries images test test-unit test-controlplane test-node cluster demo bench chaos clean

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@echo "make install: pip packages into $(VENV) (log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@# pip's and setuptools' chatter goes to the log, shown only if the install fails.
	@$(PY) -m pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@$(PY) -m pip install --quiet -e '.[dev]' >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

## packages: the Debian packages the node and the image builds need (podman, runc, CNI plugins, ...)
packages:
	@tools/install-packages.sh

## binaries: build etcd, the Kubernetes components, kubectl, kubelet and containerd into .cache/bin (once)
binaries:
	@tools/build-binaries.sh

## images: the elector, webhook and pause images with podman, offline (root; tools/build-images.sh)
images: install packages
	@tools/build-images.sh

## test: the whole suite (unit, real control plane, real node)
test: install binaries images
	$(PY) -m pytest $(ARGS)

## test-unit: the fast tests only (seconds, no control plane, no node)
test-unit: install
	$(PY) -m pytest -m 'not controlplane and not node and not image' $(ARGS)

## test-controlplane: only the tests that run through the real API server without a node
test-controlplane: install binaries
	$(PY) -m pytest -m 'controlplane and not node' $(ARGS)

## test-node: only the tests on the local cluster with a real node (kubelet + containerd)
test-node: install binaries images
	$(PY) -m pytest -m node $(ARGS)

## cluster: a local cluster with a node in the foreground (ARGS=--no-node: the plane only; ARGS=--install:
##          with kube-elector installed); kubeconfig in .cluster/kubeconfig
cluster: install binaries images
	@$(PY) -m localplane $(ARGS)

## chaos: the long election chaos runs, each prints its table: random process and API-server faults (50 ms
##        checker, CHAOS_ROUNDS), then node faults on two real nodes (20 ms checker, CHAOS_NODE_ROUNDS)
chaos: install binaries images
	CHAOS_ROUNDS=$${CHAOS_ROUNDS:-60} CHAOS_NODE_ROUNDS=$${CHAOS_NODE_ROUNDS:-52} \
		$(PY) -m pytest tests/chaos -s -p no:logging $(ARGS)

## demo: kube-elector end to end on a local cluster with a real node (root; ARGS=--keep keeps it up)
demo: install binaries images
	@$(PY) -m demo $(ARGS)

## bench: every benchmark; prints the tables, writes bench/results/*.json and bench/README.md
##        (ARGS=--quick: a short pass of a few minutes; ARGS=--long: also RSS after 10 min, 15 s leases;
##        designs builds 0.1's images from this clone's history: tools/build-release-images.sh)
BENCHES := webhook_load webhook_e2e elector_footprint elector_timings elector_apiload elector_scale \
           elector_ownership leader_service rollouts designs
bench: install binaries images
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
		|| echo "bench: wrk not installed; saturation is driven by bench.loadgen instead"
	set -e; for name in $(BENCHES); do $(PY) -m bench.$$name $(ARGS); done
	$(PY) -m bench.summary

clean:
	rm -rf .cluster .pytest_cache
