package env

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/moby/moby/client"
	tc "github.com/testcontainers/testcontainers-go"

	"github.com/pocketbrain/chaos/harness/vps"
)

// The VPS host of the release gate (pocketbrain-local/vpshost, fixtures/images/pb-vps-start):
// sshd with key login for vps.User, the deploy checkout vps.Checkout, and the run's
// release repository, copied in before the start, as its origin.
const (
	vpsKeysDir     = "/etc/pb-ssh"
	vpsReleaseRepo = "/srv/release.git"
	// VPSUser is the account the gate logs in as.
	VPSUser = "deploy"
	// VPSCheckout is the deploy checkout on the host.
	VPSCheckout = "/srv/pocketbrain"
	// PreviousServerImage is the artifact that ran before the release under test (make
	// images tags it): the release repository's first commit names it.
	PreviousServerImage = "pocketbrain-local/server:previous"
)

// ReleaseRepo is the harness's own release repository of this environment: a bare git
// repository on the harness's disk whose commits each name an image set (vps.ReleaseFile).
type ReleaseRepo struct {
	Dir string
	// SHAs are the commits, oldest first; the last is the release under test.
	SHAs []string
	// UnderTest is the content of the last commit.
	UnderTest vps.Release
}

// Intended is the SHA of the release under test.
func (r *ReleaseRepo) Intended() string { return r.SHAs[len(r.SHAs)-1] }

// Release is the environment's release repository (nil without a VPS host).
func (e *Environment) Release() *ReleaseRepo { return e.release }

// VPSClient is a live SSH client of the VPS host: the current one, or, when that one is
// broken (its connection failed, or the host was replaced or restarted), a new one.
func (e *Environment) VPSClient(ctx context.Context) (*vps.Client, error) {
	e.mu.Lock()
	c, closed := e.vps, e.closed
	e.mu.Unlock()
	switch {
	case closed:
		return nil, errors.New("the environment is closed")
	case e.release == nil:
		return nil, fmt.Errorf("no VPS host in this stack (add role %s)", VPSHost)
	case c != nil && !c.Broken():
		return c, nil
	}
	if err := e.dialVPS(ctx, c); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.vps == nil || e.vps.Broken() {
		return nil, errors.New("vpshost: the SSH connection broke again right after the dial")
	}
	return e.vps, nil
}

// VPSHostConfig is how the harness reaches the VPS host now (its published sshd port).
func (e *Environment) VPSHostConfig(ctx context.Context) (vps.Host, error) {
	keys, err := e.Secrets.VPSKeys()
	if err != nil {
		return vps.Host{}, err
	}
	c, err := e.Container(VPSHost)
	if err != nil {
		return vps.Host{}, err
	}
	p, err := c.MappedPort(ctx, "22/tcp")
	if err != nil {
		return vps.Host{}, fmt.Errorf("vpshost: published sshd port: %w", err)
	}
	return vps.Host{Addr: net.JoinHostPort(e.host, p.Port()), User: VPSUser, Keys: keys, Checkout: VPSCheckout}, nil
}

// createRelease makes the run's release repository: the previous release (server
// PreviousServerImage, when it exists) and the release under test (the configured server
// image), each with its image id and the revision its binary was built at.
func (e *Environment) createRelease(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "pb-release-"+e.cfg.RunID+"-")
	if err != nil {
		return fmt.Errorf("release repository: %w", err)
	}
	e.releaseTmp = dir
	// rev is the revision its binary reports: the image's stamp unless PB_REVISION told
	// the release under test another.
	release := func(name, ref, id, rev string) (vps.Release, error) {
		var err error
		if id == "" {
			if id, err = e.docker.ImageID(ctx, ref); err != nil {
				return vps.Release{}, err
			}
		}
		if rev == "" {
			if rev, err = e.docker.ImageLabel(ctx, ref, RevisionLabel); err != nil {
				return vps.Release{}, err
			}
		}
		if rev == "" {
			return vps.Release{}, fmt.Errorf("release repository: %s has no %s label (make images stamps it); set PB_REVISION to the revision its pocketbrain_build_info reports", ref, RevisionLabel)
		}
		return vps.Release{Name: name, Revision: rev, Images: map[string]vps.Image{string(Server): {Ref: ref, ID: id}}}, nil
	}
	var releases []vps.Release
	if e.cfg.Images[Server] != PreviousServerImage {
		if prev, err := release("previous release", PreviousServerImage, "", ""); err == nil {
			releases = append(releases, prev)
		}
	}
	cur, err := release("release under test", e.cfg.Images[Server], e.ImageIDs[Server], e.cfg.Revision)
	if err != nil {
		return err
	}
	releases = append(releases, cur)
	repo := filepath.Join(dir, filepath.Base(vpsReleaseRepo))
	shas, err := vps.CreateRepo(repo, releases)
	if err != nil {
		return fmt.Errorf("release repository: %w", err)
	}
	e.release = &ReleaseRepo{Dir: repo, SHAs: shas, UnderTest: cur}
	e.logf("release repository %s: %d commits, release under test %s", repo, len(shas), e.release.Intended())
	return nil
}

