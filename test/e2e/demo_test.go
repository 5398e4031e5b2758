package e2e

import (
	"os/exec"
	"regexp"
	"strconv"
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
	for _, want := range []string{"leads, term ", "took over after", "work stopped", "Done."} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	// Three terms, with rising tokens (the lease file's revisions).
	var terms []int
	for _, m := range regexp.MustCompile(`term (\d+)`).FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[1])
		terms = append(terms, n)
	}
	if len(terms) != 3 || terms[0] < 1 || terms[1] <= terms[0] || terms[2] <= terms[1] {
		t.Errorf("demo terms %v; want three rising tokens from 1 up:\n%s", terms, text)
	}
	if n := strings.Count(text, "took over after"); n != 2 {
		t.Errorf("demo reported %d take-overs, want 2:\n%s", n, text)
	}
	t.Log("\n" + text)
}
