package baseline

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/ready"
	"github.com/pocketbrain/chaos/harness/stack"
)

// Take reproduces the document's procedure ("collected with Docker Postgres/Redis
// running and local Worker dev"): the services start after their dependencies are up.
// The harness boots every container at once (each service retries its dependencies, as
// in production), so the clients' first requests may meet a server whose database is
// not up yet and the counters carry that boot noise. So, on the healthy stack, the
// server and then the worker are restarted (same image, same configuration: a clean
// start with every dependency up, in the order the document's counters assume), both
// must answer /ready 200 (each wait bounded by Timeouts.SteadyState), one scrape
// interval passes, and every endpoint is read once. Nothing is retried until it matches.
//
// A capture that could not be taken has Err set. On success one line goes to progress.
func Take(ctx context.Context, s *stack.Stack, spec *Spec, progress io.Writer) *Capture {
	c := &Capture{Bodies: map[string][]byte{}, Status: map[string]int{}}
	began := time.Now()
	healthy := func() error {
		wctx, cancel := context.WithTimeout(ctx, s.Env.Config().Timeouts.SteadyState)
		defer cancel()
		for _, r := range []env.Role{env.Server, env.Worker} {
			if err := ready.Wait(wctx, s.Env, r); err != nil {
				return fmt.Errorf("the stack never became healthy for the baseline: %w", err)
			}
		}
		return nil
	}
	if c.Err = healthy(); c.Err != nil {
		return c
	}
	for _, r := range []env.Role{env.Server, env.Worker} {
		if err := s.Env.Replace(ctx, r, env.Change{}); err != nil {
			c.Err = fmt.Errorf("clean start of the %s for the baseline: %w", r, err)
			return c
		}
		if err := s.RefreshTargets(ctx); err != nil {
			c.Err = err
			return c
		}
		if c.Err = healthy(); c.Err != nil {
			return c
		}
	}
	c.Waited = time.Since(began)
	select {
	case <-ctx.Done():
		c.Err = ctx.Err()
		return c
	case <-time.After(s.Monitor.Interval()):
	}
	c.At = time.Now()
	for _, e := range spec.Endpoints {
		resp, err := s.Env.Do(ctx, env.Role(e.Role), env.Request{Path: e.Path})
		if err != nil {
			c.Err = fmt.Errorf("baseline %s: %w", e.Label(), err)
			return c
		}
		c.Bodies[e.Label()], c.Status[e.Label()] = resp.Body, resp.Status
	}
	fmt.Fprintf(progress, "[baseline] captured %d endpoints at %s, after a clean start of server and worker on the healthy stack (%s)\n", len(spec.Endpoints), c.At.UTC().Format(time.RFC3339), c.Waited.Round(time.Millisecond))
	return c
}
