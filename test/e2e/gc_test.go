package e2e

import (
	"strings"
	"syscall"
	"testing"
)

// Unless the environment sets GOGC or GOMEMLIMIT, incumbent runs with
// GOGC=50 (cmd/incumbent); the Go collector's metric says which it runs with.
func TestGCPercentDefault(t *testing.T) {
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"unset", nil, "go_gc_gogc_percent 50"},
		{"GOGC", []string{"GOGC=100"}, "go_gc_gogc_percent 100"},
		{"GOGC=200", []string{"GOGC=200"}, "go_gc_gogc_percent 200"},
		{"GOMEMLIMIT", []string{"GOMEMLIMIT=64MiB"}, "go_gc_gogc_percent 100"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, "gc-"+c.name, c.env, "run", "--backend=file", "--file-dir="+t.TempDir(), "--lease=gc",
				"--identity=gc", "--http-addr=127.0.0.1:0", "--await-app=false", "--log-format=json")
			if metrics := httpBody(t, "http://"+p.statusAddr()+"/metrics"); !strings.Contains(metrics, "\n"+c.want+"\n") {
				t.Errorf("environment %q: /metrics lacks %q", c.env, c.want)
			}
			p.signal(syscall.SIGTERM)
			if code := p.wait(); code != 0 {
				t.Errorf("exit %d after SIGTERM; want 0", code)
			}
		})
	}
}
