package evidence

import (
	"bytes"
	"encoding/json"
	"html"
	"html/template"
	"io"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Redacted replaces every secret value in written output.
const Redacted = "[REDACTED]"

// MinSecretLen is the shortest value a Redactor will hide. Shorter values
// ("1", "true", "dev") would blank out ordinary words across the report;
// generated secrets are far longer.
const MinSecretLen = 6

// SecretEnvName matches the names of environment variables whose values are
// treated as secrets.
var secretEnvName = regexp.MustCompile(`(?i)SECRET|PASSWORD|TOKEN|KEY`)

// IsSecretEnvName reports whether an environment variable's value must be
// redacted.
func IsSecretEnvName(name string) bool { return secretEnvName.MatchString(name) }

// SecretsFromEnv returns the values of the variables in environ ("NAME=value",
// as os.Environ gives) whose names look secret.
func SecretsFromEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if ok && IsSecretEnvName(name) {
			out = append(out, val)
		}
	}
	return out
}

// Redactor hides known secret values. It is immutable after construction, so
// one value can be shared by every goroutine; a nil *Redactor hides nothing.
type Redactor struct {
	secrets  []string // as given, longest first
	replacer *strings.Replacer
	maxLen   int
}

// NewRedactor builds a Redactor for the given values. Values shorter than
// MinSecretLen are ignored. Besides each value it also hides the forms the
// value takes once escaped into JSON, HTML or a URL, so no output encoding can
// leak it.
func NewRedactor(secrets ...string) *Redactor {
	seen := map[string]bool{}
	var uniq []string
	for _, s := range secrets {
		if len(s) < MinSecretLen || seen[s] {
			continue
		}
		seen[s] = true
		uniq = append(uniq, s)
	}
	forms := map[string]bool{}
	for _, s := range uniq {
		forms[s] = true
		j, _ := json.Marshal(s)
		forms[string(j[1:len(j)-1])] = true
		var jb bytes.Buffer
		enc := json.NewEncoder(&jb)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		if raw := strings.TrimSpace(jb.String()); len(raw) >= 2 {
			forms[raw[1:len(raw)-1]] = true
		}
		forms[html.EscapeString(s)] = true
		forms[template.HTMLEscapeString(s)] = true
		forms[url.QueryEscape(s)] = true
		forms[url.PathEscape(s)] = true
	}
	all := make([]string, 0, len(forms))
	for f := range forms {
		if len(f) >= MinSecretLen {
			all = append(all, f)
		}
	}
	// Longest first: strings.Replacer tries olds in argument order, so a
	// secret that contains another is hidden whole.
	slices.SortFunc(all, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	r := &Redactor{secrets: all}
	pairs := make([]string, 0, 2*len(all))
	for _, f := range all {
		pairs = append(pairs, f, Redacted)
		r.maxLen = max(r.maxLen, len(f))
	}
	if len(pairs) > 0 {
		r.replacer = strings.NewReplacer(pairs...)
	}
	return r
}

// With returns a new Redactor hiding r's values and more.
func (r *Redactor) With(secrets ...string) *Redactor {
	if r == nil {
		return NewRedactor(secrets...)
	}
	return NewRedactor(append(slices.Clone(r.secrets), secrets...)...)
}

// Len is the number of value forms hidden.
func (r *Redactor) Len() int {
	if r == nil {
		return 0
	}
	return len(r.secrets)
}

// String returns s with every secret replaced by [REDACTED].
func (r *Redactor) String(s string) string {
	if r == nil || r.replacer == nil {
		return s
	}
	return r.replacer.Replace(s)
}

// Bytes returns b with every secret replaced by [REDACTED].
func (r *Redactor) Bytes(b []byte) []byte {
	if r == nil || r.replacer == nil {
		return b
	}
	return []byte(r.replacer.Replace(string(b)))
}

// Writer wraps w so everything written through it is redacted. Output is
// passed on line by line (a secret split across two Write calls is still
// caught); call Close to flush a last partial line. Close does not close w.
func (r *Redactor) Writer(w io.Writer) io.WriteCloser {
	return &redactWriter{r: r, w: w}
}

// maxPending bounds the bytes held back waiting for a newline.
const maxPending = 1 << 20

type redactWriter struct {
	mu      sync.Mutex
	r       *Redactor
	w       io.Writer
	pending []byte
}

func (rw *redactWriter) Write(p []byte) (int, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.pending = append(rw.pending, p...)
	cut := bytes.LastIndexByte(rw.pending, '\n') + 1
	if cut == 0 && len(rw.pending) > maxPending {
		// A huge line without newline: keep back the tail that could hold
		// the start of a secret, pass on the rest.
		cut = len(rw.pending) - rw.r.maxLen
	}
	if cut <= 0 {
		return len(p), nil
	}
	if _, err := rw.w.Write(rw.r.Bytes(rw.pending[:cut])); err != nil {
		return 0, err
	}
	rw.pending = append(rw.pending[:0], rw.pending[cut:]...)
	return len(p), nil
}

func (rw *redactWriter) Close() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if len(rw.pending) == 0 {
		return nil
	}
	_, err := rw.w.Write(rw.r.Bytes(rw.pending))
	rw.pending = rw.pending[:0]
	return err
}

// redactValue hides secrets in every string reachable from v (struct
// fields, slice elements, map keys and values), in place. v must be
// addressable; maps are rebuilt because their keys may change.
func (r *Redactor) redactValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() {
			v.SetString(r.String(v.String()))
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			r.redactValue(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				r.redactValue(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			r.redactValue(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() || !v.CanSet() {
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			k := reflect.New(v.Type().Key()).Elem()
			k.Set(it.Key())
			r.redactValue(k)
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			r.redactValue(e)
			out.SetMapIndex(k, e)
		}
		v.Set(out)
	}
}
