//go:build unix

package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/memory"
)

const (
	wait  = 10 * time.Second
	grace = 600 * time.Millisecond
)

// harness runs one real elector whose Lead is the supervisor under test.
type harness struct {
	t        *testing.T
	sup      *Supervisor
	lines    chan string
	terms    chan *election.Term
	returned chan error // the term's Err when Lead returned
}

func newHarness(t *testing.T, script string, cfg Config) *harness {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	cfg.Command = []string{"sh", "-c", script}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devnull.Close() })
	cfg.Stdout, cfg.Stderr = w, devnull // the shell's "Terminated" notes go to stderr
	cfg.Lease, cfg.Namespace = "db", "ns"
	if cfg.Grace == 0 {
		cfg.Grace = grace
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	sup, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, sup: sup, lines: make(chan string, 64), terms: make(chan *election.Term, 4), returned: make(chan error, 4)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	// One term only: the elector stops once the first term's work returned.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e, err := election.New(election.Config{Store: memory.New("db"), Identity: "cand-a",
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond,
		Grace: cfg.Grace, Logger: slog.New(slog.DiscardHandler),
		Lead: func(term *election.Term) {
			h.terms <- term
			sup.Lead(term)
			h.returned <- term.Err()
			cancel()
		}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

func (h *harness) term() *election.Term {
	h.t.Helper()
	select {
	case t := <-h.terms:
		return t
	case <-time.After(wait):
		h.t.Fatal("no term started")
	}
	return nil
}

func (h *harness) line() string {
	h.t.Helper()
	select {
	case l := <-h.lines:
		return l
	case <-time.After(wait):
		h.t.Fatal("the child printed nothing")
	}
	return ""
}

func (h *harness) leadReturned() error {
	h.t.Helper()
	select {
	case err := <-h.returned:
		return err
	case <-time.After(wait):
		h.t.Fatal("Lead did not return")
	}
	return nil
}

// gone reports whether no process has the given PID (a zombie still counts
// as present).
func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

func fields(t *testing.T, line string, n int) []string {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != n {
		t.Fatalf("child line %q: want %d fields", line, n)
	}
	return f
}

func TestChildRunsOnlyDuringTheTerm(t *testing.T) {
	h := newHarness(t, `trap 'echo stopping; exit 0' TERM
echo start "$INCUMBENT_TERM" "$INCUMBENT_IDENTITY" "$INCUMBENT_LEASE" "$INCUMBENT_NAMESPACE" $$
while :; do sleep 0.05; done`, Config{})
	term := h.term()
	f := fields(t, h.line(), 6)
	if want := []string{"start", fmt.Sprint(term.Token()), "cand-a", "db", "ns"}; strings.Join(f[:5], " ") != strings.Join(want, " ") {
		t.Errorf("child saw %q, want %q", f[:5], want)
	}
	var pid int
	fmt.Sscan(f[5], &pid)
	// The child may print before the supervisor has recorded it (between
	// its start returning and the record): poll, bounded, until it has.
	deadline := time.Now().Add(wait)
	for err := h.sup.Signal(syscall.Signal(0)); err != nil; err = h.sup.Signal(syscall.Signal(0)) {
		if time.Now().After(deadline) {
			t.Fatalf("Signal while the child runs: %v", err)
		}
		time.Sleep(time.Millisecond) // polling the supervisor's record
	}
	term.Resign()
	if l := h.line(); l != "stopping" {
		t.Errorf("child printed %q after the term ended, want stopping", l)
	}
	if err := h.leadReturned(); !errors.Is(err, election.ErrResigned) {
		t.Errorf("term ended with %v", err)
	}
	if !gone(pid) || !gone(-pid) {
		t.Errorf("Lead returned while the child's group (%d) still exists", pid)
	}
	if err := h.sup.Signal(syscall.SIGHUP); !errors.Is(err, ErrNoChild) {
		t.Errorf("Signal without a child = %v, want ErrNoChild", err)
	}
}

func TestStubbornGroupIsKilledBeforeLeadReturns(t *testing.T) {
	// Both the shell and its background child ignore SIGTERM.
	h := newHarness(t, `trap '' TERM; sleep 1000 & echo start $$ $!; wait`, Config{})
	term := h.term()
	f := fields(t, h.line(), 3)
	var sh, bg int
	fmt.Sscan(f[1], &sh)
	fmt.Sscan(f[2], &bg)
	ended := time.Now()
	term.Resign()
	h.leadReturned()
	t.Logf("stubborn group stopped %v after the term ended (grace %v, SIGKILL %v before its end)",
		time.Since(ended).Round(time.Millisecond), grace, KillReserve(grace))
	for _, pid := range []int{sh, bg, -sh} {
		if !gone(pid) {
			t.Errorf("process %d still exists after Lead returned", pid)
		}
	}
}

func TestOrphansOfTheChildAreReaped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("this test needs Linux's child subreaper; GOOS=%s", runtime.GOOS)
	}
	// The main process exits at once, leaving a grandchild in its group
	// that ignores SIGTERM: it must be killed and reaped (no zombie left)
	// before the lease is released.
	h := newHarness(t, `(trap '' TERM; exec sleep 1000) & echo start $!; exit 0`, Config{OnExit: Release})
	h.term()
	f := fields(t, h.line(), 2)
	var orphan int
	fmt.Sscan(f[1], &orphan)
	if err := h.leadReturned(); !errors.Is(err, election.ErrResigned) {
		t.Errorf("term ended with %v, want a resignation (release policy)", err)
	}
	if !gone(orphan) {
		t.Errorf("orphan %d still exists (alive or unreaped) after Lead returned", orphan)
	}
}

