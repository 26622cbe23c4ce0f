package vps

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// reply is a canned answer to one exec request.
type reply struct {
	stdout, stderr string
	code           uint32
	hang           bool // never answer: block until the client closes the session
}

// fakeHost is a tiny in-process sshd: it accepts only keys.Client, presents
// keys' host key, and answers exec requests from a table. Commands not in
// the table exit 127 like a shell would.
type fakeHost struct {
	addr string

	mu      sync.Mutex
	replies map[string]reply
	seen    []string
}

func startFakeHost(t *testing.T, keys *Keys, replies map[string]reply) *fakeHost {
	t.Helper()
	hostSigner, err := ssh.ParsePrivateKey(keys.HostPrivateKey)
	require.NoError(t, err)
	allowed := keys.Client.PublicKey().Marshal()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), allowed) {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	cfg.AddHostKey(hostSigner)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if replies == nil {
		replies = map[string]reply{}
	}
	f := &fakeHost{addr: ln.Addr().String(), replies: replies}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); f.serve(c, cfg) }()
		}
	}()
	return f
}

func (f *fakeHost) set(cmd string, r reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[cmd] = r
}

func (f *fakeHost) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

func (f *fakeHost) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go f.session(ch, creqs)
	}
}

func (f *fakeHost) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil)
			continue
		}
		var exec struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &exec); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		f.mu.Lock()
		f.seen = append(f.seen, exec.Command)
		r, ok := f.replies[exec.Command]
		f.mu.Unlock()
		if !ok {
			r = reply{stderr: "sh: command not found: " + exec.Command, code: 127}
		}
		if r.hang {
			for range reqs { // closed when the client closes the channel
			}
			return
		}
		_, _ = ch.Write([]byte(r.stdout))
		_, _ = ch.Stderr().Write([]byte(r.stderr))
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{r.code}))
		return
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dialFake(t *testing.T, keys *Keys, f *fakeHost) *Client {
	t.Helper()
	c, err := Dial(testCtx(t), Host{Addr: f.addr, User: "deploy", Keys: keys, Checkout: "/srv/pocketbrain"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestDialAndRun(t *testing.T) {
	keys, err := NewKeys()
	require.NoError(t, err)
	f := startFakeHost(t, keys, map[string]reply{
		"echo hi": {stdout: "hi\n"},
		"false":   {stderr: "nope\n", code: 3},
	})
	c := dialFake(t, keys, f)

	res, err := c.Run(testCtx(t), "echo hi")
	require.NoError(t, err)
	require.Equal(t, Result{Stdout: "hi\n", Code: 0}, res)

	res, err = c.Run(testCtx(t), "false")
	require.NoError(t, err, "a non-zero exit is not a transport error")
	require.Equal(t, Result{Stderr: "nope\n", Code: 3}, res)

	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	_, err = c.Run(testCtx(t), "echo hi")
	require.Error(t, err)
}

func TestDialWrongClientKey(t *testing.T) {
	keys, err := NewKeys()
	require.NoError(t, err)
	f := startFakeHost(t, keys, nil)
	other, err := keys.WithOtherClient()
	require.NoError(t, err)
	_, err = Dial(testCtx(t), Host{Addr: f.addr, User: "deploy", Keys: other})
	require.ErrorIs(t, err, ErrAuth)
	require.ErrorContains(t, err, "deploy@"+f.addr)
	require.ErrorContains(t, err, "authorized_keys")
	requireNoSecrets(t, err, keys, other)
}

func TestDialWrongHostKey(t *testing.T) {
	keys, err := NewKeys()
	require.NoError(t, err)
	impostor, err := NewKeys()
	require.NoError(t, err)
	// The impostor accepts our client key but presents its own host key.
	impostor.Client = keys.Client
	f := startFakeHost(t, impostor, nil)
	_, err = Dial(testCtx(t), Host{Addr: f.addr, User: "deploy", Keys: keys})
	require.ErrorIs(t, err, ErrHostKey)
	require.ErrorContains(t, err, "a different host answers at "+f.addr)
	requireNoSecrets(t, err, keys, impostor)
}

func TestDialClosedPort(t *testing.T) {
	keys, err := NewKeys()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = Dial(testCtx(t), Host{Addr: addr, User: "deploy", Keys: keys})
	require.ErrorIs(t, err, ErrUnreachable)
	require.ErrorContains(t, err, "check Addr")
}

func TestDialSilentListenerHonoursDeadline(t *testing.T) {
	keys, err := NewKeys()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c // accept, never speak
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case c := <-held:
			_ = c.Close()
		default:
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, Host{Addr: ln.Addr().String(), User: "deploy", Keys: keys})
	elapsed := time.Since(start)
	require.ErrorIs(t, err, ErrUnreachable)
	require.Less(t, elapsed, 2*time.Second)
	require.GreaterOrEqual(t, elapsed, 250*time.Millisecond)
}

func TestDialCancelDuringHandshake(t *testing.T) {
	keys, err := NewKeys()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err = Dial(ctx, Host{Addr: ln.Addr().String(), User: "deploy", Keys: keys})
	require.ErrorIs(t, err, ErrUnreachable)
}

func requireNoSecrets(t *testing.T, err error, keys ...*Keys) {
	t.Helper()
	msg := err.Error()
	require.NotContains(t, msg, "PRIVATE KEY")
	for _, k := range keys {
		for _, s := range k.Secrets() {
			require.False(t, strings.Contains(msg, s), "error leaks key material")
		}
	}
}

func TestShellQuote(t *testing.T) {
	require.Equal(t, `'plain'`, shq("plain"))
	require.Equal(t, `'it'\''s; rm -rf /'`, shq("it's; rm -rf /"))
	require.Equal(t, `''`, shq(""))
}

const (
	gitDir   = "git -C '/srv/pocketbrain' "
	headA    = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	headB    = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	dfHeader = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
)

func healthyHost() map[string]reply {
	return map[string]reply{
		"git --version":                   {stdout: "git version 2.39.5\n"},
		"df -Pk '/srv/pocketbrain'":       {stdout: dfHeader + "overlay 100000000 20000000 80000000 20% /\n"},
		gitDir + "'status' '--porcelain'": {},
		gitDir + "'rev-parse' 'HEAD'":     {stdout: headA + "\n"},
	}
}

func TestPrecheck(t *testing.T) {
	keys, err := NewKeys()
	require.NoError(t, err)
	f := startFakeHost(t, keys, healthyHost())
	c := dialFake(t, keys, f)

	p, err := c.Precheck(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, Precheck{GitVersion: "git version 2.39.5", FreeKiB: 80000000, Head: headA}, p)

	f.set(gitDir+"'status' '--porcelain'", reply{stdout: "?? chaos-dirty.txt\n M config/app.yaml\n?? a\n?? b\n"})
	_, err = c.Precheck(testCtx(t))
	require.ErrorContains(t, err, "deploy checkout /srv/pocketbrain is dirty: chaos-dirty.txt, config/app.yaml, a and 1 more")
	require.ErrorContains(t, err, "git reset --hard && git clean -fd")

	f.set("df -Pk '/srv/pocketbrain'", reply{stdout: dfHeader + "/dev/my disk 100000 99000 1000 99% /srv\n"})
	_, err = c.Precheck(testCtx(t))
	require.ErrorContains(t, err, "only 1000 KiB free")
	require.ErrorContains(t, err, "65536 KiB")

	f.set("git --version", reply{stderr: "sh: 1: git: not found\n", code: 127})
	_, err = c.Precheck(testCtx(t))
	require.ErrorContains(t, err, "git not installed on the VPS host (install git)")
}

func TestSync(t *testing.T) {
	keys, err := NewKeys()
	require.NoError(t, err)
	replies := healthyHost()
	replies[gitDir+"'fetch' '--quiet' 'origin'"] = reply{}
	replies[gitDir+"'cat-file' '-e' '"+headB+"^{commit}'"] = reply{}
	replies[gitDir+"'checkout' '--quiet' '--detach' '"+headB+"'"] = reply{}
	f := startFakeHost(t, keys, replies)
	c := dialFake(t, keys, f)

	from, to, err := c.Sync(testCtx(t), headB)
	require.NoError(t, err)
	require.Equal(t, headA, from)
	require.Equal(t, headA, to, "the fake's HEAD is canned")
	require.Contains(t, f.commands(), gitDir+"'checkout' '--quiet' '--detach' '"+headB+"'")

	_, _, err = c.Sync(testCtx(t), "main; rm -rf /")
	require.ErrorContains(t, err, "40 lowercase hex")

	missing := strings.Repeat("c", 40)
	f.set(gitDir+"'cat-file' '-e' '"+missing+"^{commit}'", reply{stderr: "fatal: Not a valid object name\n", code: 128})
	_, _, err = c.Sync(testCtx(t), missing)
	require.ErrorContains(t, err, "release SHA "+missing+" does not exist in the release repository")
	require.ErrorContains(t, err, "Not a valid object name")

	f.set(gitDir+"'fetch' '--quiet' 'origin'", reply{stdout: "UNRELATED STDOUT", stderr: "fatal: unable to access origin\n", code: 128})
	_, _, err = c.Sync(testCtx(t), headB)
	require.ErrorContains(t, err, "git fetch")
	require.ErrorContains(t, err, "fatal: unable to access origin")
	require.NotContains(t, err.Error(), "UNRELATED STDOUT")
}

func TestRemoteHelpers(t *testing.T) {
	keys, err := NewKeys()
	require.NoError(t, err)
	replies := healthyHost()
	replies[gitDir+"'show' 'HEAD:release.yaml'"] = reply{stdout: "name: x\n"}
	replies[gitDir+"'-c' 'user.name=VPS operator' '-c' 'user.email=operator@pocketbrain.invalid' 'commit' '--allow-empty' '--quiet' '-m' 'hotfix: it'\\''s late'"] = reply{}
	replies[gitDir+"'reset' '--quiet' '--hard' '"+headB+"' && "+gitDir+"'clean' '-fdq'"] = reply{}
	replies[`printf '%s\n' 'left by the chaos harness: dirty-checkout test' > '/srv/pocketbrain/chaos-dirty.txt'`] = reply{}
	f := startFakeHost(t, keys, replies)
	c := dialFake(t, keys, f)
	ctx := testCtx(t)

	b, err := c.ShowFile(ctx, ReleaseFile)
	require.NoError(t, err)
	require.Equal(t, "name: x\n", string(b))

	head, err := c.LocalCommit(ctx, "hotfix: it's late")
	require.NoError(t, err)
	require.Equal(t, headA, head)

	head, err = c.Reset(ctx, headB)
	require.NoError(t, err)
	require.Equal(t, headA, head)
	_, err = c.Reset(ctx, "HEAD~1")
	require.Error(t, err)

	require.NoError(t, c.Dirty(ctx, "chaos-dirty.txt"))
	require.Error(t, c.Dirty(ctx, "../etc/passwd"))
	require.Error(t, c.Dirty(ctx, "/etc/passwd"))
	require.Error(t, c.Dirty(ctx, ".git/config"))

	f.set(gitDir+"'rev-parse' 'HEAD'", reply{stdout: "HEAD\n"})
	_, err = c.Head(ctx)
	require.ErrorContains(t, err, "not a 40-hex SHA")
}

func TestRunHonoursCancel(t *testing.T) {
	keys, err := NewKeys()
	require.NoError(t, err)
	f := startFakeHost(t, keys, map[string]reply{"sleep 100": {hang: true}, "echo hi": {stdout: "hi\n"}})
	c := dialFake(t, keys, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Run(ctx, "echo hi")
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Run(ctx, "sleep 100")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)

	// A command that outlived its ctx means a host that may not answer: the client is
	// closed (the connection is not trusted again) and a new one works.
	require.ErrorIs(t, err, ErrConnection)
	require.True(t, c.Broken())
	_, err = c.Run(testCtx(t), "echo hi")
	require.Error(t, err)
	res, err := dialFake(t, keys, f).Run(testCtx(t), "echo hi")
	require.NoError(t, err)
	require.Equal(t, "hi\n", res.Stdout)
}
