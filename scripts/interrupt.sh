#!/usr/bin/env bash
# scripts/interrupt.sh — `make interrupt`: Ctrl-C on the README's commands leaves nothing.
#
#   bash scripts/interrupt.sh [POINT...]      (default: every point, in the order below)
#
# For each point it starts `make test` or `make run` in a new process group (setsid, as
# a terminal's foreground job), waits for a line of the output that shows the point was
# reached, sends SIGINT to the whole process group (what Ctrl-C does: make, go test or
# go tool, the ginkgo CLI, the test binaries and their subprocesses all get it), waits
# (bounded) until every process of the run (the session setsid made) has exited, and then counts the
# containers, networks and volumes with the harness label that belong to the run.
#
# Points (runs narrowed to one fast row or one test, each still started through make):
#   images     make test    during the image build              "[images] … built"
#   unit       make test    during the unit tests               the first "ok  <pkg>"
#   leaks      make test    suites/leaks: its suite subprocess's stack is up (SUITES=./suites/leaks;
#                           the subprocess's output is the test's: its line, then 9 containers)
#   secrets    make test    suites/secrets: the same for its suite subprocess
#   boot       make test    suites/pocketbrain, containers starting  "[env] … up in"
#   row        make test    suites/pocketbrain, mid-row          "[FM8-redis-down] inject"
#   report     make test    suites/pocketbrain, the report       "[suite] writing the evidence report"
#   run-boot   make run     (PB_PROFILE=fast) containers starting
#   run-row    make run     (PB_PROFILE=fast) mid-row
#
# `make test` is given SUITE_ARGS=-v for the suite points: without -v `go test` buffers a
# package's output until the package ends, so no progress line would show (-v changes
# only how go test copies the output, not how signals reach the processes).
#
# "Belongs to the run": the engine may be shared (other engineers, CI), so the count is
# scoped to objects whose pocketbrain.chaos.pid label is a process of the group (the
# session is polled while it runs) or whose run id was seen on such an object. Whatever is
# found is reported and then removed by run id, so one failure does not pile up.
#
# Prints a table (point, seconds from SIGINT to the last process gone, containers /
# networks / volumes left) and exits 1 if anything was left or a point was not reached.
#
# Environment: PB_INTERRUPT_ROW (default FM8-redis-down), PB_INTERRUPT_EXIT_TIMEOUT
# (seconds to wait for the group after SIGINT, default 300), PB_INTERRUPT_MARK_TIMEOUT
# (seconds to wait for a point's line, default 600), PB_INTERRUPT_LOGS (default
# out/interrupt-<time>).
set -uo pipefail
SCRIPT=interrupt
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO" || exit 2

ROW=${PB_INTERRUPT_ROW:-FM8-redis-down}
EXIT_TIMEOUT=${PB_INTERRUPT_EXIT_TIMEOUT:-300}
MARK_TIMEOUT=${PB_INTERRUPT_MARK_TIMEOUT:-600}
LOGS=${PB_INTERRUPT_LOGS:-$REPO/out/interrupt-$(date -u +%Y%m%dT%H%M%SZ)}
LABEL=pocketbrain.chaos
ALL_POINTS=(images unit leaks secrets boot row report run-boot run-row)
mkdir -p -m 700 "$LOGS"
command -v setsid >/dev/null || die "setsid (util-linux) is needed"
docker info >/dev/null 2>&1 || die "no Docker engine answers"

# The unit tests' optional tools are not what this script tests.
export PB_SKIP_PROMTOOL=${PB_SKIP_PROMTOOL:-1} PB_SKIP_BROWSER=${PB_SKIP_BROWSER:-1}
export PB_PROFILE=fast