func TestPolicyRestart(t *testing.T) {
	h := newHarness(t, `echo start "$INCUMBENT_TERM"; exit 3`, Config{OnExit: Restart})
	term := h.term()
	first, second := h.line(), h.line()
	if first != second || first != fmt.Sprint("start ", term.Token()) {
		t.Errorf("restarts printed %q then %q, want the same term twice", first, second)
	}
	if term.Err() != nil {
		t.Errorf("term ended (%v) although the policy is restart", term.Err())
	}
	term.Resign()
	h.leadReturned()
}

func TestPolicyExit(t *testing.T) {
	codes := make(chan int, 1)
	h := newHarness(t, `echo start; kill -USR1 $$`, Config{OnExit: Exit, Exit: func(c int) { codes <- c }})
	h.term()
	h.line()
	if err := h.leadReturned(); !errors.Is(err, election.ErrResigned) {
		t.Errorf("term ended with %v", err)
	}
	if c := <-codes; c != 128+int(syscall.SIGUSR1) {
		t.Errorf("exit code %d, want %d (killed by SIGUSR1)", c, 128+int(syscall.SIGUSR1))
	}
}

func TestStartFailureCountsAsExit127(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	codes := make(chan int, 1)
	sup, err := New(Config{Command: []string{prog}, Grace: grace, OnExit: Exit, Exit: func(c int) { codes <- c },
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(prog); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ended := make(chan error, 1)
	e, err := election.New(election.Config{Store: memory.New("db"), Identity: "a", Logger: slog.New(slog.DiscardHandler),
		Lead: func(term *election.Term) { mu.Lock(); defer mu.Unlock(); sup.Lead(term); ended <- term.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case c := <-codes:
		if c != 127 {
			t.Errorf("exit code %d, want 127", c)
		}
	case <-time.After(wait):
		t.Fatal("Exit not called")
	}
	if err := <-ended; !errors.Is(err, election.ErrResigned) {
		t.Errorf("term ended with %v", err)
	}
}

func TestSignalsAreForwarded(t *testing.T) {
	h := newHarness(t, `trap 'echo got-hup' HUP; trap 'echo got-usr2' USR2; echo start
while :; do sleep 0.05; done`, Config{})
	term := h.term()
	h.line()
	// The child may print before the supervisor has recorded it.
	for deadline := time.Now().Add(wait); h.sup.Signal(syscall.Signal(0)) != nil; {
		if time.Now().After(deadline) {
			t.Fatal("the supervisor never reported its child")
		}
		runtime.Gosched()
	}
	for sig, want := range map[syscall.Signal]string{syscall.SIGHUP: "got-hup", syscall.SIGUSR2: "got-usr2"} {
		if err := h.sup.Signal(sig); err != nil {
			t.Fatal(err)
		}
		if l := h.line(); l != want {
			t.Errorf("after %v the child printed %q, want %q", sig, l, want)
		}
	}
	term.Resign()
	h.leadReturned()
}

func TestNewValidates(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Grace: time.Second}, "a command is required"},
		{Config{Command: []string{"sh"}}, "grace must be positive"},
		{Config{Command: []string{"sh"}, Grace: time.Second, OnExit: "sometimes"}, `unknown policy "sometimes"`},
		{Config{Command: []string{"sh"}, Grace: time.Second, OnExit: Exit}, "needs an Exit function"},
		{Config{Command: []string{"no-such-program-anywhere"}, Grace: time.Second}, `command "no-such-program-anywhere"`},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
	for _, p := range []string{"release", "restart", "exit"} {
		if _, err := ParsePolicy(p); err != nil {
			t.Errorf("ParsePolicy(%q): %v", p, err)
		}
	}
}
