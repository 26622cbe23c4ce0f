package stack

import (
	"fmt"

	"github.com/pocketbrain/chaos/harness/program"
	"github.com/pocketbrain/chaos/harness/signals"
)

// CheckMatchers refuses label matchers of the rule files that can match no value the
// target catalogue knows (probe="server_raedy"), naming the rule's file:line, the
// matcher, the known values and the fix. The matrix's matchers are checked by
// prog.Validate. No Docker; milliseconds. Check calls it after rules.ValidateAgainst.
func CheckMatchers(prog *program.Program, rules *signals.Rules) error {
	alerts := map[string]bool{}
	for _, r := range rules.Rules() {
		if r.Kind == signals.AlertingRule {
			alerts[r.Name] = true
		}
	}
	if err := rules.ValidateMatchers(prog.LabelCheck(nil, alerts).Expr); err != nil {
		return fmt.Errorf("%w (%s, a target's labels:)", err, program.TargetsFile)
	}
	return nil
}
