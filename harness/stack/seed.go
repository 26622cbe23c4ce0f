package stack

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
)

// SeedResult says what Seed wrote and how long the fleet took to catch up.
type SeedResult struct {
	Captures int `json:"captures"`
	// Owners is how many (seeded) client ids the captures are spread over.
	Owners int `json:"owners"`
	// Prunes is how many times the seeded change log was pruned before the first row,
	// and Horizon the prune horizon (highest pruned seq) afterwards.
	Prunes  int   `json:"prunes"`
	Horizon int64 `json:"horizon"`
	// Took is the database work; ResyncTook the time until every client had resynced
	// past the horizon (each one meets a cursor reset and pages through the store).
	Took       time.Duration `json:"took_ns"`
	ResyncTook time.Duration `json:"resync_took_ns"`
}

// SeedWait bounds the fleet's first resync past a seed of n captures: two minutes, plus
// two a million (a 2-core machine resyncs ten clients through 1 M in under one).
func SeedWait(n int) time.Duration {
	return 2*time.Minute + time.Duration(float64(n)/1e6*float64(2*time.Minute))
}

// capturesPerOwner spreads the seed over many client ids, as a store of many users.
const capturesPerOwner = 200

// seedSQL writes n captures as a server that has run for months holds them: every capture
// with its applied mutation and change-log entry, oldest first, then the log pruned twice
// (a contiguous prefix each time, the horizon raised) as the server's own pruner does,
// then vacuumed, so no autovacuum of the seed runs into the first row. It
// takes the server's log lock, so live pushes keep their seqs in commit order. psql -c runs
// the whole string as one transaction; it prints the horizon.
func seedSQL(first, n, owners int) string {
	owner := fmt.Sprintf("'s' || lpad((g %% %d)::text, 6, '0')", owners)
	rows := fmt.Sprintf(`SELECT %[1]s || '-' || g AS capture_id, %[1]s AS client_id,
		'seeded capture ' || g AS value, now() - make_interval(secs => %[3]d + %[2]d - g) AS at
		FROM generate_series(%[3]d, %[3]d + %[2]d - 1) g`, owner, n, first)
	// The seed prunes its own log twice, to half and then to all but the newest 1 %, so the
	// server's pruner is left a small tail, as a server that has run for months is.
	prune := func(fraction string) string {
		return `WITH cut AS (SELECT min(seq) + ((max(seq) - min(seq)) * ` + fraction + `)::bigint AS seq FROM change_log),
		gone AS (DELETE FROM change_log WHERE seq <= (SELECT seq FROM cut) RETURNING seq)
		UPDATE sync_horizon SET pruned_through = GREATEST(pruned_through, (SELECT COALESCE(max(seq), 0) FROM gone)) WHERE id = 1;`
	}
	return strings.Join([]string{
		`SELECT pg_advisory_xact_lock(7406213);`,
		`INSERT INTO applied_mutations (mutation_id, capture_id, client_id, value, applied_at) SELECT capture_id || '-m1', capture_id, client_id, value, at FROM (` + rows + `) s;`,
		// Oldest first, so seqs follow time; each capture carries its log seq.
		`WITH lg AS (INSERT INTO change_log (capture_id, client_id, value, at)
			SELECT capture_id, client_id, value, at FROM (` + rows + `) s ORDER BY at
			RETURNING seq, capture_id, client_id, value, at)
		INSERT INTO captures (capture_id, client_id, value, updated_at, seq) SELECT capture_id, client_id, value, at, seq FROM lg;`,
		prune("0.5"),
		prune("0.99"),
		`SELECT pruned_through FROM sync_horizon WHERE id = 1;`,
	}, "\n")
}

// Seed fills e's store with n captures before the first row (n = 0: nothing), then waits
// until every client of the fleet (if e runs one) has resynced past the new horizon, so the
// first row starts on a settled stack. The server must be up: it creates the schema.
func Seed(ctx context.Context, e *env.Environment, n int, wait time.Duration) (SeedResult, error) {
	return Grow(ctx, e, 0, n, wait)
}

