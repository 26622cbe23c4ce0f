package env

import (
	"fmt"
	"io"
	"strings"

	tclog "github.com/testcontainers/testcontainers-go/log"
)

// RedactingLogger is a testcontainers-go logger that hides the run's secrets: when a wait
// strategy fails, testcontainers prints the container's log, and a service's log can
// quote a value from its environment. Install it with tclog.SetDefault before any
// container starts.
func RedactingLogger(w io.Writer, redact func(string) string) tclog.Logger {
	return redactingLogger{w: w, redact: redact}
}

type redactingLogger struct {
	w      io.Writer
	redact func(string) string
}

func (l redactingLogger) Printf(format string, v ...any) {
	line := l.redact(fmt.Sprintf(format, v...))
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	_, _ = io.WriteString(l.w, line)
}