// vpsHostFiles are what the VPS host's container gets before it starts: this run's host
// key, the harness's authorized key and the release repository.
func (e *Environment) vpsHostFiles() ([]tc.ContainerFile, error) {
	keys, err := e.Secrets.VPSKeys()
	if err != nil {
		return nil, err
	}
	if e.release == nil {
		return nil, errors.New("vpshost: no release repository (the environment creates it before the start)")
	}
	return []tc.ContainerFile{
		{Reader: bytes.NewReader(keys.HostPrivateKey), ContainerFilePath: vpsKeysDir + "/host_ed25519_key", FileMode: 0o600},
		{Reader: bytes.NewReader(keys.AuthorizedKey), ContainerFilePath: vpsKeysDir + "/authorized_keys", FileMode: 0o644},
		{HostFilePath: e.release.Dir, ContainerFilePath: vpsReleaseRepo, FileMode: 0o755},
	}, nil
}

// dialVPS connects a new SSH client to the VPS host (after a start or a restart of it,
// or when old broke) and installs it, unless another caller already replaced old or the
// environment was closed meanwhile. Dials are serialized, so concurrent scrapes make one.
func (e *Environment) dialVPS(ctx context.Context, old *vps.Client) error {
	e.vpsDial.Lock()
	defer e.vpsDial.Unlock()
	e.mu.Lock()
	replaced := e.vps != old && e.vps != nil && !e.vps.Broken()
	e.mu.Unlock()
	if replaced {
		return nil
	}
	h, err := e.VPSHostConfig(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.ContainerStart)
	defer cancel()
	var c *vps.Client
	for {
		if c, err = vps.Dial(ctx, h); err == nil || !errors.Is(err, vps.ErrUnreachable) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("vpshost: %w", err)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = c.Close()
		return errors.New("the environment is closed")
	}
	prev := e.vps
	e.vps = c
	e.mu.Unlock()
	if prev != nil {
		_ = prev.Close()
	}
	return nil
}

// hasVPSHost is whether this environment runs the VPS host.
func (e *Environment) hasVPSHost() bool { return slices.Contains(e.cfg.Roles, VPSHost) }

// VPSHead is the VPS host's deploy checkout HEAD. A client whose connection broke (the
// host was restarted, or did not answer in time) is dialed again once.
func (e *Environment) VPSHead(ctx context.Context) (string, error) {
	c, err := e.VPSClient(ctx)
	if err != nil {
		return "", err
	}
	head, err := c.Head(ctx)
	if !errors.Is(err, vps.ErrConnection) || ctx.Err() != nil {
		return head, err
	}
	if c, err = e.VPSClient(ctx); err != nil {
		return "", err
	}
	return c.Head(ctx)
}

// Deployed is what DeployRelease did with one role of the release.
type Deployed struct {
	Role     Role
	Image    vps.Image
	Replaced bool // false: the role already ran that image
}

// CheckedOutRelease reads, over c, the release the VPS host's checkout is at: its HEAD
// and the image set its vps.ReleaseFile names.
func CheckedOutRelease(ctx context.Context, c *vps.Client) (string, vps.Release, error) {
	head, err := c.Head(ctx)
	if err != nil {
		return "", vps.Release{}, err
	}
	b, err := c.ShowFile(ctx, vps.ReleaseFile)
	if err != nil {
		return head, vps.Release{}, err
	}
	rel, err := vps.ParseRelease(b)
	if err != nil {
		return head, vps.Release{}, fmt.Errorf("%s at %s: %w", vps.ReleaseFile, head, err)
	}
	return head, rel, nil
}

// DeployRelease makes the stack run the image set the VPS host's checkout names, read
// over c (the
// release gate's deploy, no pull): each named role that runs another image is replaced
// with the named one, which must still have the id the release recorded (a tag moved
// since is another artifact); a role that already runs it is left alone.
func (e *Environment) DeployRelease(ctx context.Context, c *vps.Client) (string, []Deployed, error) {
	head, rel, err := CheckedOutRelease(ctx, c)
	if err != nil {
		return head, nil, err
	}
	var done []Deployed
	for _, name := range slices.Sorted(maps.Keys(rel.Images)) {
		r, img := Role(name), rel.Images[name]
		if !e.Has(r) {
			return head, done, fmt.Errorf("release %s names role %q, which this stack does not run", head, name)
		}
		id, err := e.docker.ImageID(ctx, img.Ref)
		if err != nil {
			return head, done, fmt.Errorf("release %s: image %s: %w (build it with make images)", head, img.Ref, err)
		}
		if id != img.ID {
			return head, done, fmt.Errorf("release %s names %s with id %s, but that tag is now %s: another artifact; rebuild the release or restore the tag", head, img.Ref, short(img.ID), short(id))
		}
		if running, err := e.runningImageID(ctx, r); err != nil {
			return head, done, err
		} else if running == img.ID {
			done = append(done, Deployed{Role: r, Image: img})
			continue
		}
		// By id: the artifact checked above, even if the tag moves meanwhile.
		if err := e.Replace(ctx, r, Change{Image: img.ID}); err != nil {
			return head, done, fmt.Errorf("deploy %s %s: %w", r, img.Ref, err)
		}
		done = append(done, Deployed{Role: r, Image: img, Replaced: true})
	}
	return head, done, nil
}

// runningImageID is the image id of the container that runs role r now.
func (e *Environment) runningImageID(ctx context.Context, r Role) (string, error) {
	c, err := e.Container(r)
	if err != nil {
		return "", err
	}
	st, err := e.docker.cli.ContainerInspect(ctx, c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", r, err)
	}
	return st.Container.Image, nil
}
