// Package scale measures what the server's sync endpoints cost as the store grows: push and
// pull latency (p50, p99) under concurrent clients, and the time of one client's full
// resync. `make bench` runs it at 10 k, 100 k and 1 M captures (suites/scale) and checks the
// contract's bound: the per-request p99 at 1 M stays within 2× of the p99 at 10 k, and the
// resync time grows at most linearly.
package scale

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
)

// Options say how much load one measurement sends.
type Options struct {
	Concurrency int // clients sending at once
	Requests    int // requests of each kind
	PushBatch   int // mutations per push
}

// DefaultOptions: ten concurrent clients, as the reference fleet has.
func DefaultOptions() Options { return Options{Concurrency: 10, Requests: 400, PushBatch: 10} }

// Latency is one endpoint's distribution.
type Latency struct {
	P50, P99 time.Duration
	Errors   int
}

// Result is one store size's numbers.
type Result struct {
	Captures int
	Push     Latency
	// Pull is a full-sync page read at a random place in the store (the expensive pull);
	// Delta a pull at a cursor a few hundred changes behind the head.
	Pull, Delta Latency
	Resync      time.Duration // one client from cursor 0 to the last page
	Pages       int
}

// Measure runs the load against the server at base (its published port).
func Measure(ctx context.Context, base string, captures int, o Options) (Result, error) {
	res := Result{Captures: captures}
	head, err := headOf(ctx, base)
	if err != nil {
		return res, err
	}
	run := fmt.Sprintf("bench%d", time.Now().UnixNano())
	var seqMu sync.Mutex
	seq := 0
	res.Push = load(ctx, o, func(ctx context.Context) error {
		seqMu.Lock()
		seq++
		n := seq
		seqMu.Unlock()
		ms := make([]map[string]string, o.PushBatch)
		for i := range ms {
			id := fmt.Sprintf("%s-%d-%d", run, n, i)
			ms[i] = map[string]string{"mutationId": id, "captureId": id, "kind": "capture", "value": "scale benchmark capture"}
		}
		body, _ := json.Marshal(map[string]any{"clientId": run, "mutations": ms})
		return call(ctx, http.MethodPost, base+"/api/v2/sync/push", body, nil)
	})
	res.Pull = load(ctx, o, func(ctx context.Context) error {
		after := rand.Int64N(max(head, 1))
		return call(ctx, http.MethodGet, base+"/api/v2/sync/pull?"+url.Values{"clientId": {run}, "cursor": {"0"}, "after": {strconv.FormatInt(after, 10)}}.Encode(), nil, nil)
	})
	head, err = headOf(ctx, base)
	if err != nil {
		return res, err
	}
	res.Delta = load(ctx, o, func(ctx context.Context) error {
		cursor := max(head-int64(rand.IntN(500)), 1)
		return call(ctx, http.MethodGet, base+"/api/v2/sync/pull?"+url.Values{"clientId": {run}, "cursor": {strconv.FormatInt(cursor, 10)}}.Encode(), nil, nil)
	})
	began := time.Now()
	var after int64
	for {
		var page struct {
			More bool  `json:"more"`
			Next int64 `json:"next"`
		}
		q := url.Values{"clientId": {run}, "cursor": {"0"}}
		if after > 0 {
			q.Set("after", strconv.FormatInt(after, 10))
		}
		if err := call(ctx, http.MethodGet, base+"/api/v2/sync/pull?"+q.Encode(), nil, &page); err != nil {
			return res, fmt.Errorf("resync page %d: %w", res.Pages+1, err)
		}
		res.Pages++
		if !page.More {
			break
		}
		if page.Next <= after {
			return res, fmt.Errorf("resync page %d: next %d does not move past %d", res.Pages, page.Next, after)
		}
		after = page.Next
	}
	res.Resync = time.Since(began)
	return res, nil
}

// load sends o.Requests requests from o.Concurrency workers and returns the distribution.
func load(ctx context.Context, o Options, do func(context.Context) error) Latency {
	var (
		mu    sync.Mutex
		took  []time.Duration
		errs  int
		next  = make(chan struct{}, o.Requests)
		group sync.WaitGroup
	)
	for range o.Requests {
		next <- struct{}{}
	}
	close(next)
	for range o.Concurrency {
		group.Go(func() {
			for range next {
				t := time.Now()
				err := do(ctx)
				d := time.Since(t)
				mu.Lock()
				if err != nil {
					errs++
				} else {
					took = append(took, d)
				}
				mu.Unlock()
			}
		})
	}
	group.Wait()
	slices.Sort(took)
	return Latency{P50: quantile(took, 0.50), P99: quantile(took, 0.99), Errors: errs}
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func headOf(ctx context.Context, base string) (int64, error) {
	var page struct {
		Cursor int64 `json:"cursor"`
	}
	err := call(ctx, http.MethodGet, base+"/api/v2/sync/pull?clientId=bench&cursor=0", nil, &page)
	return page.Cursor, err
}

// callWithin bounds one measured request: far above any page's cost, so a slower answer
// is the failure being measured. (The benchmark keeps its own client rather than
// env.Do: it times each request, and the base URL is resolved once.)
const callWithin = 10 * time.Second

// call sends one request and decodes a 200 answer into out.
func call(ctx context.Context, method, u string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callWithin)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: status %d: %s", method, env.PlainURL(u), resp.StatusCode, bytes.TrimSpace(b))
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Check applies the contract's bound to results ordered by size: every p99 at the largest
// store within 2× of the smallest's, and the resync time per capture not growing (a 1.5×
// allowance for noise), i.e. at most linear. It returns one line per breach.
func Check(rs []Result) []string {
	if len(rs) < 2 {
		return nil
	}
	small, large := rs[0], rs[len(rs)-1]
	var out []string
	for _, e := range []struct {
		name         string
		small, large Latency
	}{{"push", small.Push, large.Push}, {"pull (full-sync page)", small.Pull, large.Pull}, {"pull (delta)", small.Delta, large.Delta}} {
		if e.large.P99 > 2*e.small.P99 {
			out = append(out, fmt.Sprintf("%s p99 %s at %d captures is more than 2× the %s at %d", e.name, e.large.P99, large.Captures, e.small.P99, small.Captures))
		}
		if e.large.Errors+e.small.Errors > 0 {
			out = append(out, fmt.Sprintf("%s: %d failed requests at %d captures, %d at %d", e.name, e.small.Errors, small.Captures, e.large.Errors, large.Captures))
		}
	}
	perSmall := small.Resync.Seconds() / float64(small.Captures)
	perLarge := large.Resync.Seconds() / float64(large.Captures)
	if perLarge > 1.5*perSmall {
		out = append(out, fmt.Sprintf("resync grows faster than linearly: %.2f µs a capture at %d, %.2f µs at %d", perSmall*1e6, small.Captures, perLarge*1e6, large.Captures))
	}
	return out
}

// Table renders the results as the benchmark's text table.
func Table(rs []Result) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-10s %-21s %-21s %-21s %-10s %s\n", "captures", "push p50 / p99", "pull page p50 / p99", "pull delta p50 / p99", "resync", "pages")
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
	}
	for _, r := range rs {
		fmt.Fprintf(&b, "%-10d %-21s %-21s %-21s %-10s %d\n", r.Captures,
			ms(r.Push.P50)+" / "+ms(r.Push.P99), ms(r.Pull.P50)+" / "+ms(r.Pull.P99), ms(r.Delta.P50)+" / "+ms(r.Delta.P99),
			r.Resync.Round(10*time.Millisecond).String(), r.Pages)
	}
	return b.String()
}
