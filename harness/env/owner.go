package env

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Identity is what tells one process on one machine from every other, now and later:
// a pid alone does not (pid namespaces of CI containers that share the host's hostname
// and network each have their own pid 1234; pids are reused), a pid with the kernel's
// boot id, its pid namespace and its start time does.
type Identity struct {
	Host  string // os.Hostname
	Boot  string // /proc/sys/kernel/random/boot_id
	PIDNS string // readlink /proc/self/ns/pid, e.g. "pid:[4026531836]"
	PID   int    // os.Getpid (a pid in PIDNS)
	Start uint64 // field 22 of /proc/self/stat: clock ticks after boot
	// Err says why Boot, PIDNS or Start are unknown (no /proc, say). An owner that
	// cannot be identified is never judged dead, and cannot judge others dead either.
	Err error
}

// Self is the identity of this process, read from /proc once.
func Self() Identity { return self() }

var self = sync.OnceValue(func() Identity { return readIdentity("/proc", os.Getpid()) })

// readIdentity reads the identity of this process (whose pid is pid) from proc, the
// procfs mount point; proc must be of this process's own pid namespace.
func readIdentity(proc string, pid int) Identity {
	id := Identity{PID: pid}
	id.Host, _ = os.Hostname()
	var errs []error
	b, err := os.ReadFile(filepath.Join(proc, "sys/kernel/random/boot_id"))
	if err == nil {
		id.Boot = strings.TrimSpace(string(b))
	}
	if err != nil || id.Boot == "" {
		errs = append(errs, fmt.Errorf("boot id: %v", err))
	}
	id.PIDNS, err = os.Readlink(filepath.Join(proc, "self/ns/pid"))
	if err != nil {
		errs = append(errs, fmt.Errorf("pid namespace: %w", err))
	}
	b, err = os.ReadFile(filepath.Join(proc, "self/stat"))
	if err != nil {
		errs = append(errs, fmt.Errorf("start time: %w", err))
	} else if st, err := parseStat(b); err != nil {
		errs = append(errs, fmt.Errorf("start time: %w", err))
	} else if st.pid != pid {
		// /proc was mounted for another pid namespace: nothing read from it is ours.
		errs = append(errs, fmt.Errorf("%s/self/stat says pid %d, this process is %d: %s is not of this pid namespace", proc, st.pid, pid, proc))
	} else {
		id.Start = st.start
	}
	if len(errs) > 0 {
		id.Boot, id.PIDNS, id.Start = "", "", 0
		id.Err = errors.Join(errs...)
	}
	return id
}

// OwnerLabels are the labels the harness puts on everything it creates for runID: the
// harness label, the run id and the owning process's identity. Objects made with them
// are found by Sweep and Leftovers; only an owner verified dead makes them orphans.
func OwnerLabels(runID string) map[string]string { return ownerLabels(runID) }

func ownerLabels(runID string) map[string]string {
	id := self()
	l := map[string]string{
		LabelHarness: "1",
		LabelRun:     runID,
		LabelPID:     strconv.Itoa(id.PID),
		LabelHost:    id.Host,
	}
	if id.Err == nil { // else left out: an unverifiable owner, never swept as an orphan
		l[LabelBoot] = id.Boot
		l[LabelPIDNS] = id.PIDNS
		l[LabelStart] = strconv.FormatUint(id.Start, 10)
	}
	return l
}

// stat is the part of /proc/<pid>/stat the owner check reads.
type stat struct {
	pid   int
	state byte
	start uint64 // field 22, starttime
}

