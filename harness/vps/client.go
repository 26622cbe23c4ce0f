package vps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Classified Dial errors, so a caller (and a report) can tell "the container
// is not up" from "the keys do not match" with errors.Is.
var (
	ErrUnreachable = errors.New("VPS host unreachable")                       // TCP dial failed or timed out, or handshake timed out
	ErrAuth        = errors.New("SSH authentication refused")                 // "unable to authenticate" from the handshake
	ErrHostKey     = errors.New("SSH host key does not match the pinned key") // another host (or key) answers at Addr
	// ErrConnection is a Run whose connection failed or did not answer within its ctx:
	// the client is closed (Broken) and the caller dials again.
	ErrConnection = errors.New("SSH connection to the VPS host lost")
)

// Host is where and how the harness reaches the VPS host.
type Host struct {
	Addr     string // host:port of sshd
	User     string // "deploy"
	Keys     *Keys
	Checkout string // the deploy checkout, "/srv/pocketbrain"
}

// Client is one SSH connection to the VPS host; each Run opens its own
// session on it, so a Client is safe for concurrent use.
type Client struct {
	host Host

	mu     sync.Mutex
	conn   *ssh.Client
	closed bool
}

// Dial connects with the pinned host key and public-key auth only,
// honouring ctx for the TCP dial and the handshake.
func Dial(ctx context.Context, h Host) (*Client, error) {
	if h.Keys == nil || h.Keys.Client == nil || h.Keys.HostPublic == nil {
		return nil, errors.New("vps.Dial: Host.Keys is missing its client key or pinned host key (pass the run's vps.NewKeys())")
	}
	if h.Addr == "" || h.User == "" {
		return nil, errors.New("vps.Dial: Host.Addr and Host.User must be set (e.g. 127.0.0.1:2222 and deploy)")
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", h.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (is the vpshost container running and its port 22 published? check Addr)", ErrUnreachable, err)
	}

	// The handshake has no ctx of its own: bound it with the conn deadline,
	// and pull the deadline in if ctx is cancelled early.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })

	var (
		mu        sync.Mutex
		presented ssh.PublicKey
	)
	fixed := ssh.FixedHostKey(h.Keys.HostPublic)
	cfg := &ssh.ClientConfig{
		User: h.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Keys.Client)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			mu.Lock()
			presented = key
			mu.Unlock()
			return fixed(hostname, remote, key)
		},
		// Ask for the pinned key's type, so a host with several keys shows
		// the one we pinned.
		HostKeyAlgorithms: []string{h.Keys.HostPublic.Type()},
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, h.Addr, cfg)
	stopped := stop()
	if err != nil {
		_ = conn.Close()
		mu.Lock()
		defer mu.Unlock()
		return nil, classifyHandshake(ctx, h, presented, err)
	}
	if !stopped {
		// ctx ended just as the handshake finished: the deadline is in the past.
		_ = sc.Close()
		return nil, fmt.Errorf("%w: SSH handshake with %s: %v (is the vpshost container running and its port 22 published? check Addr)", ErrUnreachable, h.Addr, ctx.Err())
	}
	_ = conn.SetDeadline(time.Time{})
	return &Client{host: h, conn: ssh.NewClient(sc, chans, reqs)}, nil
}

// classifyHandshake turns a handshake failure into one of the sentinels,
// with the fix in the message. x/crypto/ssh errors hold no key material.
func classifyHandshake(ctx context.Context, h Host, presented ssh.PublicKey, err error) error {
	var ne net.Error
	switch {
	case strings.Contains(err.Error(), "no common algorithm for host key"):
		return fmt.Errorf("%w: %s offers no %s host key, pinned %s (the host must run with this run's host key; a different host answers at %s)",
			ErrHostKey, h.Addr, h.Keys.HostPublic.Type(), describe(h.Keys.HostPublic), h.Addr)
	case presented != nil && !bytes.Equal(presented.Marshal(), h.Keys.HostPublic.Marshal()):
		return fmt.Errorf("%w: %s presented %s, pinned %s (the host must run with this run's host key; a different host answers at %s)",
			ErrHostKey, h.Addr, describe(presented), describe(h.Keys.HostPublic), h.Addr)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("%w for %s@%s: %v (the host's authorized_keys must hold this run's client key, %s)",
			ErrAuth, h.User, h.Addr, err, describe(h.Keys.Client.PublicKey()))
	case ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Errorf("%w: SSH handshake with %s timed out: %v (is sshd up in the vpshost container and its port 22 published? check Addr)",
			ErrUnreachable, h.Addr, err)
	default:
		return fmt.Errorf("SSH handshake with %s@%s failed: %v (is sshd the service listening at %s?)", h.User, h.Addr, err, h.Addr)
	}
}

// Close closes the connection; closing twice is harmless.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.conn.Close()
}

// Host returns where the client is connected (keys included, which print
// as fingerprints only).
func (c *Client) Host() Host { return c.host }

// Result of one remote command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Broken is whether the client is closed: by Close, or by a Run whose connection
// failed or outlived its ctx. A broken client never works again; dial anew.
func (c *Client) Broken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Run runs one command in a new session. A non-zero exit is not an error
// (Code holds it); err is only a transport problem (ErrConnection) or ctx
// ending. A host that stops answering (a frozen container) would block the
// session beyond ctx: when ctx ends first, the whole connection is closed,
// which unblocks it, and the client is Broken.
func (c *Client) Run(ctx context.Context, cmd string) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("run on VPS host %s: %w", c.host.Addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	s, err := c.conn.NewSession()
	if err != nil {
		_ = c.Close()
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("run on VPS host %s: %w (%w)", c.host.Addr, ctx.Err(), ErrConnection)
		}
		return Result{}, fmt.Errorf("%w: open a session on %s: %v (dial again)", ErrConnection, c.host.Addr, err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr

	err = s.Run(cmd)
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("run on VPS host %s: %w (%w)", c.host.Addr, ctx.Err(), ErrConnection)
	}
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &exit):
		res.Code = exit.ExitStatus()
		return res, nil
	default:
		_ = c.Close()
		return res, fmt.Errorf("%w: run on %s: %v (dial again)", ErrConnection, c.host.Addr, err)
	}
}
