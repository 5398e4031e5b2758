package fuzz

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/incumbent-io/incumbent/internal/inject"
)

// FuzzInject: whatever the input, inject never panics, and what it accepts
// it writes as a fixed point (injecting the output again changes nothing).
// The seeds are the real-world manifests of internal/inject/testdata, in
// every mode.
func FuzzInject(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "..", "internal", "inject", "testdata", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range inject.Modes() {
			f.Add(b, string(m))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, mode string) {
		o := inject.Options{Lease: "fuzz", Mode: inject.Mode(mode), HostNetwork: true}
		out, err := inject.Inject(o, inject.Input{Name: "fuzz", Data: in})
		if err != nil {
			return
		}
		again, err := inject.Inject(o, inject.Input{Name: "fuzz", Data: out})
		if err != nil {
			t.Fatalf("the output is refused: %v\ninput:\n%s\noutput:\n%s", err, in, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not a fixed point\ninput:\n%s\noutput:\n%s\nagain:\n%s", in, out, again)
		}
	})
}
