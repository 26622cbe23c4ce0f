package faults

import (
	"context"
	"fmt"

	"github.com/pocketbrain/chaos/harness/env"
)

// release faults act on the VPS host's deploy checkout, the way a release drifts in
// production: local_commit commits a hand-made hotfix on the host, so its HEAD is no
// longer the intended release. Heal is the document's mitigation, "resolve git/branch
// drift before rerun": reset the checkout, then sync (fetch and check out the intended
// SHA) and deploy (the image set that commit names) again.
type release struct {
	spec  Spec
	drift string // the HEAD the fault made
}

// hotfixMessage is the local commit's message.
const hotfixMessage = "hotfix made by hand on the VPS host (chaos harness: deploy drift)"

func init() {
	kinds["release"] = func(s Spec) (Fault, error) {
		if err := oneOf("release", s.Action, "local_commit"); err != nil {
			return nil, err
		}
		if _, err := needRole(s, env.VPSHost); err != nil {
			return nil, err
		}
		return &release{spec: s}, nil
	}
}

func (f *release) Spec() Spec { return f.spec }

// Changes: the heal's deploy may replace the server.
func (f *release) Changes() []env.Role { return []env.Role{env.Server} }

// intended is the release under test's SHA.
func intended(e *env.Environment) (string, error) {
	r := e.Release()
	if r == nil {
		return "", fmt.Errorf("release fault: no VPS host in this stack (add role %s)", env.VPSHost)
	}
	return r.Intended(), nil
}

func (f *release) Inject(ctx context.Context, e *env.Environment) error {
	if _, err := intended(e); err != nil {
		return err
	}
	c, err := e.VPSClient(ctx)
	if err != nil {
		return err
	}
	head, err := c.LocalCommit(ctx, hotfixMessage)
	if err != nil {
		return err
	}
	f.drift = head
	return nil
}

// Heal resets the checkout to the intended release, then syncs and deploys it again.
func (f *release) Heal(ctx context.Context, e *env.Environment) error {
	want, err := intended(e)
	if err != nil {
		return err
	}
	c, err := e.VPSClient(ctx)
	if err != nil {
		return err
	}
	if _, err := c.Reset(ctx, want); err != nil {
		return err
	}
	if _, _, err := c.Sync(ctx, want); err != nil {
		return err
	}
	_, _, err = e.DeployRelease(ctx, c)
	return err
}

// Acted: the host's HEAD, read over SSH, is not the intended release.
func (f *release) Acted(ctx context.Context, e *env.Environment) ([]Proof, error) {
	head, want, p, err := f.look(ctx, e)
	if err == nil && head == want {
		err = fmt.Errorf("the VPS host's HEAD is still the intended release %s", want)
	}
	return p, err
}

// Healed: the host's HEAD is the intended release again.
func (f *release) Healed(ctx context.Context, e *env.Environment) ([]Proof, error) {
	head, want, p, err := f.look(ctx, e)
	if err == nil && head != want {
		err = fmt.Errorf("the VPS host's HEAD %s is not the intended release %s", head, want)
	}
	return p, err
}

// look reads the host's HEAD over SSH beside the intended release's SHA.
func (f *release) look(ctx context.Context, e *env.Environment) (head, want string, p []Proof, err error) {
	if want, err = intended(e); err != nil {
		return "", "", nil, err
	}
	if head, err = e.VPSHead(ctx); err != nil {
		return "", want, nil, err
	}
	return head, want, []Proof{{What: "VPS HEAD", Value: fmt.Sprintf("%s (intended %s)", head, want)}}, nil
}
