//go:build linux

package file_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/file"
)

const (
	// stallFor is how long the lock holder stays stopped.
	stallFor = 60 * time.Second
	// warmUp is how long the writers run before their usage is taken as
	// the baseline that must then stay flat.
	warmUp = 3 * time.Second
	// Above the baseline, what the rest of the stall may add: noise from
	// the runtime, the sibling subtest and the candidates' watches, far
	// less than the thousands of attempts a stall sees.
	goroutineSlack = 50
	fdSlack        = 25
	// stallCallers and stallCandidates keep trying to write during the
	// stall.
	stallCallers    = 4
	stallCandidates = 3
	// recoverWithin bounds how long after the lock is released every
	// caller must have got through and a candidate must lead.
	recoverWithin = 15 * time.Second
)

// A process stopped (SIGSTOP) while it holds a lease's lock stalls every
// writer of the lease. It must cost them nothing that grows with their
// retries: writers and election candidates that keep timing out while they
// wait for the lock must not pile up goroutines or file descriptors. Once
// the holder is resumed (it then releases the lock) or killed, they must get
// through promptly.
func TestStoppedLockHolder(t *testing.T) {
	t.Run("Resumed", func(t *testing.T) {
		t.Parallel()
		testStoppedLockHolder(t, (*holder).resume)
	})
	t.Run("Killed", func(t *testing.T) {
		t.Parallel()
		testStoppedLockHolder(t, (*holder).kill)
	})
}