// Grow seeds captures number from+1 … to on top of an earlier Seed or Grow up to from (the
// scale benchmark grows one store through 10 k, 100 k and 1 M).
func Grow(ctx context.Context, e *env.Environment, from, to int, wait time.Duration) (SeedResult, error) {
	n := to - from
	res := SeedResult{Captures: n}
	if n <= 0 {
		return res, nil
	}
	res.Owners = max(1, to/capturesPerOwner)
	// The users pause while the seed holds the log lock: their pushes would time out
	// behind it and count as sync failures before the first row. Sync goes on.
	fleet := e.Has(env.Clients)
	if fleet {
		if err := fleetCall(ctx, e, "/pause"); err != nil {
			return res, err
		}
		defer func() { _ = fleetCall(context.WithoutCancel(ctx), e, "/resume") }()
	}
	psql := e.Psql
	// The server creates its schema once Postgres answers it; the seed goes into those tables.
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		out, err := psql(sctx, "SELECT to_regclass('sync_horizon') IS NOT NULL")
		if err == nil && out == "t" {
			break
		}
		select {
		case <-sctx.Done():
			return res, fmt.Errorf("seed: the server did not create its schema within a minute (%v, %q): is the server connected to Postgres?", err, out)
		case <-time.After(250 * time.Millisecond):
		}
	}
	began := time.Now()
	b, err := psql(ctx, seedSQL(from+1, n, res.Owners), "VACUUM (ANALYZE) captures, applied_mutations, change_log")
	if err != nil {
		return res, fmt.Errorf("seed %d captures: %w", n, err)
	}
	lines := strings.Fields(b)
	if len(lines) == 0 {
		return res, fmt.Errorf("seed %d captures: psql printed no horizon", n)
	}
	if res.Horizon, err = strconv.ParseInt(lines[len(lines)-1], 10, 64); err != nil {
		return res, fmt.Errorf("seed %d captures: horizon %q: %w", n, lines[len(lines)-1], err)
	}
	res.Prunes = 2
	res.Took = time.Since(began)

	if fleet {
		began = time.Now()
		if err := waitResynced(ctx, e, res.Horizon, wait); err != nil {
			return res, err
		}
		res.ResyncTook = time.Since(began)
	}
	return res, nil
}

func fleetCall(ctx context.Context, e *env.Environment, path string) error {
	req := env.Request{Method: http.MethodPost, Path: path, Timeout: e.Config().Timeouts.FleetCall}
	resp, err := e.Do(ctx, env.Clients, req)
	if err != nil {
		return err
	}
	return resp.Err(env.Clients, req)
}

// waitResynced polls the fleet's /state until no client has a full sync under way and
// every cursor is at or past horizon.
func waitResynced(ctx context.Context, e *env.Environment, horizon int64, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last := "no answer yet"
	for {
		if behind, err := fleetBehind(ctx, e, horizon); err != nil {
			last = err.Error()
		} else if len(behind) == 0 {
			return nil
		} else {
			last = strings.Join(behind, ", ")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the fleet did not resync past the seeded horizon %d within %s (%s): raise the wait or seed fewer captures (%s)", horizon, wait, last, "PB_SEED_CAPTURES")
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func fleetBehind(ctx context.Context, e *env.Environment, horizon int64) ([]string, error) {
	st, err := e.Fleet(ctx)
	if err != nil {
		return nil, err
	}
	var behind []string
	for _, c := range st.Clients {
		switch {
		case c.Resync != nil:
			behind = append(behind, fmt.Sprintf("%s resyncing (%d captures so far)", c.Client, c.Resync.Captures))
		case c.Cursor < horizon:
			behind = append(behind, fmt.Sprintf("%s cursor %d", c.Client, c.Cursor))
		}
	}
	return behind, nil
}
