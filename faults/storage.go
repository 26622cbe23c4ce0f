package faults

import (
	"context"
	"fmt"
	"strings"

	"github.com/pocketbrain/chaos/harness/env"
)

// storage faults fill the clients' data volumes (size-limited tmpfs) to the last byte, so
// the next write in the fleet meets a real ENOSPC; Heal deletes the filler.
type storage struct {
	spec    Spec
	volumes []string // "primary", "fallback"
}

const fillerName = ".pb-chaos-fill"

func init() {
	kinds["storage"] = func(s Spec) (Fault, error) {
		if err := oneOf("storage", s.Action, "fill"); err != nil {
			return nil, err
		}
		var vols []string
		for _, v := range strings.Split(s.Target, ",") {
			v = strings.TrimSpace(v)
			if v != "primary" && v != "fallback" {
				return nil, fmt.Errorf("storage fault: unknown volume %q in target %q; use primary, fallback or primary,fallback", v, s.Target)
			}
			vols = append(vols, v)
		}
		return &storage{spec: s, volumes: vols}, nil
	}
}

func (s *storage) Spec() Spec          { return s.spec }
func (s *storage) Changes() []env.Role { return nil }

func (s *storage) mounts(e *env.Environment) (map[string]string, []string, error) {
	m := map[string]string{}
	var paths []string
	for _, v := range s.volumes {
		name, err := e.Volume(v)
		if err != nil {
			return nil, nil, err
		}
		m[name] = "/mnt/" + v
		paths = append(paths, "/mnt/"+v)
	}
	return m, paths, nil
}

func (s *storage) run(ctx context.Context, e *env.Environment, script string) (string, error) {
	m, paths, err := s.mounts(e)
	if err != nil {
		return "", err
	}
	out, err := e.RunUtility(ctx, []string{"sh", "-c", script, "fill", strings.Join(paths, " ")}, m)
	if err != nil {
		return "", err
	}
	if out.Code != 0 {
		return out.Log, fmt.Errorf("storage fault %s: utility exited %d: %s", s.spec.Action, out.Code, out.Log)
	}
	return out.Log, nil
}

// dd stops at ENOSPC (its non-zero exit is the point); df then shows the volume at 100%.
func (s *storage) Inject(ctx context.Context, e *env.Environment) error {
	_, err := s.run(ctx, e, `for p in $1; do dd if=/dev/zero of=$p/`+fillerName+` bs=4096 2>/dev/null; done; sync; true`)
	return err
}

func (s *storage) Heal(ctx context.Context, e *env.Environment) error {
	_, err := s.run(ctx, e, `for p in $1; do rm -f $p/`+fillerName+`; done; sync`)
	return err
}

func (s *storage) Proof(ctx context.Context, e *env.Environment) []Proof {
	out, err := s.run(ctx, e, `for p in $1; do df -k $p | tail -n 1 | awk -v p=$p '{print p": "$3" KiB used, "$4" KiB free ("$5")"}'; done`)
	if err != nil {
		return []Proof{{What: "volumes " + s.spec.Target, Value: "df failed: " + err.Error()}}
	}
	return []Proof{{What: "volumes " + s.spec.Target, Value: strings.TrimSpace(out)}}
}
