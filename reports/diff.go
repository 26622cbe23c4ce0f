package reports

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pocketbrain/chaos/harness/evidence"
)

// Band is the noise band of a time comparison: a detect, fire or recover time
// moved when it changed by more than Abs and by more than Rel of the old time
// (the larger of the two bands wins). The zero Band reports every change.
type Band struct {
	Abs time.Duration
	Rel float64 // 0.2 = 20 % of the old time
}

// DefaultBand is pbreport diff's default: 2 s or 20 %, whichever is larger.
var DefaultBand = Band{Abs: 2 * time.Second, Rel: 0.2}

// Allowed is the change a time of old can make and still be noise.
func (b Band) Allowed(old time.Duration) time.Duration {
	return max(b.Abs, time.Duration(b.Rel*float64(old.Abs())))
}

// String states the band in words, as the diff prints it.
func (b Band) String() string {
	switch {
	case b.Abs <= 0 && b.Rel <= 0:
		return "none: every change is listed"
	case b.Rel <= 0:
		return "±" + fmtDuration(b.Abs)
	case b.Abs <= 0:
		return "±" + fmtNum(b.Rel*100) + " % of the old time"
	}
	return "±" + fmtDuration(b.Abs) + " or ±" + fmtNum(b.Rel*100) + " % of the old time, whichever is larger"
}

// RunDiff is what changed between two runs' evidence, as Compare finds it.
type RunDiff struct {
	Old, New DiffSide
	Band     Band

	// VerdictChanged: the decisions differ.
	VerdictChanged bool
	// Verdict reasons (run problems among them) and failed specs (read from
	// the restorations: one follows every failed spec) present in one run only.
	ReasonsGone, ReasonsNew []string
	SpecsGone, SpecsNew     []string

	// Statuses lists the rows (and control, canary and gate steps) whose status
	// differs, present in one run only included.
	Statuses []StatusChange
	// RowsCompared counts the rows present in both runs.
	RowsCompared int
	// Times lists the times that moved beyond the band or were reached in one
	// run only (rows present in both).
	Times []TimeChange
	// Triggers lists, per row (and control, canary window), the rollback
	// triggers that fired in one run and not in the other.
	Triggers []TriggerChange
	// Files are the provenance file hashes that differ, compared by path;
	// FilesSame counts those with the same hash in both.
	Files     []HashChange
	FilesSame int
	// Images are the images whose reference or ID differ, compared by role.
	Images []HashChange
}

// DiffSide names one of the two runs.
type DiffSide struct {
	Name        string // the file, as given
	RunID       string
	Revision    string
	Dirty       bool
	LabelFilter string
	Profile     string
	Started     time.Time
	Rows        int
	Verdict     evidence.Verdict // recomputed from the evidence, as the reports do
}

// StatusChange is one row (or window, or gate step) whose status differs; an
// empty status means absent from that run.
type StatusChange struct {
	What     string
	Old, New string
}

// TimeChange is one moved time. A nil side was not reached.
type TimeChange struct {
	Row      string
	Moment   string // detect, fire, recover
	Old, New *time.Duration
}

// TriggerChange is, for one row or window, the triggers that fired in only one run.
type TriggerChange struct {
	What     string
	Vanished []string // fired in the old run, not in the new
	Appeared []string // fired in the new run, not in the old
}

// HashChange is one file (or image role) whose hash differs; empty means absent.
type HashChange struct {
	Key      string
	Old, New string
}

