package stack

import (
	"testing"
	"time"

	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/signals"
)

// The residue of a disturbance lasts the longest window anything reads: the program's
// [15m] (rules and matrix alike), and at a profile's scale the scaled one, plus two ticks.
func TestResidueSpanIsTheLongestWindowAsEvaluated(t *testing.T) {
	s, _ := presenceStack(t)
	got, err := s.ResidueSpan()
	if err != nil {
		t.Fatal(err)
	}
	if want := 15*time.Minute + 2*s.Monitor.Interval(); got != want {
		t.Fatalf("production windows: residue span %s, want %s", got, want)
	}

	scaled, err := s.Program.AtScale(1.0 / 30)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := signals.LoadRuleFiles(scaled.RulePaths(), signals.WithWindowScale(1.0/30))
	if err != nil {
		t.Fatal(err)
	}
	s.Program, s.Rules = scaled, rules
	got, err = s.ResidueSpan()
	if err != nil {
		t.Fatal(err)
	}
	if want := 30*time.Second + 2*s.Monitor.Interval(); got != want {
		t.Fatalf("at 1/30: residue span %s, want %s", got, want)
	}

	// A matrix window longer than any rule's counts too.
	s.Program = &program.Program{Matrix: program.Matrix{Rows: []program.Row{{ID: "X", Detect: []string{"rate(x[2m])"}}}}}
	if got, _ = s.ResidueSpan(); got != 2*time.Minute+2*s.Monitor.Interval() {
		t.Fatalf("a matrix window of 2m: residue span %s", got)
	}
}