# point → make command line (an array in words) and the marker (ERE, grep -E).
point_cmd() {
	local suite="SUITE_ARGS=-v -args -ginkgo.label-filter=row:$ROW"
	NEED=0 # containers the group must own as well (the subprocess suites print nothing)
	case $1 in
	images) CMD=(make test) MARK='^\[images\] .* built ' ;;
	unit) CMD=(make test) MARK=$'^ok  \tgithub.com/pocketbrain' ;;
	leaks) CMD=(make test SUITES=./suites/leaks "SUITE_ARGS=-v -run ^TestPassingRun$") MARK='suite subprocess pid [0-9]+ started' NEED=9 ;;
	secrets) CMD=(make test SUITES=./suites/secrets "SUITE_ARGS=-v -run ^TestNoSecretInAnyOutput$") MARK='suite subprocess pid [0-9]+ started' NEED=9 ;;
	boot) CMD=(make test SUITES=./suites/pocketbrain "$suite") MARK='^\[env\] [a-z]+ up in ' ;;
	row) CMD=(make test SUITES=./suites/pocketbrain "$suite") MARK="^\\[$ROW\\] inject " ;;
	report) CMD=(make test SUITES=./suites/pocketbrain "$suite") MARK='^\[suite\] writing the evidence report' ;;
	run-boot) CMD=(make run "GINKGO_FLAGS=--label-filter=row:$ROW") MARK='^\[env\] [a-z]+ up in ' ;;
	run-row) CMD=(make run "GINKGO_FLAGS=--label-filter=row:$ROW") MARK="^\\[$ROW\\] inject " ;;
	*) die "unknown point '$1' (points: ${ALL_POINTS[*]})" ;;
	esac
}

# later T0 S: more than S seconds have passed since T0.
later() { awk -v a="$(secs "$1" "$(now)")" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }

# Processes of the run, one pid a line: every process of the session setsid made (its id
# is the make process's pid, as is the process group's). The session, not the group: a
# test binary may start its suite subprocess in a process group of its own.
group_pids() { ps -e -o pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'; }

# Record the group's pids and the run ids of objects they own (in $PIDS, $RUNS files).
record() {
	local pgid=$1 p
	group_pids "$pgid" >>"$PIDS"
	sort -u -o "$PIDS" "$PIDS"
	for kind in container network volume; do
		case $kind in
		container) docker ps -a --filter "label=$LABEL=1" --format "{{.Label \"$LABEL.pid\"}} {{.Label \"$LABEL.run\"}}" ;;
		network) docker network ls --filter "label=$LABEL=1" --format "{{.Label \"$LABEL.pid\"}} {{.Label \"$LABEL.run\"}}" ;;
		volume) docker volume ls --filter "label=$LABEL=1" --format "{{.Label \"$LABEL.pid\"}} {{.Label \"$LABEL.run\"}}" ;;
		esac 2>/dev/null
	done | while read -r p run; do
		grep -qx "$p" "$PIDS" && echo "$run"
	done >>"$RUNS"
	sort -u -o "$RUNS" "$RUNS"
}

# Running containers whose pid label is a process of the group.
owned_containers() {
	docker ps --filter "label=$LABEL=1" --format "{{.Label \"$LABEL.pid\"}}" 2>/dev/null | grep -cxFf "$PIDS"
}

# Objects of one kind left by the run: pid label among $PIDS or run id among $RUNS.
left() {
	local kind=$1 fmt="{{.ID}} {{.Label \"$LABEL.pid\"}} {{.Label \"$LABEL.run\"}}"
	case $kind in
	container) docker ps -a --filter "label=$LABEL=1" --format "$fmt" ;;
	network) docker network ls --filter "label=$LABEL=1" --format "$fmt" ;;
	volume) docker volume ls --filter "label=$LABEL=1" --format "{{.Name}} {{.Label \"$LABEL.pid\"}} {{.Label \"$LABEL.run\"}}" ;;
	esac | while read -r id p run; do
		if grep -qx "$p" "$PIDS" || { [ -n "$run" ] && grep -qx "$run" "$RUNS"; }; then echo "$id $run"; fi
	done
}

