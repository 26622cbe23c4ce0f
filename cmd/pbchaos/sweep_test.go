package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/pocketbrain/chaos/harness/env"
)

func TestSweepFlagUsage(t *testing.T) {
	for _, args := range [][]string{{"sweep", "--any-host"}, {"sweep", "--all", "-run", "pbx"}} {
		if r := pbchaos(t, nil, args...); r.code != 2 {
			t.Errorf("pbchaos %v: exit %d, want 2 (usage); output:\n%s", args, r.code, r.out)
		}
	}
}

// TestSweepAllIsThisHostsAndListsFirst: `sweep --all` judges this host's objects only
// (--any-host widens it), every sweep lists what it removes (kind, name, run, host,
// pid) before it removes it, and --dry-run removes nothing. Real removal is scoped to
// the test's own run ids: the engine may hold another engineer's live stacks.
func TestSweepAllIsThisHostsAndListsFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		t.Skipf("needs a Docker engine: %v", err)
	}
	defer d.Close()
	tag := fmt.Sprintf("%d%d", os.Getpid(), time.Now().UnixNano()%1e6)
	ours, foreign := "pbsweepours"+tag, "pbsweepforeign"+tag
	create := func(run, host string) string {
		l := env.OwnerLabels(run)
		if host != "" {
			l[env.LabelHost] = host
		}
		name := run + "-net"
		if _, err := d.Client().NetworkCreate(ctx, name, client.NetworkCreateOptions{Labels: l}); err != nil {
			t.Fatalf("create network %s: %v", name, err)
		}
		t.Cleanup(func() { _, _ = d.Sweep(context.Background(), env.SweepAll, run) })
		return name
	}
	ourNet := create(ours, "")
	foreignHost := "elsewhere-" + tag
	foreignNet := create(foreign, foreignHost)
	left := func(run string) int {
		rep, err := d.Leftovers(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		return rep.Containers + rep.Networks + rep.Volumes
	}
	listed := func(out, name, run string) bool {
		return regexp.MustCompile(`(?m)^\s+network\s+` + regexp.QuoteMeta(name) + `\s+` + regexp.QuoteMeta(run) + `\s+\S+\s+[0-9]+\s`).MatchString(out)
	}

	r := pbchaos(t, nil, "sweep", "--all", "--dry-run")
	t.Logf("sweep --all --dry-run:\n%s", r.out)
	if r.code != 0 {
		t.Fatalf("sweep --all --dry-run: exit %d", r.code)
	}
	if !listed(r.out, ourNet, ours) {
		t.Errorf("this host's network %s is not listed for removal", ourNet)
	}
	if listed(r.out, foreignNet, foreign) {
		t.Errorf("another host's network %s is listed for removal by --all without --any-host", foreignNet)
	}
	if !strings.Contains(r.out, "kept 1 object of run "+foreign+" (host "+foreignHost) || !strings.Contains(r.out, "dry run: nothing removed") {
		t.Errorf("the dry run does not say it kept the foreign run and removed nothing")
	}
	if left(ours) != 1 || left(foreign) != 1 {
		t.Fatalf("a dry run removed something")
	}

	r = pbchaos(t, nil, "sweep", "--all", "--any-host", "--dry-run")
	if r.code != 0 || !listed(r.out, ourNet, ours) || !listed(r.out, foreignNet, foreign) {
		t.Errorf("sweep --all --any-host --dry-run: exit %d, want both networks listed; output:\n%s", r.code, r.out)
	}

	// The orphan sweep keeps our network: its owner (this test) is alive.
	r = pbchaos(t, nil, "sweep", "--dry-run")
	if r.code != 0 || listed(r.out, ourNet, ours) || !strings.Contains(r.out, fmt.Sprintf("kept 1 object of run %s (host ", ours)) ||
		!strings.Contains(r.out, fmt.Sprintf("owner pid %d is alive", os.Getpid())) {
		t.Errorf("sweep --dry-run: exit %d, want %s kept as live; output:\n%s", r.code, ourNet, r.out)
	}

	// A real removal lists first, then removes.
	r = pbchaos(t, nil, "sweep", "-run", ours)
	t.Logf("sweep -run %s:\n%s", ours, r.out)
	at, swept := strings.Index(r.out, ourNet), strings.Index(r.out, "swept environment "+ours+": 0 containers, 0 volumes, 1 networks")
	if r.code != 0 || at < 0 || swept < 0 || at > swept || !strings.HasPrefix(r.out, "will remove 1 object (") {
		t.Errorf("sweep -run: exit %d, want the network listed, then removed", r.code)
	}
	if n := left(ours); n != 0 {
		t.Errorf("%d objects of %s left after sweep -run", n, ours)
	}
	if n := left(foreign); n != 1 {
		t.Errorf("the foreign run's network went too (%d left)", n)
	}
}
