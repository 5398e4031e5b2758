//go:build unix

package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockFile takes an exclusive flock on the file at path, creating it if
// needed, and returns it, open for reading and writing, with the function
// that releases it (and closes it). Each call opens the file anew, so calls
// exclude each other within one process as well as across processes. If the
// file is removed or replaced while this call waits, it locks the new file
// instead, so that two holders can never lock two different files under one
// name.
func lockFile(ctx context.Context, path string) (lock *os.File, unlock func(), err error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("open lock file: %w", classify(err))
		}
		if err := flockContext(ctx, f); err != nil {
			return nil, nil, err
		}
		same, err := samePath(f, path)
		if err != nil {
			release(f)
			return nil, nil, fmt.Errorf("check lock file: %w", classify(err))
		}
		if same {
			return f, func() { release(f) }, nil
		}
		release(f) // the file we locked is no longer the one at path
	}
}

// Backoff of a wait for a contended lock: the first retry comes after
// minLockBackoff, each later one after twice the wait before, up to
// maxLockBackoff. A write holds the lock for three fsyncs (a few
// milliseconds on a local disk), so most waits end within the first few
// retries; the cap bounds how late a waiter notices a release to 50ms,
// small against any renew deadline, at the cost of about twenty cheap
// system calls a second per waiter while a holder is stuck.
const (
	minLockBackoff = time.Millisecond
	maxLockBackoff = 50 * time.Millisecond
)

// flockContext takes an exclusive lock on f, retrying a non-blocking flock
// with a backoff until it succeeds or ctx ends. It leaves nothing behind
// when ctx ends first: no goroutine, no system call blocked in flock, no
// open file. A blocked flock(2) cannot be interrupted, so waiting in one
// would keep a goroutine and a file descriptor for as long as the holder
// keeps the lock, one per abandoned attempt (a holder stopped with SIGSTOP
// keeps it forever). On success f is locked; on failure f is closed.
func flockContext(ctx context.Context, f *os.File) error {
	fd := int(f.Fd())
	var timer *time.Timer
	for backoff := minLockBackoff; ; backoff = min(2*backoff, maxLockBackoff) {
		err := flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if timer == nil {
			timer = time.NewTimer(backoff)
		} else {
			timer.Reset(backoff)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			f.Close()
			return fmt.Errorf("wait for lock %s: %w", f.Name(), ctx.Err())
		}
	}
}

func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// release unlocks and closes f.
func release(f *os.File) {
	_ = flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}

// samePath reports whether the open file f is still the file at path.
func samePath(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	pi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi), nil
}

// checkPlatform reports whether this system supports the file store.
func checkPlatform() error { return nil }

// checkWritable reports whether this process may create and rename files in
// dir.
func checkWritable(dir string) error {
	if err := syscall.Access(dir, 0x2|0x1); err != nil { // W_OK|X_OK
		return &os.PathError{Op: "access", Path: dir, Err: err}
	}
	return nil
}