func testStoppedLockHolder(t *testing.T, release func(*holder, *testing.T)) {
	dir, err := filepath.EvalSymlinks(t.TempDir()) // /proc/self/fd names files by their real path
	if err != nil {
		t.Fatal(err)
	}
	const name = "stalled"
	lockPath := filepath.Join(dir, name+".lock")
	newStore := func() *file.Store {
		t.Helper()
		s, err := file.New(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A free lease: a candidate takes it as soon as it can write.
	if _, err := newStore().Create(context.Background(), store.Record{LeaseDuration: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	before := measure(t, lockPath)

	h := startHolder(t, dir, name)
	h.stop(t)

	led := make(chan leading, stallCandidates)
	for i := range stallCandidates {
		startCandidate(t, newStore(), fmt.Sprintf("cand-%d", i), led)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var callers []*caller
	for i := range stallCallers {
		c := &caller{create: i%2 == 1, st: newStore(), done: make(chan struct{})}
		callers = append(callers, c)
		go c.run(ctx)
	}
	stopCallers := func() {
		cancel()
		for _, c := range callers {
			<-c.done
		}
	}
	defer stopCallers()
	attempts := func() int64 {
		var n int64
		for _, c := range callers {
			n += c.attempts.Load()
		}
		return n
	}

	began := time.Now()
	stallEnd := time.NewTimer(stallFor)
	defer stallEnd.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var base, peak usage
	for stalled := true; stalled; {
		select {
		case <-stallEnd.C:
			stalled = false
			continue
		case <-tick.C:
		}
		for i, c := range callers {
			select {
			case <-c.done:
				stopCallers()
				t.Fatalf("caller %d returned while the lock holder was stopped (err %v): the lock was not held", i, c.err)
			default:
			}
		}
		u := measure(t, lockPath)
		if time.Since(began) < warmUp {
			base = base.max(u)
			continue
		}
		peak = peak.max(u)
		if u.goroutines > base.goroutines+goroutineSlack || u.fds > base.fds+fdSlack || u.lockFDs > stallCallers+stallCandidates {
			n := attempts()
			stopCallers()
			t.Fatalf("%v into the stall, after %d timed-out attempts: %s; after the %v warm-up: %s; before the stall: %s",
				time.Since(began).Round(time.Millisecond), n, u, warmUp, base, before)
		}
	}
	n := attempts()
	if state := h.state(t); state != 'T' {
		t.Fatalf("the lock holder is in state %q at the end of the stall, not stopped", state)
	}
	t.Logf("%v stall, %d timed-out attempts; usage before: %s; after the warm-up: %s; peak: %s", stallFor, n, before, base, peak)
	if n < 500 {
		t.Errorf("only %d attempts timed out during the stall: too few to tell a leak from noise", n)
	}

	released := time.Now()
	release(h, t)
	deadline := time.After(recoverWithin)
	var writes time.Duration
	for i, c := range callers {
		select {
		case <-c.done:
			if c.err != nil {
				t.Errorf("caller %d: %v", i, c.err)
			}
			writes = max(writes, c.through.Sub(released))
		case <-deadline:
			t.Fatalf("caller %d did not get through within %v of the lock's release", i, recoverWithin)
		}
	}
	select {
	case l := <-led:
		t.Logf("after the release every caller got through within %v; %s led after %v",
			writes.Round(time.Millisecond), l.id, l.at.Sub(released).Round(time.Millisecond))
	case <-deadline:
		t.Fatalf("no candidate led within %v of the lock's release", recoverWithin)
	}
}

// usage is what the test process holds at one moment.
type usage struct {
	goroutines int
	fds        int // open file descriptors
	lockFDs    int // of them, open on the lease's lock file
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %d fds (%d on the lock file)", u.goroutines, u.fds, u.lockFDs)
}

func (u usage) max(v usage) usage {
	return usage{max(u.goroutines, v.goroutines), max(u.fds, v.fds), max(u.lockFDs, v.lockFDs)}
}

func measure(t *testing.T, lockPath string) usage {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	u := usage{goroutines: runtime.NumGoroutine(), fds: len(entries) - 1} // less the one reading the folder
	for _, e := range entries {
		// An fd closed since the listing has no link: skip it.
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == lockPath {
			u.lockFDs++
		}
	}
	return u
}

// caller writes the lease in a loop with short timeouts until one write
// gets the lock: an Update (retried on conflict) or a Create (which gets
// the lock, then finds the record and fails with store.ErrConflict).
type caller struct {
	create   bool
	st       *file.Store
	attempts atomic.Int64 // calls that timed out waiting for the lock
	through  time.Time    // when a call got the lock; read after done
	err      error        // an unexpected error; read after done
	done     chan struct{}
}

func (c *caller) run(ctx context.Context) {
	defer close(c.done)
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, time.Duration(10+rand.IntN(50))*time.Millisecond)
		err := c.call(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			c.attempts.Add(1)
		case c.create && errors.Is(err, store.ErrConflict), !c.create && err == nil:
			c.through = time.Now()
			return
		case !c.create && errors.Is(err, store.ErrConflict):
			// Somebody else wrote first: read again.
		default:
			c.err = err
			return
		}
	}
}

func (c *caller) call(ctx context.Context) error {
	if c.create {
		_, err := c.st.Create(ctx, store.Record{Holder: "caller", LeaseDuration: time.Second})
		return err
	}
	rec, err := c.st.Get(ctx)
	if err != nil {
		return err
	}
	_, err = c.st.Update(ctx, rec) // the same content at a new version
	return err
}

// leading reports that a candidate started leading.
type leading struct {
	id string
	at time.Time
}

// startCandidate runs an elector on st until the end of the test; each time
// it leads, it says so on led (unless led is full).
func startCandidate(t *testing.T, st store.Store, id string, led chan<- leading) {
	t.Helper()
	e, err := election.New(election.Config{
		Store:         st,
		Identity:      id,
		LeaseDuration: 2 * time.Second,
		RenewDeadline: time.Second,
		RetryPeriod:   250 * time.Millisecond,
		Grace:         500 * time.Millisecond,
		Lead: func(term *election.Term) {
			select {
			case led <- leading{id, time.Now()}:
			default:
			}
			<-term.Done()
		},
		// The stall makes every candidate warn at each retry.
		Logger: slog.New(slog.NewTextHandler(&testLog{t: t, prefix: id + ": "}, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("candidate %s: Run: %v", id, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("candidate %s: Run did not return within 30s of its context ending", id)
		}
	})
}

// holder is a helper process holding a lease's lock until its stdin closes.
type holder struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{} // closed when Wait returns
	err    error         // what Wait returned; read after exited
}

// startHolder starts the helper and waits until it holds the lock. The
// helper is continued and killed at the end of the test, so that no
// process is left stopped.
func startHolder(t *testing.T, dir, name string) *holder {
	t.Helper()
	cmd := helperCmd(t, "hold", dir, name)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holder{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	first := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		if lines.Scan() {
			first <- lines.Text()
		}
		close(first)
		io.Copy(io.Discard, stdout)
		h.err = cmd.Wait() // after every read, as StdoutPipe requires
		close(h.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		select {
		case <-h.exited:
		case <-time.After(30 * time.Second):
			t.Errorf("the lock holder (pid %d) did not exit within 30s of SIGKILL", cmd.Process.Pid)
		}
	})
	select {
	case line := <-first:
		if line != "locked" {
			t.Fatalf("the lock holder said %q, want %q", line, "locked")
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the lock holder did not take the lock within 30s")
	}
	return h
}

// stop stops the holder with SIGSTOP and waits until it is stopped.
func (h *holder) stop(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.state(t) != 'T' {
		if time.Now().After(deadline) {
			t.Fatalf("the lock holder is in state %q 10s after SIGSTOP, not stopped", h.state(t))
		}
		time.Sleep(5 * time.Millisecond) // polling the kernel's view of the process
	}
}

// resume closes the holder's stdin and continues it: it releases the lock
// and exits.
func (h *holder) resume(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	if err := h.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.exited:
		if h.err != nil {
			t.Fatalf("the resumed lock holder: %v", h.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the resumed lock holder did not exit within 30s")
	}
}

// kill kills the stopped holder; the kernel releases its lock.
func (h *holder) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the lock holder did not exit within 30s of SIGKILL")
	}
}

// state is the holder's state as the kernel reports it in /proc/PID/stat:
// 'T' when stopped.
func (h *holder) state(t *testing.T) byte {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
	if i := bytes.LastIndexByte(data, ')'); i >= 0 {
		if f := strings.Fields(string(data[i+1:])); len(f) > 0 {
			return f[0][0]
		}
	}
	t.Fatalf("cannot parse /proc/%d/stat: %q", h.cmd.Process.Pid, data)
	return 0
}