// parseStat parses /proc/<pid>/stat. The second field, the command name in parentheses,
// may itself hold spaces and parentheses ("a) (b"): the fields after it start after the
// LAST ')' of the line.
func parseStat(b []byte) (stat, error) {
	s := strings.TrimSpace(string(b))
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 1 || closing < open {
		return stat{}, fmt.Errorf("malformed stat line %q", trunc(s))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return stat{}, fmt.Errorf("malformed pid in stat line %q", trunc(s))
	}
	rest := strings.Fields(s[closing+1:]) // rest[0] is field 3 (state), rest[k-3] field k
	if len(rest) < 22-3+1 || len(rest[0]) != 1 {
		return stat{}, fmt.Errorf("stat line has %d fields after the command name, want at least 20: %q", len(rest), trunc(s))
	}
	start, err := strconv.ParseUint(rest[22-3], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("malformed start time %q in stat line", rest[22-3])
	}
	return stat{pid: pid, state: rest[0][0], start: start}, nil
}

func trunc(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// procState is what the sweeping process sees of a pid in its own pid namespace.
type procState struct {
	gone  bool   // no such process
	start uint64 // its start time, when alive
	err   error  // cannot tell (procfs unreadable): never judged gone
}

// probePID looks pid up in this process's pid namespace, with procfs at proc.
func probePID(proc string, pid int) procState {
	if pid <= 0 {
		return procState{err: fmt.Errorf("invalid pid %d", pid)}
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return procState{gone: true}
	}
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if errors.Is(err, os.ErrNotExist) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return procState{gone: true} // it ended in between
		}
	}
	if err != nil {
		return procState{err: err}
	}
	st, err := parseStat(b)
	if err != nil {
		return procState{err: err}
	}
	if st.pid != pid {
		return procState{err: fmt.Errorf("%s/%d/stat is of pid %d", proc, pid, st.pid)}
	}
	return procState{start: st.start}
}

// Verdict is an orphan sweep's judgement of one object's owner.
type Verdict struct {
	Orphan bool   // its owner is verified dead: remove it
	Alive  bool   // its owner is verified alive (a live run): keep it
	Reason string // why, for the log: "owner pid 42 is gone", "owner in another pid namespace …"
}

const unverifiable = "cannot verify it is dead"

// judge decides whether the object with labels is an orphan for a sweep run by me.
// It is one only when the owner's host, boot id and pid namespace are mine and its pid
// is gone or now belongs to a process started at another time (the pid was reused).
// Everything that cannot be verified is kept.
func judge(labels map[string]string, me Identity, probe func(pid int) procState) Verdict {
	keep := func(format string, args ...any) Verdict {
		return Verdict{Reason: fmt.Sprintf(format, args...) + ", " + unverifiable}
	}
	host := labels[LabelHost]
	switch {
	case host == "":
		return keep("no owner host label")
	case host != me.Host:
		return Verdict{Reason: fmt.Sprintf("owner on another host (%s), not ours to judge", host)}
	case me.Err != nil:
		return keep("this process cannot read its own identity (%v)", me.Err)
	}
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil || pid <= 0 {
		return keep("no valid owner pid label (%q)", labels[LabelPID])
	}
	boot, pidns, startLabel := labels[LabelBoot], labels[LabelPIDNS], labels[LabelStart]
	if boot == "" || pidns == "" || startLabel == "" {
		return keep("owner pid %d has no boot id, pid namespace or start time label (made by an older harness, or without /proc)", pid)
	}
	start, err := strconv.ParseUint(startLabel, 10, 64)
	switch {
	case boot != me.Boot:
		return keep("owner under another boot id (%s; a reboot, or another machine named %s)", boot, host)
	case pidns != me.PIDNS:
		return keep("owner in another pid namespace (%s, this process in %s)", pidns, me.PIDNS)
	case err != nil:
		return keep("malformed owner start time label %q", startLabel)
	}
	st := probe(pid)
	switch {
	case st.err != nil:
		return keep("owner pid %d cannot be looked up (%v)", pid, st.err)
	case st.gone:
		return Verdict{Orphan: true, Reason: fmt.Sprintf("owner pid %d is gone", pid)}
	case st.start != start:
		return Verdict{Orphan: true, Reason: fmt.Sprintf("owner pid %d is gone (the pid now belongs to a process started at tick %d, the owner at %d)", pid, st.start, start)}
	}
	return Verdict{Alive: true, Reason: fmt.Sprintf("owner pid %d is alive", pid)}
}
