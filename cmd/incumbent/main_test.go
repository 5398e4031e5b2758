package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// A binary that can call a method by a name known only at run time
// (executing a text/template or html/template, reflect.Value.Method or
// MethodByName with a computed name) makes the linker keep every exported
// method of every type it holds: 4.8 MB more binary and 3 MiB more
// resident memory for the idle sidecar (docs/sidecar.md, "Measured"). The
// release build has no such call.
func TestReleaseBuildCallsNoMethodByName(t *testing.T) {
	cmd := exec.Command("go", "build", "-tags="+buildinfo.ReleaseTags, "-ldflags=-dumpdep", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%.4000s", err, out)
	}
	// The linker prints each reachable symbol once, as "parent -> symbol",
	// and the go command passes it on.
	reached := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		reached++
		if from, to, ok := strings.Cut(sc.Text(), " -> "); ok && strings.Contains(to, "<ReflectMethod>") {
			t.Errorf("%s calls methods by name (reached from %s)", to, from)
		}
	}
	if reached < 1000 {
		t.Fatalf("the linker's -dumpdep printed %d lines: its format changed?\n%.4000s", reached, out)
	}
}

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want int
		set  bool
	}{
		{nil, defaultGCPercent, true},
		{map[string]string{"GOGC": "100"}, 0, false},
		{map[string]string{"GOGC": "off", "GOMEMLIMIT": "64MiB"}, 0, false},
		{map[string]string{"GOMEMLIMIT": "64MiB"}, 0, false},
		{map[string]string{"GOMAXPROCS": "1"}, defaultGCPercent, true},
	} {
		got, set := gcPercent(func(k string) string { return c.env[k] })
		if got != c.want || set != c.set {
			t.Errorf("environment %v: gcPercent = %d, %v; want %d, %v", c.env, got, set, c.want, c.set)
		}
	}
}
