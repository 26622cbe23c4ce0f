package faults

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/moby/moby/client"

	"github.com/pocketbrain/chaos/harness/env"
)

// config faults restart a service with changed environment variables (or another
// image), the way a bad deploy reaches production; Heal restores what ran before.
//
// Values may name a secret of the environment as ${secret:NAME}, where NAME is one of
// secretRefs, so rows can rotate keys without any secret in the matrix file.
type config struct {
	spec     Spec
	role     env.Role
	previous env.Change
}

// Unset, as a value, removes a variable.
const Unset = "<unset>"

var secretRefs = map[string]func(env.Secrets) string{
	"KEY_ENCRYPTION_SECRET":     func(s env.Secrets) string { return s.KeyEncryptionSecret },
	"KEY_ENCRYPTION_SECRET_ALT": func(s env.Secrets) string { return s.KeyEncryptionSecretAlt },
	"CLERK_SECRET_KEY":          func(s env.Secrets) string { return s.ClerkSecretKey },
	"CLERK_PUBLISHABLE_KEY":     func(s env.Secrets) string { return s.ClerkPublishableKey },
	"STREAM_TICKET_SECRET":      func(s env.Secrets) string { return s.StreamTicketSecret },
}

func init() {
	kinds["config"] = func(s Spec) (Fault, error) {
		if err := oneOf("config", s.Action, "set_env", "deploy_image"); err != nil {
			return nil, err
		}
		r, err := needRole(s, env.Server, env.Worker, env.Clients, env.Provider)
		if err != nil {
			return nil, err
		}
		if len(s.Params) == 0 {
			return nil, fmt.Errorf("config fault on %s: no parameters; give the variables to change (or image=… for deploy_image)", s.Target)
		}
		for k, v := range s.Params {
			if _, err := resolve(v, env.Secrets{}); err != nil {
				return nil, fmt.Errorf("config fault on %s, %s: %w", s.Target, k, err)
			}
		}
		if s.Action == "deploy_image" && s.Params["image"] == "" {
			return nil, fmt.Errorf("config fault deploy_image on %s: parameter image is required", s.Target)
		}
		return &config{spec: s, role: r}, nil
	}
}

func resolve(v string, s env.Secrets) (string, error) {
	if v == Unset {
		return "", nil
	}
	for {
		i := strings.Index(v, "${secret:")
		if i < 0 {
			return v, nil
		}
		j := strings.Index(v[i:], "}")
		if j < 0 {
			return "", fmt.Errorf("unterminated ${secret:…} in value")
		}
		name := v[i+len("${secret:") : i+j]
		get, ok := secretRefs[name]
		if !ok {
			var names []string
			for n := range secretRefs {
				names = append(names, n)
			}
			sort.Strings(names)
			return "", fmt.Errorf("unknown secret %q; use one of %s", name, strings.Join(names, ", "))
		}
		v = v[:i] + get(s) + v[i+j+1:]
	}
}

// ImageLookup finds a local image by reference and returns its id, as env.Docker's
// ImageID does; an error means the engine does not have it (or could not say).
type ImageLookup func(ctx context.Context, ref string) (string, error)

// DeployImage is the image a deploy_image spec deploys, "" for any other spec.
func DeployImage(s Spec) string {
	if s.Kind != "config" || s.Action != "deploy_image" {
		return ""
	}
	return s.Params["image"]
}

// CheckLocalImage fails unless the local engine has ref. A deployed image is never
// pulled (there is no registry), so a missing one would only fail after the running
// container was already stopped; the error names the image and the fix.
func CheckLocalImage(ctx context.Context, lookup ImageLookup, role env.Role, ref string) error {
	if _, err := lookup(ctx, ref); err != nil {
		return fmt.Errorf("deploy_image on %s: image %q is not in the local Docker engine (%v); images are never pulled: build it with `make images`, or `docker tag` an image you have as %s (PB_IMAGE_%s sets the image the %s boots with, not this one)",
			role, ref, err, ref, strings.ToUpper(string(role)), role)
	}
	return nil
}

func (c *config) Spec() Spec          { return c.spec }
func (c *config) Changes() []env.Role { return []env.Role{c.role} }

func (c *config) Inject(ctx context.Context, e *env.Environment) error {
	// Before the running container is stopped: a deploy of a missing image must leave
	// the role as it was.
	if ref := DeployImage(c.spec); ref != "" {
		if d := e.Docker(); d != nil {
			if err := CheckLocalImage(ctx, d.ImageID, c.role, ref); err != nil {
				return err
			}
		}
	}
	cur := e.CurrentEnv(c.role)
	ch := env.Change{Env: env.Settings{}}
	c.previous = env.Change{Env: env.Settings{}, Image: e.CurrentImage(c.role)}
	for k, v := range c.spec.Params {
		if c.spec.Action == "deploy_image" && k == "image" {
			ch.Image = v
			continue
		}
		val, err := resolve(v, e.Secrets)
		if err != nil {
			return err
		}
		ch.Env[k] = val
		c.previous.Env[k] = cur[k]
	}
	return e.Replace(ctx, c.role, ch)
}

