package vps

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// MinFreeKiB is the free space precheck requires on the checkout's filesystem.
const MinFreeKiB = 64 * 1024

// Precheck is what the release gate learns about the host before it deploys.
type Precheck struct {
	GitVersion string
	FreeKiB    int64
	Head       string
}

// Who LocalCommit says made the drift: an operator's hand-made hotfix.
const (
	hotfixName  = "VPS operator"
	hotfixEmail = "operator@pocketbrain.invalid"
)

// maxStderr bounds how much of a command's stderr an error carries.
const maxStderr = 300

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// shq quotes s for a POSIX shell: the whole string in single quotes, each
// single quote inside written as quote, backslash, quote, quote.
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// git is the command line of one git invocation in the deploy checkout.
func (c *Client) git(args ...string) string {
	var b strings.Builder
	b.WriteString("git -C ")
	b.WriteString(shq(c.host.Checkout))
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(shq(a))
	}
	return b.String()
}

// run runs cmd and turns a transport failure or a non-zero exit into an
// error naming the command (name) and its trimmed stderr only.
func (c *Client) run(ctx context.Context, name, cmd string) (Result, error) {
	res, err := c.Run(ctx, cmd)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	if res.Code != 0 {
		return res, fmt.Errorf("%s on the VPS host exited %d: %s", name, res.Code, trimStderr(res.Stderr))
	}
	return res, nil
}

func trimStderr(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxStderr {
		s = s[:maxStderr] + "..."
	}
	if s == "" {
		return "(no stderr)"
	}
	return s
}

func validSHA(sha string) error {
	if !shaRE.MatchString(sha) {
		return fmt.Errorf("release SHA %q is not 40 lowercase hex digits (pass the full commit SHA, e.g. from git rev-parse)", sha)
	}
	return nil
}

// Precheck checks the host can take a release: git installed, room on the
// checkout's filesystem, and a clean checkout, so a deploy never mixes the
// release with stray changes. It also reads HEAD.
func (c *Client) Precheck(ctx context.Context) (Precheck, error) {
	var p Precheck
	res, err := c.Run(ctx, "git --version")
	if err != nil {
		return p, fmt.Errorf("git --version: %w", err)
	}
	if res.Code != 0 {
		return p, fmt.Errorf("git not installed on the VPS host (install git): git --version exited %d: %s", res.Code, trimStderr(res.Stderr))
	}
	p.GitVersion = strings.TrimSpace(res.Stdout)

	res, err = c.run(ctx, "df -Pk", "df -Pk "+shq(c.host.Checkout))
	if err != nil {
		return p, err
	}
	free, err := parseDFAvailable(res.Stdout)
	if err != nil {
		return p, fmt.Errorf("df -Pk %s: %w", c.host.Checkout, err)
	}
	p.FreeKiB = free
	if free < MinFreeKiB {
		return p, fmt.Errorf("only %d KiB free on the filesystem of %s on the VPS host, the release needs %d KiB (free space on the host, e.g. docker system prune or remove old logs)",
			free, c.host.Checkout, MinFreeKiB)
	}

	res, err = c.run(ctx, "git status", c.git("status", "--porcelain"))
	if err != nil {
		return p, err
	}
	if paths := porcelainPaths(res.Stdout); len(paths) > 0 {
		shown := paths
		if len(shown) > 3 {
			shown = shown[:3]
		}
		more := ""
		if len(paths) > 3 {
			more = fmt.Sprintf(" and %d more", len(paths)-3)
		}
		return p, fmt.Errorf("deploy checkout %s is dirty: %s%s (commit or discard the changes on the host, e.g. git reset --hard && git clean -fd, before the release)",
			c.host.Checkout, strings.Join(shown, ", "), more)
	}

	p.Head, err = c.Head(ctx)
	return p, err
}

