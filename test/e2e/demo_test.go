package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// The README's first command: `incumbent demo` elects, survives a SIGKILL
// of its leader, hands over on SIGTERM, and stops cleanly.
func TestDemo(t *testing.T) {
	out, err := exec.Command(bin, "demo", "--incumbent", bin, "--file-dir", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("incumbent demo: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"leads, term 0", "took over after", "term 1", "term 2", "work stopped", "Done."} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "took over after"); n != 2 {
		t.Errorf("demo reported %d take-overs, want 2:\n%s", n, text)
	}
	t.Log("\n" + text)
}
