#!/usr/bin/env bash
# scripts/flake.sh N — run the full matrix N times (`make flake N=10`) and report the
# failures over runs, per run and per row, from each run's evidence.json.
#
#   PB_FLAKE_OUT     where the runs go (default out/flake-<time>); flake.txt holds the summary
#   PB_FLAKE_FILTER  Ginkgo label filter (default: the matrix rows and the no-fault control)
#   PB_FLAKE_PROCS   Ginkgo processes per run (default 1: serial); with 2 or more each run
#                    is `go tool ginkgo -p --procs=N` on the same compiled suite, each process
#                    on its own environment, the shards merged into one evidence.json
set -euo pipefail
SCRIPT=flake
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=${1:-10}
[[ $N =~ ^[1-9][0-9]*$ ]] || die "usage: scripts/flake.sh N (a positive number of runs)"
OUT=${PB_FLAKE_OUT:-$REPO/out/flake-$(date -u +%Y%m%dT%H%M%SZ)}
FILTER=${PB_FLAKE_FILTER:-matrix || control}
PROCS=${PB_FLAKE_PROCS:-1}
[[ $PROCS =~ ^[1-9][0-9]*$ ]] || die "PB_FLAKE_PROCS=$PROCS: want a positive number of processes, e.g. PB_FLAKE_PROCS=2"
mkdir -p -m 700 "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY=$OUT/flake.txt
: >"$SUMMARY"
log "compiling the suite once"
build_suite "$OUT/pb.test"
fails=0
declare -A ROW_FAILS=() ROW_RUNS=()
for i in $(seq 1 "$N"); do
	t=$(now)
	if [ "$PROCS" = 1 ]; then
		rc=$(run_suite "$OUT/run-$i" "$FILTER" "$OUT/pb.test")
	else
		rc=$(run_suite_parallel "$OUT/run-$i" "$FILTER" "$PROCS" "$OUT/pb.test")
	fi
	wall=$(secs "$t" "$(now)")
	ev=$OUT/run-$i/evidence.json
	rows="(no evidence.json)"
	if [ -f "$ev" ] && command -v jq >/dev/null; then
		# "id status" per row, and the control counted like one
		results=$(jq -r '(.rows[] | "\(.id) \(.status)"), (if .control then "control \(if .control.pass then "passed" else "failed" end)" else empty end)' "$ev")
		rows=$(tr ' ' '=' <<<"$results" | paste -sd' ')
		while read -r id status; do
			[ -n "$id" ] || continue
			ROW_RUNS[$id]=$((${ROW_RUNS[$id]:-0} + 1))
			[ "$status" = passed ] || ROW_FAILS[$id]=$((${ROW_FAILS[$id]:-0} + 1))
		done <<<"$results"
	fi
	if [ "$rc" != 0 ]; then
		fails=$((fails + 1))
		verdict=FAIL
	else
		verdict=ok
	fi
	printf 'run %d/%d: %s (exit %s, %ss) %s\n' "$i" "$N" "$verdict" "$rc" "$wall" "$rows" | tee -a "$SUMMARY"
	if [ "$rc" != 0 ]; then
		grep -E '^\s*\[(FAIL|PANICKED|INTERRUPTED|TIMEDOUT)\]' "$OUT/run-$i/console.log" | sed 's/^/    /' | head -20 | tee -a "$SUMMARY" || true
	fi
done
{
	echo
	printf 'failures over runs: %d/%d (filter %s, %d process(es) per run)\n' "$fails" "$N" "$FILTER" "$PROCS"
	for id in $(printf '%s\n' "${!ROW_RUNS[@]}" | sort); do
		printf '  %-32s %d/%d failed\n' "$id" "${ROW_FAILS[$id]:-0}" "${ROW_RUNS[$id]}"
	done
	echo "runs in $OUT (console.log, evidence.json, report.html each)"
} | tee -a "$SUMMARY"
[ "$fails" = 0 ]