// Compare finds what changed from old to new. Names label the runs in the output.
func Compare(oldName string, old *evidence.Run, newName string, new *evidence.Run, band Band) *RunDiff {
	d := &RunDiff{Old: sideOf(oldName, old), New: sideOf(newName, new), Band: band}
	d.VerdictChanged = d.Old.Verdict.Decision != d.New.Verdict.Decision
	d.ReasonsGone, d.ReasonsNew = onlyIn(d.Old.Verdict.Reasons, d.New.Verdict.Reasons)
	d.SpecsGone, d.SpecsNew = onlyIn(failedSpecs(old), failedSpecs(new))

	oldRows := map[string]*evidence.Row{}
	for i := range old.Rows {
		oldRows[old.Rows[i].ID] = &old.Rows[i]
	}
	newRows := map[string]bool{}
	for i := range new.Rows {
		nr := &new.Rows[i]
		newRows[nr.ID] = true
		or, ok := oldRows[nr.ID]
		if !ok {
			d.Statuses = append(d.Statuses, StatusChange{What: rowName(nr), New: string(nr.Status)})
			continue
		}
		d.RowsCompared++
		if or.Status != nr.Status {
			d.Statuses = append(d.Statuses, StatusChange{What: rowName(nr), Old: string(or.Status), New: string(nr.Status)})
		}
		for _, m := range []struct {
			name     string
			old, new *evidence.Duration
		}{{"detect", or.Times.Detect, nr.Times.Detect}, {"fire", or.Times.Fire, nr.Times.Fire}, {"recover", or.Times.Recover, nr.Times.Recover}} {
			if tc, moved := compareTime(nr.ID, m.name, m.old, m.new, band); moved {
				d.Times = append(d.Times, tc)
			}
		}
		if tc, ok := triggerChange(rowName(nr), firedTriggers(or), firedTriggers(nr)); ok {
			d.Triggers = append(d.Triggers, tc)
		}
	}
	for i := range old.Rows {
		if or := &old.Rows[i]; !newRows[or.ID] {
			d.Statuses = append(d.Statuses, StatusChange{What: rowName(or), Old: string(or.Status)})
		}
	}

	for _, w := range []struct {
		name     string
		old, new *evidence.Window
	}{{"control window", old.Control, new.Control}, {"canary window", old.Canary, new.Canary}} {
		if ow, nw := windowStatus(w.old), windowStatus(w.new); ow != nw {
			d.Statuses = append(d.Statuses, StatusChange{What: w.name, Old: ow, New: nw})
		}
		if w.old != nil && w.new != nil {
			if tc, ok := triggerChange(w.name, windowFired(w.old), windowFired(w.new)); ok {
				d.Triggers = append(d.Triggers, tc)
			}
		}
	}
	d.Statuses = append(d.Statuses, gateChanges(old.Gate, new.Gate)...)

	var oldFiles, newFiles, oldImages, newImages []keyHash
	for _, f := range old.Provenance.Files {
		oldFiles = append(oldFiles, keyHash{f.Path, f.SHA256})
	}
	for _, f := range new.Provenance.Files {
		newFiles = append(newFiles, keyHash{f.Path, f.SHA256})
	}
	for _, im := range old.Provenance.Images {
		oldImages = append(oldImages, keyHash{im.Role, im.Ref + " " + im.ID})
	}
	for _, im := range new.Provenance.Images {
		newImages = append(newImages, keyHash{im.Role, im.Ref + " " + im.ID})
	}
	d.Files, d.FilesSame = hashChanges(oldFiles, newFiles)
	d.Images, _ = hashChanges(oldImages, newImages)
	return d
}

func sideOf(name string, run *evidence.Run) DiffSide {
	return DiffSide{
		Name: name, RunID: run.RunID, Revision: run.Provenance.HarnessRevision, Dirty: run.Provenance.HarnessDirty,
		LabelFilter: run.Provenance.LabelFilter, Profile: run.Profile, Started: run.Started, Rows: len(run.Rows),
		Verdict: evidence.ComputeVerdict(run),
	}
}

func rowName(r *evidence.Row) string {
	if r.Name == "" {
		return r.ID
	}
	return r.ID + " (" + r.Name + ")"
}

// onlyIn returns the entries of a missing from b, and of b missing from a, in order.
func onlyIn(a, b []string) (gone, added []string) {
	for _, s := range a {
		if !slices.Contains(b, s) && !slices.Contains(gone, s) {
			gone = append(gone, s)
		}
	}
	for _, s := range b {
		if !slices.Contains(a, s) && !slices.Contains(added, s) {
			added = append(added, s)
		}
	}
	return gone, added
}

func failedSpecs(run *evidence.Run) []string {
	var out []string
	for _, r := range run.Restorations {
		out = append(out, r.Spec)
	}
	return out
}

func compareTime(row, moment string, old, new *evidence.Duration, band Band) (TimeChange, bool) {
	tc := TimeChange{Row: row, Moment: moment}
	if old != nil {
		tc.Old = &old.Duration
	}
	if new != nil {
		tc.New = &new.Duration
	}
	switch {
	case old == nil && new == nil:
		return tc, false
	case old == nil || new == nil:
		return tc, true
	}
	return tc, (new.Duration - old.Duration).Abs() > band.Allowed(old.Duration)
}

// alertName reads the alert of a trigger series: `ALERTS{alertname="X",…}`, else
// its name up to a parenthesised legend ("X (0 quiet, 0.5 pending, 1 firing)").
var alertNameRE = regexp.MustCompile(`alertname\s*=\s*"([^"]+)"`)

func alertName(s evidence.Series) string {
	if m := alertNameRE.FindStringSubmatch(s.Expr); m != nil {
		return m[1]
	}
	name, _, _ := strings.Cut(s.Name, " (")
	return strings.TrimSpace(name)
}

