// Package subproc runs the subprocesses of a test binary (the compiled PocketBrain suite,
// the ginkgo CLI) so that Ctrl-C reaches each of them exactly once and the test binary
// outlives them, so they can tear their stacks down.
//
// Without it, Ctrl-C on `make test` (SIGINT to the terminal's whole foreground process
// group) killed the test binary at once — a Go test binary does not handle SIGINT —
// while its suite subprocess, which got the signal too, began its teardown; the
// subprocess's next write to the pipe of its dead parent raised SIGPIPE and killed it
// mid-teardown, leaving its containers, network and volumes behind.
//
// With it: Forward (called from TestMain) makes the test binary catch SIGINT and SIGTERM
// instead of dying, and pass them on; Prepare starts a subprocess in its own process
// group, so a group signal does not reach it a second time (a second SIGINT makes
// Ginkgo skip its cleanup); Track registers the started subprocess, whose whole group
// then receives every forwarded signal. After a signal, Interrupted is closed and tests
// start no further subprocess.
package subproc

import (
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
)

var (
	mu          sync.Mutex
	groups      = map[int]bool{} // process group ids of running subprocesses
	once        sync.Once
	interrupted = make(chan struct{})
	closeOnce   sync.Once
	last        os.Signal
)

// Forward catches SIGINT and SIGTERM for the rest of the process's life and forwards each
// to the process group of every tracked subprocess. Call it once, early in TestMain.
func Forward() {
	once.Do(func() {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go func() {
			for sig := range ch {
				mu.Lock()
				last = sig
				closeOnce.Do(func() { close(interrupted) })
				for pgid := range groups {
					_ = syscall.Kill(-pgid, sig.(syscall.Signal))
				}
				mu.Unlock()
			}
		}()
	})
}

// Prepare makes cmd start in a process group of its own (call before cmd.Start).
func Prepare(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// Track registers a started subprocess (prepared with Prepare): forwarded signals reach
// its process group. A signal that came before it was tracked is passed on at once.
// Call the returned function once the subprocess has been waited for.
func Track(cmd *exec.Cmd) (untrack func()) {
	pgid := cmd.Process.Pid
	mu.Lock()
	groups[pgid] = true
	if last != nil {
		_ = syscall.Kill(-pgid, last.(syscall.Signal))
	}
	mu.Unlock()
	return func() {
		mu.Lock()
		delete(groups, pgid)
		mu.Unlock()
	}
}

// Interrupted is closed once SIGINT or SIGTERM has arrived.
func Interrupted() <-chan struct{} { return interrupted }

// WasInterrupted reports whether SIGINT or SIGTERM has arrived.
func WasInterrupted() bool {
	select {
	case <-interrupted:
		return true
	default:
		return false
	}
}
