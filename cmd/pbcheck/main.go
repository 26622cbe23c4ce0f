// Command pbcheck re-checks a stored run offline: it reads the client history and the server's
// final state, prints the verdict and exits 1 when it is invalid.
//
//	pbcheck -history history.json -state final-state.json [-json] [-strict]
//
// Exit codes: 0 valid (or unknown without -strict), 1 invalid (or unknown with -strict),
// 2 the inputs could not be read. Without -state the verdict is unknown.
//
// A suite run stores, for every data-loss check, the history, the final state and the
// verdict under $PB_OUT/p<process>/history/<spec>.{history,state,verdict}.json, so
//
//	go run ./cmd/pbcheck -history $PB_OUT/p1/history/VAL-2.history.json -state $PB_OUT/p1/history/VAL-2.state.json
//
// re-judges that check offline, and `PB_OUT=<dir> go test ./cmd/pbcheck -run TestStoredRun`
// re-checks every stored history of a run against its recorded verdict.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pocketbrain/chaos/harness/checker"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pbcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	historyPath := fs.String("history", "", "history JSON as served by the clients' GET /history (required)")
	statePath := fs.String("state", "", "final state JSON as served by the server's GET /api/v2/sync/state (absent: verdict unknown)")
	asJSON := fs.Bool("json", false, "print the full result as JSON instead of a summary")
	strict := fs.Bool("strict", false, "exit 1 on an unknown verdict too")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *historyPath == "" {
		fmt.Fprintln(stderr, "pbcheck: -history is required: pass the stored history JSON file")
		return 2
	}
	hf, err := os.Open(*historyPath)
	if err != nil {
		fmt.Fprintf(stderr, "pbcheck: %v: check the -history path\n", err)
		return 2
	}
	defer hf.Close()
	ops, err := checker.DecodeHistory(hf)
	if err != nil {
		fmt.Fprintf(stderr, "pbcheck: %s: %v\n", *historyPath, err)
		return 2
	}
	var state *checker.FinalState
	if *statePath != "" {
		sf, err := os.Open(*statePath)
		if err != nil {
			fmt.Fprintf(stderr, "pbcheck: %v: check the -state path\n", err)
			return 2
		}
		defer sf.Close()
		if state, err = checker.DecodeState(sf); err != nil {
			fmt.Fprintf(stderr, "pbcheck: %s: %v\n", *statePath, err)
			return 2
		}
	}
	res := checker.Check(ops, state)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "pbcheck: writing the result: %v\n", err)
			return 2
		}
	} else {
		fmt.Fprint(stdout, res.Summary())
	}
	switch {
	case res.Verdict == checker.Invalid:
		return 1
	case res.Verdict == checker.Unknown && *strict:
		return 1
	}
	return 0
}
