package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/pocketbrain/chaos/harness/env"
)

// A probe is the harness's own traffic through an edge's proxy: one small request in
// the upstream's protocol, and the first bytes of its answer. It is how a network fault
// proves that traffic met it. Toxiproxy's byte counters cannot: they are added when a
// connection ends (link.go), so the services' pooled connections show nothing for as
// long as they stay open.
type probe struct {
	Outcome string // answered, refused, closed, reset, silent
	RTT     time.Duration
	Detail  string
}

const (
	probeAnswered = "answered"
	probeRefused  = "refused"
	probeClosed   = "closed"
	probeReset    = "reset"
	probeSilent   = "silent"
)

func (p probe) String() string {
	s := fmt.Sprintf("%s after %s", p.Outcome, p.RTT.Round(time.Millisecond))
	if p.Detail != "" {
		s += " (" + p.Detail + ")"
	}
	return s
}

// probeRequest is what each upstream answers at once: Postgres its SSLRequest reply ('S'
// or 'N'), Redis a PING (+PONG, or -NOAUTH without the password), the HTTP services
// their /ready (any status line).
func probeRequest(edge env.Edge) (req []byte, answered func([]byte) bool) {
	switch edge.To {
	case env.Postgres:
		return []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}, func(b []byte) bool { return len(b) > 0 && (b[0] == 'S' || b[0] == 'N') }
	case env.Redis, env.KV:
		return []byte("PING\r\n"), func(b []byte) bool { return len(b) > 0 && (b[0] == '+' || b[0] == '-') }
	}
	return []byte("GET /ready HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"),
		func(b []byte) bool { return len(b) >= 5 && string(b[:5]) == "HTTP/" }
}

// probeEdge sends one probe through the edge's proxy and waits up to wait for an answer.
func probeEdge(ctx context.Context, e *env.Environment, name string, wait time.Duration) (probe, error) {
	edge, ok := env.EdgeByName(name)
	if !ok {
		return probe{}, fmt.Errorf("no edge %q", name)
	}
	addr, err := e.ProxyAddr(ctx, name)
	if err != nil {
		return probe{}, err
	}
	req, answered := probeRequest(edge)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	began := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return probe{Outcome: probeSilent, RTT: time.Since(began), Detail: "connect did not complete"}, nil
		}
		return probe{Outcome: classify(err), RTT: time.Since(began), Detail: err.Error()}, nil
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write(req); err != nil {
		return probe{Outcome: classify(err), RTT: time.Since(began), Detail: err.Error()}, nil
	}
	buf := make([]byte, 16)
	n, err := conn.Read(buf)
	rtt := time.Since(began)
	if n > 0 {
		if answered(buf[:n]) {
			return probe{Outcome: probeAnswered, RTT: rtt}, nil
		}
		return probe{Outcome: probeAnswered, RTT: rtt, Detail: fmt.Sprintf("unexpected answer %q", buf[:n])}, nil
	}
	return probe{Outcome: classify(err), RTT: rtt, Detail: fmt.Sprint(err)}, nil
}

// classify names what a failed connect, write or read met.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return probeRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return probeReset
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return probeSilent
	}
	return probeClosed // EOF: the far side closed without a byte
}
