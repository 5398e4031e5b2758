//go:build unix

package file_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/file"
	"github.com/incumbent-io/incumbent/store/storetest"
)

func TestConformance(t *testing.T) {
	conformance(t, file.Options{})
}

// The same suite with the poll fallback that Watch uses when the operating
// system cannot notify it.
func TestConformancePolling(t *testing.T) {
	conformance(t, file.Options{Poll: true, PollInterval: 50 * time.Millisecond})
}

// The same suite over Stores of one Dir, whose Watches share one
// notification watch of the folder.
func TestConformanceOneDir(t *testing.T) {
	dir := t.TempDir()
	d, err := file.OpenDir(dir, file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	suites(t, dir, func(t *testing.T, name string) store.Store {
		s, err := d.Store(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// conformance runs the suites over Stores that New returns, each with a
// Dir of its own, as separate processes have.
func conformance(t *testing.T, opts file.Options) {
	dir := t.TempDir()
	suites(t, dir, func(t *testing.T, name string) store.Store {
		s, err := file.NewWithOptions(dir, name, opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// suites runs the store and election suites over the Stores newStore makes
// in the folder dir.
func suites(t *testing.T, dir string, newStore func(t *testing.T, name string) store.Store) {
	del := func(t *testing.T, name string) {
		if err := os.Remove(filepath.Join(dir, name+".json")); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	electiontest.Run(t, newStore, electiontest.WithDelete(del))
	storetest.Run(t, newStore,
		storetest.WithCoalescingWatch(),
		storetest.WithDelete(del),
		storetest.WithCorrupt(func(t *testing.T, name string) {
			if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(`{"format": 2, "generation": `), 0o600); err != nil {
				t.Fatalf("corrupt: %v", err)
			}
		}),
	)
}
