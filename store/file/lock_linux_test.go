//go:build linux

package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A lock file removed while it is held and waited on: the waiter must not
// hold the old file's lock while somebody else holds the new file's.
func TestLockFileReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	ctx := context.Background()
	_, first, err := lockFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var thirdHeld atomic.Bool
	waiter := make(chan error, 1)
	go func() {
		_, u, err := lockFile(ctx, path)
		if err == nil {
			if thirdHeld.Load() {
				err = errors.New("the waiter got the lock while another process held the new lock file")
			}
			u()
		}
		waiter <- err
	}()
	waitBlocked(t, fileAt(t, path), waiter)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, third, err := lockFile(ctx, path) // creates and locks a new file
	if err != nil {
		t.Fatal(err)
	}
	thirdHeld.Store(true)
	first() // the waiter now gets the old file, which is no longer at path
	// It must go on to wait for the new file.
	waitBlocked(t, fileAt(t, path), waiter)
	thirdHeld.Store(false)
	third()
	select {
	case err := <-waiter:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the waiter did not get the lock after it was released")
	}
}

// fileAt returns the file now at path.
func fileAt(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// waitBlocked waits until a waiter has the lock file lock open besides its
// one holder: a waiter that has opened a lock file keeps trying to lock that
// file (and no other) until it gets it. It fails if the waiter returns
// instead.
func waitBlocked(t *testing.T, lock os.FileInfo, waiter <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	ino := lock.Sys().(*syscall.Stat_t).Ino
	for openCount(t, lock) < 2 {
		select {
		case err := <-waiter:
			t.Fatalf("the waiter returned (%v) instead of waiting for the lock on inode %d", err, ino)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no waiter opened inode %d within 10s", ino)
		}
	}
}

// openCount reports how many file descriptors of this process are open on
// the file f.
func openCount(t *testing.T, f os.FileInfo) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		// Stat follows the link to the open file; an fd closed since the
		// listing fails and is skipped.
		if fi, err := os.Stat("/proc/self/fd/" + e.Name()); err == nil && os.SameFile(fi, f) {
			n++
		}
	}
	return n
}
