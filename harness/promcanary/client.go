package promcanary

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"

	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/evidence"
)

// Conn is a Prometheus server as the canary talks to it.
type Conn struct {
	API v1.API
	// URL is the server's address without credentials: the only form any message shows.
	URL string
	// Redactor hides the URL's password and the host's secret-looking variables in
	// everything written.
	Redactor *evidence.Redactor
}

// Connect makes the API client for rawURL (http or https, with an optional path prefix
// and user:password@). rt is the transport (nil: client_golang's default).
func Connect(rawURL string, rt http.RoundTripper) (Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// The raw text may hold a password: not quoted.
		return Conn{}, errors.New("the Prometheus URL does not parse: want the server's http(s) URL, e.g. http://prometheus:9090 (user:password@ allowed)")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Conn{}, fmt.Errorf("the Prometheus URL %q: want the server's http(s) URL with a host, e.g. http://prometheus:9090", env.PlainURL(rawURL))
	}
	user := u.User
	u.User = nil
	plain := u.String()
	if rt == nil {
		rt = promapi.DefaultRoundTripper
	}
	secrets := evidence.SecretsFromEnv(os.Environ())
	if user != nil {
		// In the URL, credentials would reach every error client_golang and net/http
		// print; in a header they reach the server only.
		pass, _ := user.Password()
		rt = basicAuth{user: user.Username(), pass: pass, next: rt}
		secrets = append(secrets, pass)
	}
	client, err := promapi.NewClient(promapi.Config{Address: plain, RoundTripper: rt})
	if err != nil {
		return Conn{}, fmt.Errorf("prometheus %s: %w", plain, err)
	}
	return Conn{API: v1.NewAPI(client), URL: plain, Redactor: evidence.NewRedactor(secrets...)}, nil
}

type basicAuth struct {
	user, pass string
	next       http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(r)
}
