package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/pocketbrain/chaos/harness/env"
)

// Guard remembers every fault injected during a spec and heals what is still active
// afterwards, whatever happened in between (roachprod's failure-injection guard).
type Guard struct {
	mu     sync.Mutex
	active []Fault
}

// Inject injects f and remembers it, even when injection failed half way.
func (g *Guard) Inject(ctx context.Context, e *env.Environment, f Fault) error {
	g.mu.Lock()
	g.active = append(g.active, f)
	g.mu.Unlock()
	return f.Inject(ctx, e)
}

// Heal heals f and forgets it.
func (g *Guard) Heal(ctx context.Context, e *env.Environment, f Fault) error {
	err := f.Heal(ctx, e)
	if err == nil {
		g.forget(f)
	}
	return err
}

// Forget drops f without healing it: another fault took over its undoing (Supersede).
func (g *Guard) Forget(f Fault) { g.forget(f) }

func (g *Guard) forget(f Fault) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, a := range g.active {
		if a == f {
			g.active = append(g.active[:i], g.active[i+1:]...)
			return
		}
	}
}

// Active returns the faults not yet healed.
func (g *Guard) Active() []Fault {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Fault(nil), g.active...)
}

// HealAll heals every active fault, newest first, then resets Toxiproxy and checks that
// no proxy is disabled and no toxic remains. It returns what it healed. Every fault is
// forgotten, healed or not: a heal that failed fails this spec, and whatever the fault
// left behind is the restoration's to find (stack.Restore); retried in every later
// spec's AfterEach it would fail each of them (one failure must stay one failure).
func (g *Guard) HealAll(ctx context.Context, e *env.Environment) ([]string, error) {
	var healed []string
	var errs []error
	active := g.Active()
	for i := len(active) - 1; i >= 0; i-- {
		f := active[i]
		err := f.Heal(ctx, e)
		g.forget(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("guard: heal %s: %w", f.Spec(), err))
			continue
		}
		healed = append(healed, f.Spec().String())
	}
	if t := e.Toxi(); t != nil {
		if err := t.Reset(ctx); err != nil {
			errs = append(errs, err)
		} else if dirty, err := t.Dirty(ctx); err != nil {
			errs = append(errs, err)
		} else if len(dirty) > 0 {
			errs = append(errs, fmt.Errorf("guard: toxiproxy still dirty after reset: %s", strings.Join(dirty, "; ")))
		}
	}
	return healed, errors.Join(errs...)
}
