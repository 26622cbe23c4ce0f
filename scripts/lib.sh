# scripts/lib.sh — shared helpers of the bench/flake/parallel scripts (sourced).
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TESTCONTAINERS_RYUK_DISABLED=true
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[%s] %s\n' "${SCRIPT:-bench}" "$*" >&2; }
die() {
	printf '[%s] ERROR: %s\n' "${SCRIPT:-bench}" "$*" >&2
	exit 1
}
# build_suite OUT: compile the suite once (a test binary run directly: signals reach it,
# /usr/bin/time measures it and not the go tool).
build_suite() {
	(cd "$REPO" && go test -c -o "$1" ./suites/pocketbrain) || die "the suite does not compile"
}
# run_suite OUTDIR FILTER CMD...: one run of the compiled suite (CMD is the binary, maybe
# behind a wrapper such as /usr/bin/time) from the suite's directory, where it finds
# ../../program; console output in OUTDIR/console.log. Prints the exit code.
run_suite() {
	local out=$1 filter=$2
	shift 2
	mkdir -p -m 700 "$out"
	local rc=0
	(cd "$REPO/suites/pocketbrain" && PB_OUT=$out "$@" -test.timeout "${PB_RUN_TIMEOUT:-60m}" \
		-ginkgo.no-color -ginkgo.label-filter="$filter") >"$out/console.log" 2>&1 || rc=$?
	echo "$rc"
}
# run_suite_parallel OUTDIR FILTER PROCS BINARY: one run of the compiled suite under the
# ginkgo CLI with PROCS processes. The CLI runs a precompiled binary from the binary's own
# directory, so the program directory is passed by absolute path. Prints the exit code.
run_suite_parallel() {
	local out=$1 filter=$2 procs=$3 bin=$4
	mkdir -p -m 700 "$out"
	local rc=0
	(cd "$REPO" && PB_OUT=$out PB_PROGRAM=$REPO/program go tool ginkgo -p --procs="$procs" \
		--no-color --label-filter="$filter" --timeout="${PB_RUN_TIMEOUT:-60m}" "$bin") >"$out/console.log" 2>&1 || rc=$?
	echo "$rc"
}
