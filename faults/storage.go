package faults

import (
	"context"
	"fmt"
	"strings"

	"github.com/pocketbrain/chaos/harness/env"
)

// storage faults fill the clients' data volumes (size-limited tmpfs) to the last byte, so
// the next write in the fleet meets a real ENOSPC, and keep them full; Heal stops the
// filling and deletes the filler.
type storage struct {
	spec    Spec
	volumes []string // "primary", "fallback"
	// filling tops the filler up while the fault is in place (Inject to Heal).
	filling *env.Utility
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

// command is sh running script with the volumes' mount paths as $1.
func (s *storage) command(e *env.Environment, script string) ([]string, map[string]string, error) {
	m, paths, err := s.mounts(e)
	if err != nil {
		return nil, nil, err
	}
	return []string{"sh", "-c", script, "fill", strings.Join(paths, " ")}, m, nil
}

func (s *storage) run(ctx context.Context, e *env.Environment, script string) (string, error) {
	cmd, m, err := s.command(e, script)
	if err != nil {
		return "", err
	}
	out, err := e.RunUtility(ctx, cmd, m)
	if err != nil {
		return "", err
	}
	if out.Code != 0 {
		return out.Log, fmt.Errorf("storage fault %s: utility exited %d: %s", s.spec.Action, out.Code, out.Log)
	}
	return out.Log, nil
}

// fillScript appends to the filler until ENOSPC (dd's non-zero exit is the point), and
// again every 200 ms: the clients free space while the disk is full (a sync queue that
// drains after an outage deletes what it held; seen in CI: "20 KiB free" after a single
// fill), and a full disk stays full until someone frees it. Acted checks that it is.
const fillScript = `trap 'exit 0' TERM INT
while :; do
  for p in $1; do dd if=/dev/zero of=$p/` + fillerName + ` bs=4096 oflag=append conv=notrunc 2>/dev/null; done
  sync; sleep 0.2 & wait $!
done`

func (s *storage) Inject(ctx context.Context, e *env.Environment) error {
	cmd, m, err := s.command(e, fillScript)
	if err != nil {
		return err
	}
	s.filling, err = e.StartUtility(ctx, cmd, m)
	return err
}

func (s *storage) Heal(ctx context.Context, e *env.Environment) error {
	if s.filling != nil {
		if err := s.filling.Stop(ctx); err != nil {
			return fmt.Errorf("storage fault: stop filling: %w", err)
		}
		s.filling = nil
	}
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
