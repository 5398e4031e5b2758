//go:build unix

package file

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// A wait for the lock ends with its context, and leaves nothing behind that
// takes the lock later.
func TestLockWaitEndsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	_, unlock, err := lockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() {
		_, u, err := lockFile(ctx, path)
		if u != nil {
			u()
		}
		waited <- err
	}()
	cancel()
	select {
	case err := <-waited:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("lock wait with a cancelled context: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the lock wait did not end with its context")
	}
	unlock()
	// Nobody may have taken the lock in the abandoned wait's place.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, unlock, err = lockFile(ctx, path)
	if err != nil {
		t.Fatalf("the lock is not free after an abandoned wait: %v", err)
	}
	unlock()
}
