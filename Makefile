# Every target is a thin wrapper: the logic lives in scripts and Go code.
# The README documents the two commands a user needs: `make run` and `make test`.
SHELL := /bin/bash
export TESTCONTAINERS_RYUK_DISABLED := true
GO ?= go
# A long suite needs more than go test's default 10 minutes.
TEST_TIMEOUT ?= 75m
# Where a run writes evidence.json, report.md, report.html and junit.xml.
PB_OUT ?= $(CURDIR)/out/$(shell date -u +%Y%m%dT%H%M%SZ)

.PHONY: images test unit suites run clean-leftovers promtool-check bench flake parallel

## images: build every image locally (idempotent, cached).
images:
	bash fixtures/images/build.sh --require-all

## test: images, unit tests, then the suites on the reference stack (fast profile), one
## suite package at a time so that two stacks never share the 2 cores' timing.
test: images
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /suites/)
	$(GO) test -count=1 -p 1 -timeout $(TEST_TIMEOUT) ./suites/...

## unit: the tests that need no Docker.
unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /suites/)

## run: the release manager's run: the full matrix, baseline, gate, control and canary
## on the reference stack, ending in the evidence report (PB_PROFILE=fast for a short one).
run: images
	PB_PROFILE=$${PB_PROFILE:-release} PB_OUT=$(PB_OUT) $(GO) tool ginkgo -timeout $(TEST_TIMEOUT) ./suites/pocketbrain

## clean-leftovers: remove every container, network and volume with the harness label.
clean-leftovers:
	$(GO) run ./cmd/pbchaos sweep --all

## bench: image build (cold, warm), boot, per-row detect/fire/recover, full-matrix wall
## time, peak memory and overhead ratio (scripts/bench.sh; numbers in out/bench-*/bench.txt).
bench: images
	bash scripts/bench.sh

## flake: run the full matrix and the control N times (default 10) and report failures
## over runs; PROCS=2 runs each one with `ginkgo -p` (one environment per process).
N ?= 10
PROCS ?= 1
flake: images
	PB_FLAKE_PROCS=$(PROCS) bash scripts/flake.sh $(N)

## parallel: the same specs serial and with `ginkgo -p`, wall times side by side.
parallel: images
	bash scripts/parallel.sh