// firedTriggers are the alerts a row's timeline shows firing (a trigger series
// reaching 1; 0.5 is pending). A row without trigger series but with a fire
// time fired all of its triggers: the fire time is when they all were firing.
func firedTriggers(r *evidence.Row) []string {
	var fired []string
	traced := false
	if r.Timeline != nil {
		for _, s := range r.Timeline.Series {
			if s.Kind != evidence.KindTrigger {
				continue
			}
			traced = true
			if slices.ContainsFunc(s.Points, func(p evidence.Point) bool { return p.V >= 1 }) {
				if a := alertName(s); !slices.Contains(fired, a) {
					fired = append(fired, a)
				}
			}
		}
	}
	if !traced && r.Times.Fire != nil {
		fired = slices.Clone(r.Triggers)
	}
	return fired
}

func windowFired(w *evidence.Window) []string {
	var fired []string
	for _, t := range w.Triggers {
		if t.EverFired {
			fired = append(fired, t.Alert)
		}
	}
	return fired
}

func triggerChange(what string, old, new []string) (TriggerChange, bool) {
	gone, added := onlyIn(old, new)
	return TriggerChange{What: what, Vanished: gone, Appeared: added}, len(gone)+len(added) > 0
}

func windowStatus(w *evidence.Window) string {
	switch {
	case w == nil:
		return ""
	case w.Pass:
		return string(evidence.StatusPassed)
	}
	return string(evidence.StatusFailed)
}

func gateChanges(old, new []evidence.GateStep) []StatusChange {
	name := func(g evidence.GateStep) string { return fmt.Sprintf("gate step %d (%s)", g.Step, g.Name) }
	var out []StatusChange
	olds := map[int]evidence.GateStep{}
	for _, g := range old {
		olds[g.Step] = g
	}
	seen := map[int]bool{}
	for _, g := range new {
		seen[g.Step] = true
		o, ok := olds[g.Step]
		switch {
		case !ok:
			out = append(out, StatusChange{What: name(g), New: g.Result})
		case o.Result != g.Result:
			out = append(out, StatusChange{What: name(g), Old: o.Result, New: g.Result})
		}
	}
	for _, g := range old {
		if !seen[g.Step] {
			out = append(out, StatusChange{What: name(g), Old: g.Result})
		}
	}
	return out
}

type keyHash struct{ key, hash string }

// hashChanges compares two key → hash lists: the keys whose hash differs or
// that one side lacks (in the new side's order, then the old side's), and how
// many keys agree.
func hashChanges(old, new []keyHash) ([]HashChange, int) {
	olds, news := map[string]string{}, map[string]string{}
	seen := map[string]bool{}
	var keys []string
	for _, side := range []struct {
		list []keyHash
		m    map[string]string
	}{{new, news}, {old, olds}} {
		for _, kh := range side.list {
			side.m[kh.key] = kh.hash
			if !seen[kh.key] {
				seen[kh.key] = true
				keys = append(keys, kh.key)
			}
		}
	}
	var out []HashChange
	same := 0
	for _, k := range keys {
		if o, n := olds[k], news[k]; o != n {
			out = append(out, HashChange{Key: k, Old: o, New: n})
		} else {
			same++
		}
	}
	return out, same
}

