# kube-elector: every command a developer or CI needs. See README.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: install binaries test test-unit test-controlplane cluster demo bench chaos images clean

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

## binaries: build etcd, kube-apiserver, kube-controller-manager, kubectl into .cache/bin (once)
binaries:
	tools/build-binaries.sh

## test: the whole suite (unit + real control plane)
test: install binaries
	$(PY) -m pytest $(ARGS)

## test-unit: the fast tests only (seconds, no control plane)
test-unit: install
	$(PY) -m pytest -m 'not controlplane' $(ARGS)

## test-controlplane: only the tests that run through the real API server
test-controlplane: install binaries
	$(PY) -m pytest -m controlplane $(ARGS)

## cluster: a local control plane in the foreground; kubeconfig in .cluster/kubeconfig
cluster: install binaries
	$(PY) -m localplane $(ARGS)

## chaos: the long election chaos run (random faults, 50 ms checker), prints its table
chaos: install binaries
	CHAOS_ROUNDS=$${CHAOS_ROUNDS:-60} $(PY) -m pytest tests/chaos -s -p no:logging $(ARGS)

## demo: kube-elector end to end on a local control plane (root; ARGS=--keep keeps it up)
demo: install
	$(PY) -m demo $(ARGS)

## bench: every benchmark; prints the tables, writes bench/results/*.json and bench/README.md
##        (ARGS=--quick: a short pass of a few minutes; ARGS=--long: also RSS after 10 min, 15 s leases)
BENCHES := webhook_load webhook_e2e elector_footprint elector_timings elector_apiload elector_scale
bench: install binaries
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
		|| echo "bench: wrk not installed; saturation is driven by bench.loadgen instead"
	set -e; for name in $(BENCHES); do $(PY) -m bench.$$name $(ARGS); done
	$(PY) -m bench.summary

## images: the elector, webhook and pause images with podman, offline (root; tools/build-images.sh)
images: install
	tools/build-images.sh

clean:
	rm -rf .cluster .pytest_cache
