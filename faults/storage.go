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

// dd stops at ENOSPC (its non-zero exit is the point); Acted then checks that it did.
func (s *storage) Inject(ctx context.Context, e *env.Environment) error {
	_, err := s.run(ctx, e, `for p in $1; do dd if=/dev/zero of=$p/`+fillerName+` bs=4096 2>/dev/null; done; sync; true`)
	return err
}

func (s *storage) Heal(ctx context.Context, e *env.Environment) error {
	_, err := s.run(ctx, e, `for p in $1; do rm -f $p/`+fillerName+`; done; sync`)
	return err
}

// look prints each volume's df line and whether a one-byte test write succeeded; it
// exits 0 when every volume is as the fault wants it (full: no free space and the write
// fails; healed: no filler and the write succeeds), 3 otherwise.
func (s *storage) look(ctx context.Context, e *env.Environment, full bool) ([]Proof, error) {
	want := "full"
	if !full {
		want = "healed"
	}
	script := `bad=0; for p in $1; do
  free=$(df -k $p | tail -n 1 | awk '{print $4}')
  if printf x > $p/.pb-chaos-probe 2>/dev/null; then w="test write succeeded"; ok=1; else w="test write failed"; ok=0; fi
  rm -f $p/.pb-chaos-probe
  [ -e $p/` + fillerName + ` ] && filler=present || filler=absent
  echo "$p: ${free} KiB free, $w, filler $filler"
  if [ "$WANT" = full ]; then [ "$free" = 0 ] && [ $ok = 0 ] || bad=1
  else [ $ok = 1 ] && [ $filler = absent ] || bad=1; fi
done; exit $((bad * 3))`
	out, err := s.run(ctx, e, "WANT="+want+"; "+script)
	if out == "" && err != nil {
		out = err.Error()
	}
	ps := []Proof{{What: "volumes " + s.spec.Target, Value: strings.TrimSpace(out)}}
	if err != nil {
		if full {
			return ps, fmt.Errorf("volumes %s are not full (no free space and a failing test write): %s", s.spec.Target, strings.TrimSpace(out))
		}
		return ps, fmt.Errorf("volumes %s are not writable again: %s", s.spec.Target, strings.TrimSpace(out))
	}
	return ps, nil
}

// Acted: every volume reports 0 KiB free and a one-byte write there fails (ENOSPC).
func (s *storage) Acted(ctx context.Context, e *env.Environment) ([]Proof, error) {
	return s.look(ctx, e, true)
}

// Healed: the filler is gone and a one-byte write succeeds on every volume.
func (s *storage) Healed(ctx context.Context, e *env.Environment) ([]Proof, error) {
	return s.look(ctx, e, false)
}
