package evidence

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Merge joins shards (one run split by label filter over several machines
// or Ginkgo processes) into one run. The shards must have tested the same
// thing: same schema, profile, time scale, harness revision and file hashes.
// Rows are unioned; a row id in two shards is an error unless both copies
// are identical. The control, the canary and each gate step may come from
// one shard only (identical copies are accepted). Images are unioned, the
// span is min start..max end, the verdict is recomputed and each input is
// listed under Shards. The inputs are not modified.
//
// The merged plan is the union of the shards' plans, in first-seen order. Every shard of
// one run records the same, whole plan; a shard whose plan lacks an item another shard
// planned (or that recorded none) is a run problem naming it. The verdict then compares
// the union with the merged evidence: a merge missing a shard is INCOMPLETE, naming the
// rows (and windows, steps) only that shard would have run.
func Merge(runs ...*Run) (*Run, error) {
	if len(runs) == 0 {
		return nil, errors.New("merge: no evidence files given")
	}
	name := func(i int) string { return fmt.Sprintf("shard %d (run %s)", i+1, runs[i].RunID) }
	first := runs[0]
	for i, r := range runs {
		if r == nil {
			return nil, fmt.Errorf("merge: shard %d is nil", i+1)
		}
		if r.Schema != SchemaVersion {
			return nil, fmt.Errorf("merge: %s has schema %q, want %q: re-render it with the matching pbreport", name(i), r.Schema, SchemaVersion)
		}
	}
	for i, r := range runs[1:] {
		i++
		if r.Profile != first.Profile {
			return nil, fmt.Errorf("merge: %s ran profile %q but %s ran %q: merge only shards of one profile", name(0), first.Profile, name(i), r.Profile)
		}
		if r.TimeScale.ForScale != first.TimeScale.ForScale {
			return nil, fmt.Errorf("merge: %s used time scale %g but %s used %g: shards must share one profile configuration", name(0), first.TimeScale.ForScale, name(i), r.TimeScale.ForScale)
		}
		if r.Provenance.HarnessRevision != first.Provenance.HarnessRevision {
			return nil, fmt.Errorf("merge: %s ran harness revision %q but %s ran %q: run every shard from the same commit", name(0), first.Provenance.HarnessRevision, name(i), r.Provenance.HarnessRevision)
		}
		if err := sameFiles(first.Provenance.Files, r.Provenance.Files, name(0), name(i)); err != nil {
			return nil, err
		}
	}

	out := &Run{
		Schema:    SchemaVersion,
		Profile:   first.Profile,
		TimeScale: first.TimeScale,
		Started:   first.Started,
		Ended:     first.Ended,
		Complete:  true,
		Rows:      []Row{},
	}
	cloned := make([]*Run, len(runs))
	for i, r := range runs {
		c, err := Clone(r)
		if err != nil {
			return nil, err
		}
		cloned[i] = c
	}
	var ids, gos, dockers, hosts []string
	rowFrom := map[string]int{}
	gateFrom := map[int]int{}
	controlFrom, canaryFrom := -1, -1
	for i, r := range cloned {
		ids = append(ids, r.RunID)
		gos = appendUniq(gos, r.Provenance.GoVersion)
		dockers = appendUniq(dockers, r.Provenance.DockerVersion)
		hosts = appendUniq(hosts, r.Provenance.Host)
		if r.Started.Before(out.Started) {
			out.Started = r.Started
		}
		if r.Ended.After(out.Ended) {
			out.Ended = r.Ended
		}
		out.Complete = out.Complete && r.Complete
		if r.Interrupted {
			out.Interrupted = true
			out.InterruptReason = joinNonEmpty(out.InterruptReason, name(i)+": "+r.InterruptReason)
		}
		for _, p := range r.Problems {
			out.Problems = append(out.Problems, name(i)+": "+p)
		}
		out.Restorations = append(out.Restorations, r.Restorations...)
		if out.Dataset == nil && r.Dataset != nil {
			d := *r.Dataset // every shard seeds the same size; the first one's numbers stand
			out.Dataset = &d
		}
		for _, img := range r.Provenance.Images {
			if !slices.Contains(out.Provenance.Images, img) {
				out.Provenance.Images = append(out.Provenance.Images, img)
			}
		}
		for _, b := range r.Baseline {
			if !slices.Contains(out.Baseline, b) {
				out.Baseline = append(out.Baseline, b)
			}
		}
		shard := Shard{RunID: r.RunID, LabelFilter: r.Provenance.LabelFilter, Host: r.Provenance.Host,
			Started: r.Started, Ended: r.Ended, Complete: r.Complete}
		for _, row := range r.Rows {
			shard.Rows = append(shard.Rows, row.ID)
			if j, dup := rowFrom[row.ID]; dup {
				k := slices.IndexFunc(out.Rows, func(x Row) bool { return x.ID == row.ID })
				if !reflect.DeepEqual(out.Rows[k], row) {
					return nil, fmt.Errorf("merge: row %q is in both %s and %s with different results: run each row in one shard only (check the --label-filter of each shard) or leave one file out", row.ID, name(j), name(i))
				}
				continue
			}
			rowFrom[row.ID] = i
			out.Rows = append(out.Rows, row)
		}
		for _, g := range r.Gate {
			if j, dup := gateFrom[g.Step]; dup {
				k := slices.IndexFunc(out.Gate, func(x GateStep) bool { return x.Step == g.Step })
				if out.Gate[k] != g {
					return nil, fmt.Errorf("merge: release-gate step %d is in both %s and %s with different results: run the gate in one shard only", g.Step, name(j), name(i))
				}
				continue
			}
			gateFrom[g.Step] = i
			out.Gate = append(out.Gate, g)
		}
		var err error
		if out.Control, controlFrom, err = mergeWindow("control", out.Control, controlFrom, r.Control, i, name); err != nil {
			return nil, err
		}
		if out.Canary, canaryFrom, err = mergeWindow("canary", out.Canary, canaryFrom, r.Canary, i, name); err != nil {
			return nil, err
		}
		out.Shards = append(out.Shards, shard)
		for _, it := range r.Plan {
			if !slices.ContainsFunc(out.Plan, func(x PlannedItem) bool { return x.Kind == it.Kind && x.ID == it.ID }) {
				out.Plan = append(out.Plan, it)
			}
		}
	}
	out.Problems = append(out.Problems, planMismatches(cloned, out.Plan, name)...)
	slices.SortStableFunc(out.Gate, func(a, b GateStep) int { return a.Step - b.Step })
	out.RunID = strings.Join(ids, "+")
	out.Provenance.HarnessRevision = first.Provenance.HarnessRevision
	out.Provenance.Files = slices.Clone(first.Provenance.Files)
	out.Provenance.GoVersion = strings.Join(gos, ", ")
	out.Provenance.DockerVersion = strings.Join(dockers, ", ")
	out.Provenance.Host = strings.Join(hosts, ", ")
	for _, r := range cloned {
		out.Provenance.HarnessDirty = out.Provenance.HarnessDirty || r.Provenance.HarnessDirty
	}
	if out.Interrupted {
		out.Complete = false
	}
	out.Verdict = ComputeVerdict(out)
	return out, nil
}

// planMismatches names, per shard, the items of the union that shard did not plan.
func planMismatches(runs []*Run, union []PlannedItem, name func(int) string) []string {
	if len(union) == 0 {
		return nil
	}
	var out []string
	for i, r := range runs {
		if len(r.Plan) == 0 {
			out = append(out, fmt.Sprintf("merge: %s recorded no plan while another shard did: shards of one run record the same plan (re-run it with this harness)", name(i)))
			continue
		}
		var lacks []string
		for _, it := range union {
			if !slices.ContainsFunc(r.Plan, func(x PlannedItem) bool { return x.Kind == it.Kind && x.ID == it.ID }) {
				lacks = append(lacks, it.Label())
			}
		}
		if len(lacks) > 0 {
			out = append(out, fmt.Sprintf("merge: the shards' plans differ: %s did not plan %s, which another shard planned (run every shard with the same matrix and release-gate files)", name(i), strings.Join(lacks, ", ")))
		}
	}
	return out
}

func mergeWindow(what string, have *Window, haveFrom int, next *Window, i int, name func(int) string) (*Window, int, error) {
	switch {
	case next == nil:
		return have, haveFrom, nil
	case have == nil:
		return next, i, nil
	case reflect.DeepEqual(have, next):
		return have, haveFrom, nil
	}
	return nil, 0, fmt.Errorf("merge: the %s window is in both %s and %s: record it in one shard only", what, name(haveFrom), name(i))
}

func sameFiles(a, b []FileHash, an, bn string) error {
	am := map[string]string{}
	for _, f := range a {
		am[f.Path] = f.SHA256
	}
	bm := map[string]string{}
	for _, f := range b {
		bm[f.Path] = f.SHA256
		if h, ok := am[f.Path]; !ok {
			return fmt.Errorf("merge: %s hashed %s but %s did not: shards must use the same matrix and rule files", bn, f.Path, an)
		} else if h != f.SHA256 {
			return fmt.Errorf("merge: %s differs between shards (%s: sha256 %.12s…, %s: sha256 %.12s…): run every shard with the same matrix and rule files", f.Path, an, h, bn, f.SHA256)
		}
	}
	for p := range am {
		if _, ok := bm[p]; !ok {
			return fmt.Errorf("merge: %s hashed %s but %s did not: shards must use the same matrix and rule files", an, p, bn)
		}
	}
	return nil
}

func appendUniq(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
