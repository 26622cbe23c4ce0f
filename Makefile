# Every target is a thin wrapper: the logic lives in scripts and Go code.
# The README documents the two commands a user needs: `make run` and `make test`.
SHELL := /bin/bash
export TESTCONTAINERS_RYUK_DISABLED := true
GO ?= go
# A long suite needs more than go test's default 10 minutes.
TEST_TIMEOUT ?= 75m
# Where a run writes evidence.json, report.md, report.html and junit.xml.
PB_OUT ?= $(CURDIR)/out/$(shell date -u +%Y%m%dT%H%M%SZ)
# Narrowing knobs (scripts/interrupt.sh, debugging); the defaults are the README's commands.
# SUITES: the suite packages of `make test`; SUITE_ARGS: appended to its `go test` line
# (e.g. -args -ginkgo.label-filter=row:FM8-redis-down with SUITES=./suites/pocketbrain);
# GINKGO_FLAGS: extra flags of `make run`'s ginkgo CLI (e.g. --label-filter=canary).
SUITES ?= ./suites/...
SUITE_ARGS ?=
GINKGO_FLAGS ?=

.PHONY: images test unit suites run clean-leftovers promtool-check bench flake parallel interrupt

## images: build every image locally (idempotent, cached).
images:
	bash fixtures/images/build.sh --require-all

## test: images, unit tests, then the suites on the reference stack (fast profile), one
## suite package at a time so that two stacks never share the 2 cores' timing.
test: images
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /suites/)
	@# -v streams each suite as it runs (phase lines, Ginkgo's own output, the summary
	@# table before the report's path) instead of buffering it until the package ends.
	PB_OUT=$(PB_OUT) $(GO) test -v -count=1 -p 1 -timeout $(TEST_TIMEOUT) $(SUITES) $(SUITE_ARGS)

## unit: the tests that need no Docker.
unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /suites/)

## run: the release manager's run: the full matrix, baseline, gate, control and canary
## on the reference stack, ending in the evidence report (PB_PROFILE=fast for a short one).
run: images
	PB_PROFILE=$${PB_PROFILE:-release} PB_OUT=$(PB_OUT) $(GO) tool ginkgo -timeout $(TEST_TIMEOUT) $(GINKGO_FLAGS) ./suites/pocketbrain

## interrupt: Ctrl-C (SIGINT to the process group) on `make test` / `make run` at each
## point (image build, unit tests, leaks and secrets subprocesses, boot, mid-row, report)
## leaves no container, network or volume (scripts/interrupt.sh; POINTS= to choose).
POINTS ?=
interrupt:
	bash scripts/interrupt.sh $(POINTS)

## clean-leftovers: remove every container, network and volume with the harness label
## made on this host, live runs included (it lists them first; pbchaos sweep --any-host widens it).
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
