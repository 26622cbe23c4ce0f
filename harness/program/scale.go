package program

import (
	"fmt"

	"github.com/pocketbrain/chaos/harness/signals"
)

// AtScale is the program as a run at forScale evaluates it: every range window of the
// matrix's expressions (detect, surface, recover, the default recovery) multiplied by
// forScale, as the rule files' windows are (signals.WithWindowScale). The matrix names
// production windows ([15m], [5m]), so that a row's detection and the trigger it feeds
// clear together at any scale. forScale 1 (or 0) returns p itself; p is never changed.
func (p *Program) AtScale(forScale float64) (*Program, error) {
	if forScale == 0 || forScale == 1 {
		return p, nil
	}
	out := *p
	out.Matrix.Rows = make([]Row, len(p.Matrix.Rows))
	var err error
	if out.Matrix.Defaults.Recover, err = scaleAll(p.Matrix.Defaults.Recover, forScale, "defaults.recover"); err != nil {
		return nil, err
	}
	for i, r := range p.Matrix.Rows {
		for _, f := range []struct {
			exprs *[]string
			name  string
		}{{&r.Detect, "detect"}, {&r.Surface, "surface"}, {&r.Recover, "recover"}} {
			if *f.exprs, err = scaleAll(*f.exprs, forScale, r.ID+" "+f.name); err != nil {
				return nil, err
			}
		}
		out.Matrix.Rows[i] = r
	}
	return &out, nil
}

func scaleAll(exprs []string, f float64, where string) ([]string, error) {
	if exprs == nil {
		return nil, nil
	}
	out := make([]string, len(exprs))
	for i, e := range exprs {
		s, err := signals.ScaleExpr(e, f)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %q at scale %g: %w", MatrixFile, where, e, f, err)
		}
		out[i] = s
	}
	return out, nil
}
