package env

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statLine is a /proc/<pid>/stat line of pid with command name comm and start time start
// (field 22); the other fields as the kernel writes them.
func statLine(pid int, comm string, start uint64) string {
	return strconv.Itoa(pid) + " (" + comm + ") S 1 4242 4242 0 -1 4194560 1227 0 0 0 3 1 0 0 20 0 7 0 " +
		strconv.FormatUint(start, 10) + " 1258242048 3419 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 2 0 0 0 0 0\n"
}

func TestParseStatCommWithParens(t *testing.T) {
	for _, comm := range []string{"pocketbrain.test", "a) (b", "x) S 1 2 3 (y", "my prog", ")", "(", ""} {
		st, err := parseStat([]byte(statLine(5000, comm, 98765)))
		require.NoError(t, err, "comm %q", comm)
		assert.Equal(t, 5000, st.pid, "comm %q", comm)
		assert.Equal(t, byte('S'), st.state, "comm %q", comm)
		assert.Equal(t, uint64(98765), st.start, "comm %q: field 22 counted after the last ')'", comm)
	}
	for _, bad := range []string{"", "5000", "5000 (x", "x (y) S 1", "5000 (x) S 1 2 3", "5000 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 notanumber 20"} {
		_, err := parseStat([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestReadIdentityOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	id := readIdentity("/proc", os.Getpid())
	require.NoError(t, id.Err)
	assert.Regexp(t, `^pid:\[[0-9]+\]$`, id.PIDNS)
	assert.Regexp(t, `^[0-9a-f-]{36}$`, id.Boot)
	assert.NotZero(t, id.Start)
	host, _ := os.Hostname()
	assert.Equal(t, host, id.Host)
	// The probe sees this process as alive, with the same start time.
	assert.Equal(t, procState{start: id.Start}, probePID("/proc", os.Getpid()))

	// /proc of another pid namespace (its self is not us) is not trusted.
	other := readIdentity("/proc", os.Getpid()+1)
	assert.Error(t, other.Err)
	assert.Empty(t, other.Boot+other.PIDNS)

	// A process that ended is gone.
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	assert.True(t, probePID("/proc", cmd.Process.Pid).gone)

	l := OwnerLabels("pbtest")
	assert.Equal(t, id.Boot, l[LabelBoot])
	assert.Equal(t, id.PIDNS, l[LabelPIDNS])
	assert.Equal(t, strconv.FormatUint(id.Start, 10), l[LabelStart])
	assert.Equal(t, strconv.Itoa(os.Getpid()), l[LabelPID])
	assert.Equal(t, "pbtest", l[LabelRun])
	assert.Equal(t, "1", l[LabelHarness])
}

func TestJudgeOwner(t *testing.T) {
	me := Identity{Host: "ci", Boot: "boot-a", PIDNS: "pid:[4026531836]", PID: 100, Start: 777}
	owner := func(edit func(map[string]string)) map[string]string {
		l := map[string]string{LabelHarness: "1", LabelRun: "pbdead", LabelHost: "ci", LabelPID: "5000",
			LabelBoot: "boot-a", LabelPIDNS: "pid:[4026531836]", LabelStart: "1234"}
		if edit != nil {
			edit(l)
		}
		return l
	}
	gone := func(int) procState { return procState{gone: true} }
	aliveAt := func(start uint64) func(int) procState {
		return func(int) procState { return procState{start: start} }
	}
	cases := []struct {
		name    string
		labels  map[string]string
		me      Identity
		probe   func(int) procState
		orphan  bool
		alive   bool
		because string
	}{
		{"same ns, pid gone", owner(nil), me, gone, true, false, "owner pid 5000 is gone"},
		{"pid alive, other start time (reused)", owner(nil), me, aliveAt(99999), true, false, "now belongs to a process started at tick 99999"},
		{"pid alive, same start time", owner(nil), me, aliveAt(1234), false, true, "owner pid 5000 is alive"},
		{"other pid namespace", owner(func(l map[string]string) { l[LabelPIDNS] = "pid:[4026532890]" }), me, gone, false, false, "owner in another pid namespace (pid:[4026532890]"},
		{"other boot", owner(func(l map[string]string) { l[LabelBoot] = "boot-b" }), me, gone, false, false, "another boot id"},
		{"other host", owner(func(l map[string]string) { l[LabelHost] = "elsewhere" }), me, gone, false, false, "another host (elsewhere)"},
		{"no boot label", owner(func(l map[string]string) { delete(l, LabelBoot) }), me, gone, false, false, "no boot id, pid namespace or start time label"},
		{"no pidns label", owner(func(l map[string]string) { delete(l, LabelPIDNS) }), me, gone, false, false, "no boot id, pid namespace or start time label"},
		{"no start label", owner(func(l map[string]string) { delete(l, LabelStart) }), me, gone, false, false, "no boot id, pid namespace or start time label"},
		{"no host label", owner(func(l map[string]string) { delete(l, LabelHost) }), me, gone, false, false, "no owner host label"},
		{"no pid label", owner(func(l map[string]string) { delete(l, LabelPID) }), me, gone, false, false, "no valid owner pid label"},
		{"malformed start label", owner(func(l map[string]string) { l[LabelStart] = "x" }), me, gone, false, false, "malformed owner start time"},
		{"labels of an older harness", map[string]string{LabelHarness: "1", LabelRun: "pbold", LabelHost: "ci", LabelPID: "5000"}, me, gone, false, false, "made by an older harness"},
		{"own /proc unreadable", owner(nil), Identity{Host: "ci", PID: 100, Err: os.ErrNotExist}, gone, false, false, "cannot read its own identity"},
		{"owner's pid cannot be looked up", owner(nil), me, func(int) procState { return procState{err: os.ErrPermission} }, false, false, "cannot be looked up"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := judge(c.labels, c.me, c.probe)
			assert.Equal(t, c.orphan, v.Orphan, "orphan; reason %q", v.Reason)
			assert.Equal(t, c.alive, v.Alive, "alive; reason %q", v.Reason)
			assert.Contains(t, v.Reason, c.because)
			if !c.orphan && !c.alive && !strings.Contains(c.name, "other host") {
				assert.Contains(t, v.Reason, "cannot verify it is dead")
			}
		})
	}
}

func TestKeptSummary(t *testing.T) {
	o := Object{Run: "pbXXXX", Host: "ci", PID: "5000", Reason: "owner in another pid namespace (pid:[2]), cannot verify it is dead"}
	live := Object{Run: "pbLIVE", Host: "ci", PID: "42", Reason: "owner pid 42 is alive", Alive: true}
	rep := SweepReport{Kept: []Object{o, o, live, o}}
	assert.Equal(t, []string{
		"kept 3 objects of run pbXXXX (host ci, pid 5000): owner in another pid namespace (pid:[2]), cannot verify it is dead",
		"kept 1 object of run pbLIVE (host ci, pid 42): owner pid 42 is alive",
	}, rep.KeptSummary())
}

// The real probe on this (live) process: its own labels say alive; labels whose start
// time is another's say the pid was reused, so the owner is gone although the pid answers.
func TestJudgeLiveAndReusedPIDOfThisProcess(t *testing.T) {
	me := readIdentity("/proc", os.Getpid())
	if me.Err != nil {
		t.Skipf("no usable /proc: %v", me.Err)
	}
	probe := func(pid int) procState { return probePID("/proc", pid) }
	l := OwnerLabels("pbself")
	v := judge(l, me, probe)
	assert.True(t, v.Alive, v.Reason)
	assert.False(t, v.Orphan, v.Reason)

	l[LabelStart] = strconv.FormatUint(me.Start+1, 10)
	v = judge(l, me, probe)
	assert.True(t, v.Orphan, "pid %d answers kill(pid, 0) but started at another time: %s", os.Getpid(), v.Reason)
	assert.Contains(t, v.Reason, "now belongs to a process started at tick")
}