// RenderDiff writes d as Markdown.
func RenderDiff(w io.Writer, d *RunDiff) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	list := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		p("%s\n\n", title)
		for _, s := range items {
			p("- %s\n", mdText(s))
		}
		p("\n")
	}

	p("# PocketBrain chaos evidence diff\n\n")
	p("| | old | new |\n| --- | --- | --- |\n")
	p("| File | %s | %s |\n", mdCodeCell(d.Old.Name), mdCodeCell(d.New.Name))
	p("| Run | %s | %s |\n", mdCell(d.Old.RunID), mdCell(d.New.RunID))
	p("| Harness revision | %s | %s |\n", revision(d.Old), revision(d.New))
	p("| Profile | %s | %s |\n", mdCell(d.Old.Profile), mdCell(d.New.Profile))
	p("| Label filter | %s | %s |\n", mdLabelFilter(d.Old.LabelFilter), mdLabelFilter(d.New.LabelFilter))
	p("| Started | %s | %s |\n", fmtTime(d.Old.Started), fmtTime(d.New.Started))
	p("| Rows | %d | %d |\n", d.Old.Rows, d.New.Rows)
	p("| Verdict | **%s** | **%s** |\n\n", d.Old.Verdict.Decision, d.New.Verdict.Decision)

	p("## Verdict\n\n")
	if d.VerdictChanged {
		p("Changed: **%s → %s**.\n\n", d.Old.Verdict.Decision, d.New.Verdict.Decision)
	} else {
		p("Unchanged: **%s** in both runs.\n\n", d.New.Verdict.Decision)
	}
	list("Reasons only in the old run (gone):", d.ReasonsGone)
	list("Reasons only in the new run:", d.ReasonsNew)
	if !d.VerdictChanged && len(d.ReasonsGone)+len(d.ReasonsNew) == 0 {
		p("The reasons are the same.\n\n")
	}

	p("## Status changes\n\n")
	if len(d.Statuses) == 0 {
		p("No row, window or gate step changed status (%d rows in both runs).\n\n", d.RowsCompared)
	} else {
		p("| Row, window or gate step | old | new |\n| --- | --- | --- |\n")
		for _, s := range d.Statuses {
			p("| %s | %s | %s |\n", mdCell(s.What), orAbsent(s.Old), orAbsent(s.New))
		}
		p("\n")
	}
	list("Specs that failed in the old run only (from its restorations, one after every failed spec):", d.SpecsGone)
	list("Specs that failed in the new run only (from its restorations, one after every failed spec):", d.SpecsNew)

	p("## Detect, fire and recover times\n\n")
	p("Noise band: %s.\n\n", mdText(d.Band.String()))
	switch {
	case d.RowsCompared == 0:
		p("No row is in both runs: no time to compare.\n\n")
	case len(d.Times) == 0:
		p("No time moved beyond the band (%d rows in both runs).\n\n", d.RowsCompared)
	default:
		p("| Row | time | old | new | change |\n| --- | --- | --- | --- | --- |\n")
		for _, t := range d.Times {
			p("| %s | %s | %s | %s | %s |\n", mdCell(t.Row), t.Moment, fmtMaybe(t.Old), fmtMaybe(t.New), fmtMove(t.Old, t.New))
		}
		p("\n")
	}

	p("## Triggers\n\n")
	if len(d.Triggers) == 0 {
		p("No rollback trigger fired in one run and not in the other (rows in both runs, control and canary).\n\n")
	} else {
		p("| Row or window | fired in the old run only (vanished) | fired in the new run only (new) |\n| --- | --- | --- |\n")
		for _, t := range d.Triggers {
			p("| %s | %s | %s |\n", mdCell(t.What), codeList(t.Vanished), codeList(t.Appeared))
		}
		p("\n")
	}

	p("## Rule, matrix and program files\n\n")
	if len(d.Files) == 0 {
		p("Every file hash is the same in both runs (%d files, compared by path).\n\n", d.FilesSame)
	} else {
		p("%d changed, %d the same (compared by path):\n\n", len(d.Files), d.FilesSame)
		p("| File | old SHA-256 | new SHA-256 |\n| --- | --- | --- |\n")
		for _, f := range d.Files {
			p("| %s | %s | %s |\n", mdCodeCell(f.Key), hashCell(f.Old), hashCell(f.New))
		}
		p("\n")
	}
	if len(d.Images) > 0 {
		p("Images that differ (by role):\n\n| Role | old | new |\n| --- | --- | --- |\n")
		for _, im := range d.Images {
			p("| %s | %s | %s |\n", mdCell(im.Key), imageCell(im.Old), imageCell(im.New))
		}
		p("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func revision(s DiffSide) string {
	r := s.Revision
	if len(r) > 12 {
		r = r[:12]
	}
	out := mdCodeCell(r)
	if s.Dirty {
		out += " (uncommitted changes)"
	}
	return out
}

func orAbsent(s string) string {
	if s == "" {
		return "absent"
	}
	return mdCell(s)
}

func fmtMaybe(d *time.Duration) string {
	if d == nil {
		return "not reached"
	}
	return fmtDuration(*d)
}

func fmtMove(old, new *time.Duration) string {
	switch {
	case old == nil:
		return "now reached"
	case new == nil:
		return "no longer reached"
	}
	delta := *new - *old
	s := fmtDuration(delta.Abs())
	sign := "+"
	if delta < 0 {
		sign = "−"
	}
	if *old > 0 {
		s += fmt.Sprintf(" (%s%s %%)", sign, fmtNum(math.Abs(float64(delta))/float64(*old)*100))
	}
	return sign + s
}

func codeList(items []string) string {
	if len(items) == 0 {
		return "—"
	}
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = mdCodeCell(s)
	}
	return strings.Join(out, ", ")
}

// hashCell shortens a SHA-256 to its first 12 hex digits (enough to tell two apart).
func hashCell(h string) string {
	if h == "" {
		return "absent"
	}
	return mdCodeCell(shortHash(h))
}

func shortHash(h string) string {
	pre := ""
	if p, rest, ok := strings.Cut(h, ":"); ok {
		pre, h = p+":", rest
	}
	if len(h) > 12 {
		h = h[:12]
	}
	return pre + h
}

func imageCell(refID string) string {
	if refID == "" {
		return "absent"
	}
	ref, id, _ := strings.Cut(refID, " ")
	return mdCodeCell(ref) + " " + mdCodeCell(shortHash(id))
}