func (c *config) Heal(ctx context.Context, e *env.Environment) error {
	if c.previous.Env == nil {
		return nil // never injected
	}
	if c.unchanged(ctx, e) {
		// A rollback already runs what ran before (clients:previous is clients:dev's
		// image): a restart would change nothing but start a full resync of the fleet.
		return nil
	}
	return e.Replace(ctx, c.role, env.Change{Env: maps.Clone(c.previous.Env), Image: c.previous.Image})
}

// unchanged reports whether the role already runs with the variables and the image id
// that Heal would restore.
func (c *config) unchanged(ctx context.Context, e *env.Environment) bool {
	if e.Docker() == nil {
		return false
	}
	cur := e.CurrentEnv(c.role)
	for k, v := range c.previous.Env {
		if cur[k] != v {
			return false
		}
	}
	if c.previous.Image == "" {
		return true
	}
	want, err1 := e.Docker().ImageID(ctx, c.previous.Image)
	have, err2 := e.Docker().ImageID(ctx, e.CurrentImage(c.role))
	return err1 == nil && err2 == nil && want == have
}

// running inspects the role's container as Docker runs it: its environment, the image
// reference it was created from and that image's id.
func (c *config) running(ctx context.Context, e *env.Environment) (vars map[string]string, ref, id string, err error) {
	ctr, err := e.Container(c.role)
	if err != nil {
		return nil, "", "", err
	}
	st, err := e.Docker().Client().ContainerInspect(ctx, ctr.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		return nil, "", "", fmt.Errorf("inspect %s: %w", c.role, err)
	}
	if !st.Container.State.Running {
		return nil, "", "", fmt.Errorf("container %s is not running (%s)", c.role, st.Container.State.Status)
	}
	vars = map[string]string{}
	for _, kv := range st.Container.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return vars, st.Container.Config.Image, st.Container.Image, nil
}

// matches compares the running container with the variables and image it should run
// with (want[k] "" = unset), never showing a value: they may be secrets.
func (c *config) matches(ctx context.Context, e *env.Environment, want map[string]string, image string) ([]Proof, error) {
	vars, ref, id, err := c.running(ctx, e)
	if err != nil {
		return []Proof{{What: "container " + string(c.role), Value: err.Error()}}, err
	}
	var keys, wrong []string
	for k, v := range want {
		state := "set"
		if vars[k] == "" {
			state = "unset"
		}
		keys = append(keys, k+" "+state)
		if vars[k] != v {
			if v == "" {
				wrong = append(wrong, k+" should be unset")
			} else {
				wrong = append(wrong, k+" does not have the value asked for")
			}
		}
	}
	sort.Strings(keys)
	sort.Strings(wrong)
	ps := []Proof{{What: string(c.role) + " container image", Value: ref + " (" + shortID(id) + ")"}}
	if len(keys) > 0 {
		ps = append(ps, Proof{What: string(c.role) + " container variables", Value: strings.Join(keys, ", ")})
	}
	if image != "" {
		wantID, err := e.Docker().ImageID(ctx, image)
		if err != nil {
			return ps, err
		}
		if ref != image || id != wantID {
			wrong = append(wrong, fmt.Sprintf("image is %s (%s), not %s (%s)", ref, shortID(id), image, shortID(wantID)))
		}
	}
	if len(wrong) > 0 {
		return ps, fmt.Errorf("the %s container Docker runs: %s", c.role, strings.Join(wrong, "; "))
	}
	return ps, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Acted: Docker runs the role's container with the variables and image the fault asked for.
func (c *config) Acted(ctx context.Context, e *env.Environment) ([]Proof, error) {
	want := map[string]string{}
	for k, v := range c.spec.Params {
		if c.spec.Action == "deploy_image" && k == "image" {
			continue
		}
		val, err := resolve(v, e.Secrets)
		if err != nil {
			return nil, err
		}
		want[k] = val
	}
	return c.matches(ctx, e, want, DeployImage(c.spec))
}

// Healed: Docker runs the role's container with what ran before the fault.
func (c *config) Healed(ctx context.Context, e *env.Environment) ([]Proof, error) {
	return c.matches(ctx, e, c.previous.Env, c.previous.Image)
}

// Supersede hands the undoing of old over to applied when applied replaced the same
// role's configuration after old did (a rollback or a config fix over a bad deploy):
// applied's heal then restores what ran before old, and old needs no heal of its own.
// It reports whether it did; any other pair is left alone.
func Supersede(applied, old Fault) bool {
	a, ok1 := applied.(*config)
	o, ok2 := old.(*config)
	if !ok1 || !ok2 || a == o || a.role != o.role || o.previous.Env == nil || a.previous.Env == nil {
		return false
	}
	before := maps.Clone(a.previous.Env)
	maps.Copy(before, o.previous.Env)
	a.previous.Env = before
	if o.previous.Image != "" {
		a.previous.Image = o.previous.Image
	}
	return true
}