// parseDFAvailable reads the Available column of POSIX `df -Pk` output.
// It counts back from the Capacity column ("NN%"), so a filesystem name
// with spaces does not shift it.
func parseDFAvailable(out string) (int64, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return 0, fmt.Errorf("unexpected output %q (want a header and one line)", trimStderr(out))
	}
	fields := strings.Fields(lines[len(lines)-1])
	for i := 1; i < len(fields); i++ {
		if strings.HasSuffix(fields[i], "%") {
			n, err := strconv.ParseInt(fields[i-1], 10, 64)
			if err != nil {
				break
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no Available column in %q", lines[len(lines)-1])
}

// porcelainPaths lists the paths of `git status --porcelain` output.
func porcelainPaths(out string) []string {
	var paths []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if len(line) < 4 {
			continue
		}
		paths = append(paths, line[3:])
	}
	return paths
}

// Head returns the checkout's HEAD commit.
func (c *Client) Head(ctx context.Context) (string, error) {
	res, err := c.run(ctx, "git rev-parse HEAD", c.git("rev-parse", "HEAD"))
	if err != nil {
		return "", err
	}
	head := strings.TrimSpace(res.Stdout)
	if !shaRE.MatchString(head) {
		return "", fmt.Errorf("git rev-parse HEAD in %s on the VPS host printed %q, not a 40-hex SHA (is %s a git checkout?)",
			c.host.Checkout, firstLine(head), c.host.Checkout)
	}
	return head, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

// Sync fetches origin and checks out sha detached, the deploy step of a
// release; it returns HEAD before and after.
func (c *Client) Sync(ctx context.Context, sha string) (from, to string, err error) {
	if err := validSHA(sha); err != nil {
		return "", "", err
	}
	if from, err = c.Head(ctx); err != nil {
		return "", "", err
	}
	if _, err := c.run(ctx, "git fetch", c.git("fetch", "--quiet", "origin")); err != nil {
		return from, "", err
	}
	res, err := c.Run(ctx, c.git("cat-file", "-e", sha+"^{commit}"))
	if err != nil {
		return from, "", fmt.Errorf("git cat-file: %w", err)
	}
	if res.Code != 0 {
		return from, "", fmt.Errorf("release SHA %s does not exist in the release repository (push the release commit, or pass the SHA of an existing release): git cat-file exited %d: %s",
			sha, res.Code, trimStderr(res.Stderr))
	}
	if _, err := c.run(ctx, "git checkout", c.git("checkout", "--quiet", "--detach", sha)); err != nil {
		return from, "", err
	}
	to, err = c.Head(ctx)
	return from, to, err
}

// ShowFile returns a file of the checkout's HEAD commit, as deployed.
func (c *Client) ShowFile(ctx context.Context, file string) ([]byte, error) {
	res, err := c.run(ctx, "git show", c.git("show", "HEAD:"+file))
	if err != nil {
		return nil, err
	}
	return []byte(res.Stdout), nil
}

// LocalCommit makes a commit on the host's checkout: the drift a hand-made
// hotfix leaves. It returns the new HEAD.
func (c *Client) LocalCommit(ctx context.Context, msg string) (string, error) {
	cmd := c.git("-c", "user.name="+hotfixName, "-c", "user.email="+hotfixEmail,
		"commit", "--allow-empty", "--quiet", "-m", msg)
	if _, err := c.run(ctx, "git commit", cmd); err != nil {
		return "", err
	}
	return c.Head(ctx)
}

// Reset resolves drift by putting the checkout back on sha, dropping local
// commits and untracked files. It returns HEAD.
func (c *Client) Reset(ctx context.Context, sha string) (string, error) {
	if err := validSHA(sha); err != nil {
		return "", err
	}
	cmd := c.git("reset", "--quiet", "--hard", sha) + " && " + c.git("clean", "-fdq")
	if _, err := c.run(ctx, "git reset --hard && git clean", cmd); err != nil {
		return "", err
	}
	return c.Head(ctx)
}

// Dirty writes an untracked file in the checkout (for the dirty-checkout
// test). name is relative to the checkout and must stay inside it.
func (c *Client) Dirty(ctx context.Context, name string) error {
	clean := path.Clean(name)
	if name == "" || path.IsAbs(name) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") ||
		clean == ".git" || strings.HasPrefix(clean, ".git/") || strings.ContainsAny(name, "\x00\n") {
		return fmt.Errorf("dirty file name %q must be a relative path inside the checkout, outside .git (e.g. chaos-dirty.txt)", name)
	}
	cmd := "printf '%s\\n' " + shq("left by the chaos harness: dirty-checkout test") + " > " + shq(path.Join(c.host.Checkout, clean))
	_, err := c.run(ctx, "printf > "+clean, cmd)
	return err
}
