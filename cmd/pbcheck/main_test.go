package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

const hist = `{"ops":[{"client":"c01","op":"capture","captureId":"c01-1","mutationId":"c01-m1","value":"v","invoke":"2026-02-14T12:00:00Z","complete":"2026-02-14T12:00:01Z","outcome":"ok"}]}`

func files(t *testing.T, state string) (string, string) {
	dir := t.TempDir()
	h, s := filepath.Join(dir, "h.json"), filepath.Join(dir, "s.json")
	assert.NoError(t, os.WriteFile(h, []byte(hist), 0o644))
	assert.NoError(t, os.WriteFile(s, []byte(state), 0o644))
	return h, s
}

func TestRun(t *testing.T) {
	var out, errOut bytes.Buffer
	h, s := files(t, `{"captures":[{"captureId":"c01-1","clientId":"c01","value":"v"}],"applied":[{"mutationId":"c01-m1","captureId":"c01-1","value":"v"}]}`)
	assert.Equal(t, 0, run([]string{"-history", h, "-state", s}, &out, &errOut))
	assert.Contains(t, out.String(), "verdict: valid")

	h, s = files(t, `{"captures":[],"applied":[]}`)
	out.Reset()
	assert.Equal(t, 1, run([]string{"-history", h, "-state", s, "-json"}, &out, &errOut))
	assert.Contains(t, out.String(), `"verdict": "invalid"`)

	assert.Equal(t, 0, run([]string{"-history", h}, &out, &errOut), "no state: unknown")
	assert.Equal(t, 1, run([]string{"-history", h, "-strict"}, &out, &errOut))
	assert.Equal(t, 2, run([]string{}, &out, &errOut))
	assert.Equal(t, 2, run([]string{"-history", "/nonexistent"}, &out, &errOut))
}
