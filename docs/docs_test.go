// Package docs holds the project's shared documentation; this test keeps every
// document of the repository free of secrets written on a command line.
package docs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The documents people copy commands from (issue 17 §4.7).
var documents = []string{"../README.md", "../docs", "../program", "../fixtures/images/README.md", "../scripts"}

// onCommandLine are the ways a password ends up in a process's arguments (visible in
// ps, shell history and logs). A secret goes in the environment or a file instead:
// REDISCLI_AUTH, PGPASSFILE / PGPASSWORD, requirepass on redis-server's stdin.
var onCommandLine = []struct {
	re  *regexp.Regexp
	fix string
}{
	{regexp.MustCompile(`redis-cli\b[^\n]*\s(-a|--pass|--askpass=)\s*\S`), "redis-cli reads REDISCLI_AUTH: docker exec -e REDISCLI_AUTH <ctr> redis-cli …"},
	{regexp.MustCompile(`--requirepass\b["',\s]+[^\s"',\]]`), "feed requirepass on redis-server's stdin: printf 'requirepass %s\\n' \"$REDIS_PASSWORD\" | redis-server - …"},
	{regexp.MustCompile(`\bAUTH\s+[A-Za-z0-9_<]`), "let redis-cli authenticate from REDISCLI_AUTH"},
	{regexp.MustCompile(`PGPASSWORD=[^\s$"']`), "export PGPASSWORD from a secret, or use PGPASSFILE; never write its value"},
	{regexp.MustCompile(`(?i)(--password|-p)[= ]+(password|secret|pw|hunter2|changeme)\b`), "read the password from the environment or a file"},
	{regexp.MustCompile(`(psql|pg_dump|pg_isready|redis-cli|curl|wget|mysql)\b[^\n]*://[^/\s:@]+:[^@\s]+@`), "no user:password@ in a URL argument: use PGPASSFILE / REDISCLI_AUTH / a netrc file"},
}

func TestDocsShowNoPasswordOnACommandLine(t *testing.T) {
	var files []string
	for _, d := range documents {
		err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && !strings.HasSuffix(path, "_test.go") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 5 {
		t.Fatalf("found only %v: the document list drifted", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, c := range onCommandLine {
				if m := c.re.FindString(line); m != "" {
					t.Errorf("%s:%d: a password on a command line (%q); %s", f, i+1, m, c.fix)
				}
			}
		}
	}
}

// The patterns catch what they are meant to, and leave the safe forms alone.
func TestPasswordPatterns(t *testing.T) {
	bad := []string{
		`redis-cli -a s3cret ping`,
		`docker exec ctr redis-cli --pass s3cret`,
		`redis-server --bind 0.0.0.0 --requirepass <secret>`,
		`["redis-server","--requirepass",PW]`,
		`PGPASSWORD=s3cret psql -h db`,
		`psql postgres://pocketbrain:s3cret@db/pocketbrain`,
		`mysql -p password`,
	}
	good := []string{
		`docker exec -e REDISCLI_AUTH ctr redis-cli ping`,
		`printf 'requirepass %s\n' "$REDIS_PASSWORD" | exec redis-server - --bind 0.0.0.0`,
		`PGPASSWORD="$(cat /run/secrets/pg)" psql -h db`,
		`docker exec -u postgres ctr psql pocketbrain`,
		"| `DATABASE_URL` | `postgres://pocketbrain:PW@toxiproxy:15432/pocketbrain?sslmode=disable` | required |",
		`docker run -p 5432:5432 postgres`,
	}
	match := func(s string) bool {
		for _, c := range onCommandLine {
			if c.re.MatchString(s) {
				return true
			}
		}
		return false
	}
	for _, s := range bad {
		if !match(s) {
			t.Errorf("not caught: %s", s)
		}
	}
	for _, s := range good {
		if match(s) {
			t.Errorf("wrongly caught: %s", s)
		}
	}
}
