package env

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Request is one HTTP request of the harness to a role.
type Request struct {
	Method string // default GET
	Path   string // with its query, e.g. "/api/v2/sync/state?clientId=c01"
	Header http.Header
	Body   []byte
	// Timeout bounds the whole request, body read included (default Timeouts.HTTPCall).
	Timeout time.Duration
	// Limit caps the body read (default 256 MiB: a fleet's history at 1M captures).
	Limit int64
}

// Response is what a role answered.
type Response struct {
	Status int
	Body   []byte
}

// OK reports a 2xx status.
func (r Response) OK() bool { return r.Status/100 == 2 }

// Err is nil for a 2xx answer, else an error naming the request, the status and the
// start of the body.
func (r Response) Err(role Role, req Request) error {
	if r.OK() {
		return nil
	}
	body := bytes.TrimSpace(r.Body[:min(len(r.Body), 300)])
	return fmt.Errorf("%s %s %s: status %d: %s", role, method(req), req.Path, r.Status, body)
}

func method(req Request) string {
	if req.Method == "" {
		return http.MethodGet
	}
	return req.Method
}

// Do sends one request to a role's HTTP port, the harness's one way to talk to a
// service: the URL carries the run's control token, every call has a timeout, and an
// error names the role and the path. A non-2xx answer is a Response, not an error (see
// Response.Err).
func (e *Environment) Do(ctx context.Context, r Role, req Request) (Response, error) {
	base, err := e.URL(ctx, r)
	if err != nil {
		return Response{}, err
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = e.cfg.Timeouts.HTTPCall
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 256 << 20
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, method(req), base+req.Path, body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s %s: %w", r, method(req), req.Path, err)
	}
	for k, vs := range req.Header {
		hr.Header[k] = vs
	}
	if req.Body != nil && hr.Header.Get("Content-Type") == "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s %s (within %s): %w", r, method(req), req.Path, timeout, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return Response{Status: resp.StatusCode}, fmt.Errorf("%s %s %s: reading the answer: %w", r, method(req), req.Path, err)
	}
	return Response{Status: resp.StatusCode, Body: b}, nil
}
