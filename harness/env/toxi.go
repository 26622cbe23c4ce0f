package env

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

// Toxi wraps Toxiproxy's Go client. The client has no context support, so every call
// runs under a timeout here: a hung Toxiproxy must fail a spec, not hang it.
type Toxi struct {
	api     *toxiproxy.Client
	URL     string
	timeout Timeouts
}

func (e *Environment) createProxies(ctx context.Context) error {
	url, err := e.URL(ctx, Toxiproxy)
	if err != nil {
		return err
	}
	e.toxi = &Toxi{api: toxiproxy.NewClient(url), URL: url, timeout: e.cfg.Timeouts}
	for _, ed := range Edges {
		if !e.Has(ed.From) && !e.Has(ed.To) {
			continue
		}
		err := e.toxi.call(ctx, "create proxy "+ed.Name, func() error {
			_, err := e.toxi.api.CreateProxy(ed.Name, "0.0.0.0:"+strconv.Itoa(ed.Port), ed.Upstream)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *Toxi) call(ctx context.Context, what string, f func() error) error {
	return t.callWithin(ctx, t.timeout.ToxiproxyCall, what, f)
}

// toxicRemovalCalls is how many ToxiproxyCall bounds a toxic's removal gets: Toxiproxy
// answers it only once every link has flushed what the toxic holds, which under load
// (a latency toxic on a busy edge) can take well over one call's bound; the removal
// then completes late (Shopify/toxiproxy#558). Seen in CI: FM6-vps-timeout's heal
// "remove toxic pb_latency: no answer within 5s", the toxic gone a few seconds later.
const toxicRemovalCalls = 6

func (t *Toxi) callWithin(ctx context.Context, d time.Duration, what string, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("toxiproxy: %s: %w", what, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("toxiproxy: %s: no answer within %s: %w", what, d, ctx.Err())
	}
}

func (t *Toxi) proxy(ctx context.Context, name string) (*toxiproxy.Proxy, error) {
	var p *toxiproxy.Proxy
	err := t.call(ctx, "get proxy "+name, func() (err error) {
		p, err = t.api.Proxy(name)
		return err
	})
	return p, err
}

// SetEnabled enables or disables a proxy ("down" fault: connections are refused and
// existing ones closed).
func (t *Toxi) SetEnabled(ctx context.Context, name string, enabled bool) error {
	p, err := t.proxy(ctx, name)
	if err != nil {
		return err
	}
	return t.call(ctx, fmt.Sprintf("set %s enabled=%v", name, enabled), func() error {
		if enabled {
			return p.Enable()
		}
		return p.Disable()
	})
}

// AddToxic adds a toxic to a proxy.
func (t *Toxi) AddToxic(ctx context.Context, proxy, name, typ, stream string, toxicity float32, attrs map[string]any) error {
	p, err := t.proxy(ctx, proxy)
	if err != nil {
		return err
	}
	return t.call(ctx, fmt.Sprintf("add %s toxic to %s", typ, proxy), func() error {
		_, err := p.AddToxic(name, typ, stream, toxicity, toxiproxy.Attributes(attrs))
		return err
	})
}

// RemoveToxic removes one toxic. A toxic that is already gone counts as removed: a
// removal that timed out may still complete inside Toxiproxy, and a heal retried after
// it must not fail on the toxic's absence.
func (t *Toxi) RemoveToxic(ctx context.Context, proxy, name string) error {
	p, err := t.proxy(ctx, proxy)
	if err != nil {
		return err
	}
	return t.callWithin(ctx, toxicRemovalCalls*t.timeout.ToxiproxyCall, "remove toxic "+name, func() error {
		err := p.RemoveToxic(name)
		if apiErr := (*toxiproxy.ApiError)(nil); errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			return nil
		}
		return err
	})
}

// Reset enables every proxy and removes every toxic.
func (t *Toxi) Reset(ctx context.Context) error {
	return t.call(ctx, "reset", t.api.ResetState)
}

// Dirty lists what is not clean: disabled proxies and active toxics. Empty means clean.
func (t *Toxi) Dirty(ctx context.Context) ([]string, error) {
	var proxies map[string]*toxiproxy.Proxy
	if err := t.call(ctx, "list proxies", func() (err error) {
		proxies, err = t.api.Proxies()
		return err
	}); err != nil {
		return nil, err
	}
	var out []string
	for name, p := range proxies {
		if !p.Enabled {
			out = append(out, name+": disabled")
		}
		for _, tx := range p.ActiveToxics {
			out = append(out, fmt.Sprintf("%s: toxic %s (%s)", name, tx.Name, tx.Type))
		}
	}
	sort.Strings(out)
	return out, nil
}

// MetricsURL is Toxiproxy's Prometheus endpoint (started with -proxy-metrics): its
// byte counters per proxy are the proof that a network fault acted.
func (t *Toxi) MetricsURL() string { return strings.TrimRight(t.URL, "/") + "/metrics" }
