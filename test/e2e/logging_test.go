package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
)

// TestShutdownLogsTheSignal stops a leading `incumbent run --backend file`
// with SIGTERM, and another with SIGINT: each logs the signal it received
// as a field when its shutdown begins, releases and exits 0; every line it
// wrote is JSON, and its durations read as durations.
func TestShutdownLogsTheSignal(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGTERM, "SIGTERM"}, {syscall.SIGINT, "SIGINT"}} {
		t.Run(c.name, func(t *testing.T) {
			lease := "sig-" + strings.ToLower(c.name)
			p := start(t, "run-"+lease, nil, append([]string{"run", "--backend=file", "--file-dir=" + dir, "--lease=" + lease,
				"--identity=a", "--http-addr=", "--log-format=json"}, fastTimings...)...)
			starting := p.waitLog("the start", msg("incumbent starting"))
			if starting["lease_duration"] != "3s" || starting["retry_period"] != "500ms" {
				t.Errorf("durations: lease_duration %#v, retry_period %#v; want \"3s\", \"500ms\"", starting["lease_duration"], starting["retry_period"])
			}
			p.waitLog("the term", msg("started leading"))
			p.signal(c.sig)
			p.waitLog("the signal", func(l map[string]any) bool { return l["msg"] == "shutting down" && l["signal"] == c.name })
			p.waitLog("the release", msg("released the lease"))
			if code := p.wait(); code != 0 {
				t.Errorf("exit %d after %s, want 0", code, c.name)
			}
			for _, line := range strings.Split(p.output(), "\n") {
				if !json.Valid([]byte(line)) {
					t.Errorf("not a JSON line: %q", line)
				}
			}
		})
	}
}
