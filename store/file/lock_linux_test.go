//go:build linux

package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	first, err := lockFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var thirdHeld atomic.Bool
	waiter := make(chan error, 1)
	go func() {
		u, err := lockFile(ctx, path)
		if err == nil {
			if thirdHeld.Load() {
				err = errors.New("the waiter got the lock while another process held the new lock file")
			}
			u()
		}
		waiter <- err
	}()
	waitBlocked(t, inode(t, path), waiter)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	third, err := lockFile(ctx, path) // creates and locks a new file
	if err != nil {
		t.Fatal(err)
	}
	thirdHeld.Store(true)
	first() // the waiter now gets the old file, which is no longer at path
	// It must go on to wait for the new file.
	waitBlocked(t, inode(t, path), waiter)
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

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// waitBlocked waits until the kernel lists a waiter blocked on a flock of the
// inode ino, failing if the waiter returns instead.
func waitBlocked(t *testing.T, ino uint64, waiter <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !blockedOn(t, ino) {
		select {
		case err := <-waiter:
			t.Fatalf("the waiter returned (%v) instead of waiting for the lock on inode %d", err, ino)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no waiter blocked on inode %d within 10s", ino)
		}
	}
}

// blockedOn reports whether /proc/locks lists a waiter blocked on a flock of
// the inode ino.
func blockedOn(t *testing.T, ino uint64) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	suffix := ":" + strconv.FormatUint(ino, 10)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		// "1: -> FLOCK  ADVISORY  WRITE 1234 00:2e:5678 0 EOF"
		if len(f) >= 7 && f[1] == "->" && f[2] == "FLOCK" && strings.HasSuffix(f[6], suffix) {
			return true
		}
	}
	return false
}
