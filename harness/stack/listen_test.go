package stack

import (
	"net"
	"strings"
	"testing"
)

func TestListenWarningBeyondLoopback(t *testing.T) {
	for addr, warn := range map[string]bool{"127.0.0.1:9464": false, "[::1]:9464": false, "0.0.0.0:9464": true, "10.1.2.3:9464": true} {
		tcp, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		got := ListenWarning(tcp)
		if (got != "") != warn {
			t.Errorf("%s: warning %q, want a warning: %v", addr, got, warn)
		}
		if warn && !strings.Contains(got, EnvListen) {
			t.Errorf("%s: the warning does not name %s: %q", addr, EnvListen, got)
		}
	}
}
