#!/usr/bin/env bash
# scripts/parallel.sh — serial vs parallel wall time of the same specs with the ginkgo
# CLI: `go tool ginkgo` (one process) against `go tool ginkgo -p --procs=N` (each process
# boots its own environment; the evidence shards merge into one report).
#
#   PB_PAR_FILTER   Ginkgo label filter (default: matrix)
#   PB_PAR_PROCS    processes for the parallel run (default: 2, the cores of this machine)
#   PB_PAR_OUT      where both runs go (default out/parallel-<time>)
set -euo pipefail
SCRIPT=parallel
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"
FILTER=${PB_PAR_FILTER:-matrix}
PROCS=${PB_PAR_PROCS:-2}
OUT=${PB_PAR_OUT:-$REPO/out/parallel-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p -m 700 "$OUT"
OUT=$(cd "$OUT" && pwd)
log "compiling once, so neither run pays for the build"
go tool ginkgo build ./suites/pocketbrain >/dev/null
rm -f suites/pocketbrain/pocketbrain.test
one() { # name, extra ginkgo flags...
	local name=$1 rc=0 t
	shift
	t=$(now)
	PB_OUT=$OUT/$name go tool ginkgo --no-color --label-filter="$FILTER" --timeout=60m "$@" ./suites/pocketbrain >"$OUT/$name.log" 2>&1 || rc=$?
	echo "$(secs "$t" "$(now)") $rc"
}
log "serial run ($OUT/serial.log)"
read -r S SRC < <(one serial)
log "parallel run with $PROCS processes ($OUT/parallel.log)"
read -r P PRC < <(one parallel -p --procs="$PROCS")
{
	printf 'filter %s\n' "$FILTER"
	printf 'serial    (1 process)  : %6ss  exit %s\n' "$S" "$SRC"
	printf 'parallel  (%d processes): %6ss  exit %s\n' "$PROCS" "$P" "$PRC"
	awk -v s="$S" -v p="$P" 'BEGIN { printf "speed-up serial/parallel: %.2fx\n", s / p }'
	echo "each process boots its own environment (own network, containers, volumes, run id)"
} | tee "$OUT/parallel.txt"
[ "$SRC" = 0 ] && [ "$PRC" = 0 ]
