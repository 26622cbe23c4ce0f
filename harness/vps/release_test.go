package vps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func testRelease(name, rev, digit string) Release {
	return Release{
		Name:     name,
		Revision: rev,
		Images: map[string]Image{
			"server": {Ref: "pocketbrain/server:" + rev, ID: "sha256:" + strings.Repeat(digit, 64)},
			"worker": {Ref: "pocketbrain/worker:" + rev, ID: "sha256:" + strings.Repeat("f", 64)},
		},
	}
}

func TestReleaseRoundTrip(t *testing.T) {
	r := testRelease("release under test", "abc123", "1")
	b, err := r.Marshal()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "# PocketBrain release: the image set this commit deploys\n"))
	got, err := ParseRelease(b)
	require.NoError(t, err)
	require.Equal(t, r, got)
}

func TestParseReleaseRefuses(t *testing.T) {
	id := "sha256:" + strings.Repeat("a", 64)
	cases := map[string]struct{ yaml, field string }{
		"unknown field":    {"name: x\nrevision: r\nbogus: 1\nimages:\n  server: {ref: s, id: " + id + "}\n", "bogus"},
		"unknown in image": {"name: x\nrevision: r\nimages:\n  server: {ref: s, id: " + id + ", tag: t}\n", "tag"},
		"missing revision": {"name: x\nimages:\n  server: {ref: s, id: " + id + "}\n", "revision"},
		"missing name":     {"revision: r\nimages:\n  server: {ref: s, id: " + id + "}\n", "name"},
		"no images":        {"name: x\nrevision: r\n", "images"},
		"missing ref":      {"name: x\nrevision: r\nimages:\n  server: {id: " + id + "}\n", "images.server.ref"},
		"bad id":           {"name: x\nrevision: r\nimages:\n  server: {ref: s, id: sha256:abc}\n", "images.server.id"},
		"empty":            {"", ReleaseFile},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRelease([]byte(tc.yaml))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.field)
		})
	}
}

func TestCreateRepo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "release.git")
	releases := []Release{
		testRelease("last good release", "r1", "1"),
		testRelease("release under test", "r2", "2"),
		testRelease("release under test", "r2", "2"), // same content, new commit
	}
	shas, err := CreateRepo(dir, releases)
	require.NoError(t, err)
	require.Len(t, shas, 3)
	seen := map[string]bool{}
	for _, s := range shas {
		require.Regexp(t, `^[0-9a-f]{40}$`, s)
		require.False(t, seen[s], "duplicate SHA")
		seen[s] = true
	}

	// Same releases, same SHAs: the repository is reproducible.
	again, err := CreateRepo(filepath.Join(t.TempDir(), "again.git"), releases)
	require.NoError(t, err)
	require.Equal(t, shas, again)

	_, err = CreateRepo(dir, releases)
	require.ErrorContains(t, err, dir)
	require.ErrorContains(t, err, "not empty")

	_, err = CreateRepo(filepath.Join(t.TempDir(), "bad.git"), []Release{{Name: "x"}})
	require.ErrorContains(t, err, "revision")

	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Log("git not on PATH: skipping the real-git check")
		return
	}
	git := func(args ...string) string {
		cmd := exec.Command(gitBin, append([]string{"--git-dir", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	log := strings.Fields(git("log", "--format=%H", "main"))
	require.Equal(t, []string{shas[2], shas[1], shas[0]}, log)
	require.Equal(t, "refs/heads/main", strings.TrimSpace(git("symbolic-ref", "HEAD")))
	for i, sha := range shas {
		want, err := releases[i].Marshal()
		require.NoError(t, err)
		require.Equal(t, string(want), git("show", sha+":"+ReleaseFile))
		require.Equal(t, ReleaseFile+"\n", git("ls-tree", "--name-only", sha))
	}
	require.Equal(t, "release: release under test (revision r2)\n", git("log", "-1", "--format=%B", shas[1])[:len("release: release under test (revision r2)\n")])
	require.Equal(t, "pocketbrain chaos harness <harness@pocketbrain.invalid>\n", git("log", "-1", "--format=%an <%ae>", shas[0]))
	git("fsck", "--strict")
}