ROWS=()
FAILED=0
run_point() {
	local point=$1 log="$LOGS/$1.log"
	point_cmd "$point"
	PIDS="$LOGS/$point.pids" RUNS="$LOGS/$point.runs"
	: >"$PIDS"
	: >"$RUNS"
	export PB_OUT="$LOGS/$point-out" # the run's report, next to its log
	log "$point: ${CMD[*]}   (waiting for /$MARK/ and $NEED containers of the group; log $log)"
	# setsid: a new session and process group whose id is the child's pid, like a shell's
	# job. A script's background job starts with SIGINT ignored (no job control), and make
	# and bash would inherit that: env --default-signal gives them a terminal's default.
	setsid env --default-signal=INT,QUIT "${CMD[@]}" >"$log" 2>&1 </dev/null &
	local pgid=$! began t0 reached=0
	began=$(now)
	while :; do
		record "$pgid"
		if grep -qE -- "$MARK" "$log" && [ "$(owned_containers)" -ge "$NEED" ]; then
			reached=1
			break
		fi
		[ -z "$(group_pids "$pgid")" ] && break
		later "$began" "$MARK_TIMEOUT" && break
		sleep 0.5
	done
	local mark_after
	mark_after=$(secs "$began" "$(now)")
	if [ $reached = 0 ]; then
		log "$point: the point was not reached after ${mark_after}s (last lines below)"
		tail -n 15 "$log" >&2
	else
		log "$point: reached after ${mark_after}s: $(grep -m1 -E -- "$MARK" "$log" | cut -c1-120)"
	fi
	t0=$(now)
	kill -INT -- "-$pgid" 2>/dev/null
	local gone=0
	while ! later "$t0" "$EXIT_TIMEOUT"; do
		record "$pgid"
		if [ -z "$(group_pids "$pgid")" ]; then
			gone=1
			break
		fi
		sleep 0.5
	done
	local took
	took=$(secs "$t0" "$(now)")
	if [ $gone = 0 ]; then
		log "$point: processes still alive ${EXIT_TIMEOUT}s after SIGINT: $(group_pids "$pgid" | tr '\n' ' '); killing the group"
		group_pids "$pgid" | xargs -r kill -KILL 2>/dev/null
		sleep 1
		took=">$EXIT_TIMEOUT"
	fi
	local c n v
	c=$(left container | wc -l) n=$(left network | wc -l) v=$(left volume | wc -l)
	local verdict=ok
	if [ $reached = 0 ]; then verdict="NOT REACHED"; fi
	if [ $gone = 0 ]; then verdict="HUNG"; fi
	if [ $((c + n + v)) -gt 0 ]; then
		verdict=LEAK
		log "$point: LEFT BEHIND (id run):"
		{ left container; left network; left volume; } | sed 's/^/    /' >&2
		# Remove them by run id, so the next point starts clean.
		while read -r run; do
			[ -n "$run" ] && docker ps -aq --filter "label=$LABEL.run=$run" | xargs -r docker rm -f -v >/dev/null
			[ -n "$run" ] && docker volume ls -q --filter "label=$LABEL.run=$run" | xargs -r docker volume rm -f >/dev/null
			[ -n "$run" ] && docker network ls -q --filter "label=$LABEL.run=$run" | xargs -r docker network rm >/dev/null
		done < <(cut -d' ' -f2 <(left container; left network; left volume) | sort -u)
	fi
	[ "$verdict" = ok ] || FAILED=1
	ROWS+=("$(printf '%-9s %-44s %8s %10s %8s %8s  %s' "$point" "${CMD[*]:0:2} (+ mark at ${mark_after}s)" "$took" "$c" "$n" "$v" "$verdict")")
	log "$point: exit after ${took}s; left: $c containers, $n networks, $v volumes ($verdict)"
}

POINTS=("$@")
[ ${#POINTS[@]} -eq 0 ] && POINTS=("${ALL_POINTS[@]}")
for p in "${POINTS[@]}"; do point_cmd "$p"; done # unknown names fail before any run
for p in "${POINTS[@]}"; do run_point "$p"; done

{
	echo
	printf '%-9s %-44s %8s %10s %8s %8s  %s\n' point command "exit(s)" containers networks volumes result
	for r in "${ROWS[@]}"; do echo "$r"; done
	echo "logs: $LOGS"
} | tee "$LOGS/table.txt"
exit $FAILED
